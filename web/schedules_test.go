package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/web"
)

// TestSchedulesTab: a member adds a schedule and sees its next three fire
// times; bad input is refused with the rule's message and the form keeps
// what was typed; a viewer reads without forms; another member may not
// pause it, an admin may; a stranger sees nothing.
func TestSchedulesTab(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC) // a Tuesday
	e := newEnv(t, func(c *web.Config) {
		svc, err := schedules.New(schedules.Config{Store: c.DB, Now: func() time.Time { return now },
			CreatorRole: func(context.Context, int64, engine.Principal) (store.Role, error) { return "", nil }})
		if err != nil {
			t.Fatal(err)
		}
		c.Schedules = svc
	})
	e.project("shop", map[string]store.Role{"mia@example.com": store.RoleMember, "max@example.com": store.RoleMember,
		"ada@example.com": store.RoleAdmin, "vic@example.com": store.RoleViewer})
	mia, max, ada, vic, eve := e.browser(), e.browser(), e.browser(), e.browser(), e.browser()
	for b, who := range map[*browser]string{mia: "mia", max: "max", ada: "ada", vic: "vic", eve: "eve"} {
		b.login("google", who+"@example.com")
	}
	base := "/settings/projects/shop/schedules"

	st, _, page := mia.post(base, url.Values{"expr": {"*/5 * * * *"}, "task": {"poll <b>CI</b>"}})
	if st != http.StatusBadRequest || !strings.Contains(text(page), `schedule "*/5 * * * *" fires every 5m`) || !strings.Contains(text(page), "the minimum interval is 15m") ||
		!strings.Contains(page, `value="*/5 * * * *"`) || !strings.Contains(page, "poll &lt;b&gt;CI&lt;/b&gt;") {
		t.Fatalf("too frequent: %d %s", st, text(page))
	}
	st, _, page = mia.post(base, url.Values{"expr": {"0 9 * * 1-5"}, "tz": {"Europe/Berlin"}, "task": {"bump the dependencies"}})
	m := regexp.MustCompile(`Schedule (s[a-z2-7]{8}) created It fires next at: 2026-12-02 09:00 CET 2026-12-03 09:00 CET 2026-12-04 09:00 CET`).FindStringSubmatch(text(page))
	if st != http.StatusCreated || m == nil {
		t.Fatalf("add: %d %s", st, text(page))
	}
	id := m[1]

	st, page = vic.get(base)
	if st != 200 || !strings.Contains(text(page), id+" run 0 9 * * 1-5 (Europe/Berlin) active bump the dependencies Made by mia@example.com; reports to the settings page only.") ||
		strings.Contains(page, "Add a schedule") || strings.Contains(page, "/pause") {
		t.Fatalf("viewer's page: %d %s", st, text(page))
	}
	if st, _, page = vic.post(base, url.Values{"expr": {"@daily"}, "task": {"x"}}); st != http.StatusForbidden || !strings.Contains(text(page), "needs the member role") {
		t.Fatalf("viewer adds: %d %s", st, text(page))
	}
	if st, _, page = max.post(base+"/"+id+"/pause", nil); st != http.StatusForbidden || !strings.Contains(text(page), "is mia@example.com's; only they or an admin") {
		t.Fatalf("another member pauses: %d %s", st, text(page))
	}
	if st, loc, _ := ada.post(base+"/"+id+"/pause", nil); st != http.StatusSeeOther || loc != base+"?ok=schedule-pause" {
		t.Fatalf("admin pauses: %d %s", st, loc)
	}
	if _, page = mia.get(base + "?ok=schedule-pause"); !strings.Contains(text(page), "Schedule paused.") || !strings.Contains(text(page), "paused by ada@example.com") {
		t.Fatalf("after pause: %s", text(page))
	}
	if st, _ = eve.get(base); st != http.StatusNotFound && st != http.StatusForbidden {
		t.Fatalf("a stranger reads the schedules: %d", st)
	}
	if st, _, page = mia.post(base+"/"+id+"/explode", nil); st != http.StatusBadRequest || !strings.Contains(text(page), `unknown change "explode"`) {
		t.Fatalf("unknown change: %d %s", st, text(page))
	}
	if st, loc, _ := mia.post(base+"/"+id+"/rm", nil); st != http.StatusSeeOther || loc != base+"?ok=schedule-rm" {
		t.Fatalf("creator removes: %d %s", st, loc)
	}
	if _, page = mia.get(base); !strings.Contains(text(page), "This project has no schedules.") {
		t.Fatalf("after rm: %s", text(page))
	}
}
