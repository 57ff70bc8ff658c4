package github

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// TestScheduleCommandOnGitHub: /hero schedule in an issue comment makes
// a schedule of the repository's project that reports on that issue, and
// the reply shows its next three fire times; list shows it; a reader of
// the repository may not make one.
func TestScheduleCommandOnGitHub(t *testing.T) {
	db := openStore(t, t.TempDir())
	eng := newRecorder(db)
	svc, err := schedules.New(schedules.Config{Store: db, CreatorRole: eng.Role,
		Now: func() time.Time { return time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	api := githubtest.NewServer(t, testToken)
	url := api.URL + "/acme/shop"
	e := newEnv(t, db, api, eng, url, func(c *envConfig) { c.Schedules = svc })
	// A schedule runs later as its creator: only a GitHub account linked
	// to a hero user makes one, with that user's role.
	for login, role := range map[string]store.Role{"maint": store.RoleMember, "vic": store.RoleViewer} {
		storetest.User(t, db, e.project.ID, login+"@example.com", role, "github", login)
	}
	api.AddIssue(githubtest.Issue{Number: 50, Repo: "acme/shop", Title: "Chores", Author: "maint"})
	say := func(id, login, association, body string) string {
		t.Helper()
		payload := fixture(t, "issue_comment.created.json", map[string]any{"repository.html_url": url, "repository.full_name": "acme/shop",
			"issue.number": 50, "comment.body": body, "comment.author_association": association, "comment.user.login": login, "comment.id": len(id) + 7100})
		before := len(api.Comments())
		if st := e.deliver("issue_comment", id, payload); st != 202 && st != 200 {
			t.Fatalf("delivery %s: %d", id, st)
		}
		if err := e.waitHandled(id); err != nil {
			t.Fatal(err)
		}
		var replies []string
		for _, c := range api.Comments()[before:] {
			if c.Issue == 50 && c.Author == "" {
				replies = append(replies, c.Body)
			}
		}
		return strings.Join(replies, "\n")
	}

	got := say("sched-add", "maint", "OWNER", `/hero schedule "0 9 * * 1-5" bump the dependencies`)
	if !strings.Contains(got, "runs “bump the dependencies” and reports here. Next: 2026-12-01 09:00 UTC, 2026-12-02 09:00 UTC, 2026-12-03 09:00 UTC.") {
		t.Fatalf("reply to /hero schedule: %q", got)
	}
	scs, err := db.ListSchedules(t.Context(), e.project.ID)
	if err != nil || len(scs) != 1 {
		t.Fatalf("schedules: %+v %v", scs, err)
	}
	if s := scs[0]; s.Creator != "github:maint" || s.ReportSurface != "github" || s.ReportTo != (Thread{Repo: Repo{Owner: "acme", Name: "shop"}, Number: 50}).String() || s.Task != "bump the dependencies" {
		t.Fatalf("schedule %+v", s)
	}
	if got := say("sched-list", "maint", "OWNER", "/hero schedule list"); !strings.Contains(got, fmt.Sprintf("`%s` active `0 9 * * 1-5`", scs[0].ID)) {
		t.Fatalf("reply to /hero schedule list: %q", got)
	}
	if got := say("sched-viewer", "vic", "COLLABORATOR", `/hero schedule @daily hunt flaky tests`); !strings.Contains(got, "needs the member role") {
		t.Fatalf("a viewer's /hero schedule: %q", got)
	}
	if got := say("sched-stranger", "passerby", "NONE", `/hero schedule @daily hunt flaky tests`); strings.Contains(got, "made in project") {
		t.Fatalf("a stranger's /hero schedule: %q", got)
	}
	if scs, _ := db.ListSchedules(t.Context(), e.project.ID); len(scs) != 1 {
		t.Fatalf("a viewer or a stranger made a schedule: %+v", scs)
	}
}
