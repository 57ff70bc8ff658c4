package web_test

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
)

var linkCodeRE = regexp.MustCompile("/hero link ([A-Z0-9]{8})")

// linkCodeRows returns the stored hashes of the user's one-time tokens.
func (e *env) linkCodeRows(userID int64) []string {
	e.t.Helper()
	var hashes []string
	err := e.db.Bun().NewSelect().Table("web_login_tokens").Column("token_hash").
		Where("user_id = ?", userID).Scan(e.t.Context(), &hashes)
	if err != nil {
		e.t.Fatal(err)
	}
	return hashes
}

func TestLinkChatAccountCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// Anonymous: refused, nothing stored.
	anon := e.browser()
	if code, _, _ := anon.post("/settings/integrations/link-code", url.Values{"csrf": {"x"}}); code != http.StatusUnauthorized {
		t.Fatalf("anonymous POST: %d, want 401", code)
	}
	if n, err := e.db.Bun().NewSelect().Table("web_login_tokens").Count(t.Context()); err != nil || n != 0 {
		t.Fatalf("anonymous POST stored %d tokens (%v)", n, err)
	}

	b := e.browser()
	b.login("google", "ada@example.com")
	u, err := e.db.UserByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, body := b.get("/settings/integrations")
	if txt := text(body); !strings.Contains(txt, "Chat accounts") || !strings.Contains(txt, "No chat account is linked yet") ||
		!strings.Contains(txt, "Link a Slack account") {
		t.Fatalf("integrations page without linked accounts:\n%s", txt)
	}

	// Without the page's CSRF token: refused, nothing stored.
	if code, _, _ := b.post("/settings/integrations/link-code", url.Values{"csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("POST without the CSRF token: %d, want 403", code)
	}
	if rows := e.linkCodeRows(u.ID); len(rows) != 0 {
		t.Fatalf("a refused POST stored %v", rows)
	}

	// With it: the code is shown once, with what to type.
	code, _, body := b.post("/settings/integrations/link-code", nil)
	m := linkCodeRE.FindStringSubmatch(text(body))
	if code != http.StatusOK || m == nil || !strings.Contains(text(body), "within 15 minutes") {
		t.Fatalf("link code page: %d\n%s", code, text(body))
	}
	linkCode := m[1]
	if strings.ContainsAny(linkCode, "01OIL") {
		t.Fatalf("code %q has look-alike characters", linkCode)
	}
	rows := e.linkCodeRows(u.ID)
	if len(rows) != 1 || strings.Contains(rows[0], linkCode) || !strings.HasPrefix(rows[0], "link:") {
		t.Fatalf("stored %v, want one domain-separated hash without the code", rows)
	}
	if strings.Contains(e.logs.String(), linkCode) {
		t.Fatal("the link code is in the log")
	}
	if _, again := b.get("/settings/integrations"); strings.Contains(again, linkCode) {
		t.Fatal("the code is shown again on reload")
	}

	// A link code is not an admin login token, in any spelling.
	for _, tok := range []string{linkCode, "link:" + linkCode, rows[0], strings.TrimPrefix(rows[0], "link:")} {
		status, page := e.browser().get("/auth/admin?token=" + url.QueryEscape(tok))
		if status != http.StatusForbidden || !strings.Contains(page, "already used or has expired") {
			t.Fatalf("admin login with a link code (%q…): %d %s", tok[:4], status, text(page))
		}
	}
	// …and the refused attempts did not spend it: it still links, once.
	uid, err := e.db.UseLinkCode(t.Context(), linkCode, time.Now())
	if err != nil || uid != u.ID {
		t.Fatalf("UseLinkCode = %d, %v; want user %d", uid, err, u.ID)
	}
	if _, err := e.db.UseLinkCode(t.Context(), linkCode, time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second use: %v", err)
	}

	// A linked Slack account is listed; login identities are not.
	if err := e.db.LinkIdentity(t.Context(), "slack", "T1/U2", u.ID); err != nil {
		t.Fatal(err)
	}
	_, body = b.get("/settings/integrations")
	txt := text(body)
	if !strings.Contains(txt, "Slack T1/U2") || strings.Contains(txt, "No chat account") || strings.Contains(txt, "sub-ada") {
		t.Fatalf("integrations page with a linked Slack account:\n%s", txt)
	}
}
