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
		!strings.Contains(txt, "Link a chat account") || strings.Contains(txt, "Link a Slack account") {
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
	if code != http.StatusOK || m == nil || !strings.Contains(text(body), "within 15 minutes") || !strings.Contains(text(body), "to hero in chat") {
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

// TestUnlinkChatAccount (issue 8 #15): a person unlinks one of their own
// chat accounts with a CSRF-checked POST; it is audited and shown; an
// account of someone else cannot be unlinked.
func TestUnlinkChatAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	b := e.browser()
	b.login("google", "ada@example.com")
	ada, err := e.db.UserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := e.db.UpsertUser(ctx, "bob@example.com", "Bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"T1/UADA", "T1/UADA2"} {
		if err := e.db.LinkIdentity(ctx, "slack", ext, ada.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.db.LinkIdentity(ctx, "slack", "T1/UBOB", bob.ID); err != nil {
		t.Fatal(err)
	}
	_, page := b.get("/settings/integrations")
	if !strings.Contains(text(page), "Slack T1/UADA") || !strings.Contains(page, `action="/settings/integrations/chat-accounts/unlink"`) {
		t.Fatalf("no unlink button:\n%s", text(page))
	}
	unlink := func(ext, csrf string) int {
		form := url.Values{"provider": {"slack"}, "account": {ext}}
		if csrf != "" {
			form.Set("csrf", csrf)
		}
		code, _, _ := b.post("/settings/integrations/chat-accounts/unlink", form)
		return code
	}
	if code := unlink("T1/UADA", "forged"); code != http.StatusForbidden {
		t.Fatalf("unlink without the CSRF token: %d", code)
	}
	if code := unlink("T1/UBOB", ""); code != http.StatusNotFound {
		t.Fatalf("unlink someone else's account: %d, want 404", code)
	}
	if u, err := e.db.UserByIdentity(ctx, "slack", "T1/UBOB"); err != nil || u.ID != bob.ID {
		t.Fatal("bob's account was unlinked by ada")
	}
	code, _, _ := b.post("/settings/integrations/chat-accounts/unlink", url.Values{"provider": {"google"}, "account": {"sub-ada"}})
	if code != http.StatusBadRequest {
		t.Fatalf("unlink a login identity: %d, want 400", code)
	}
	if code := unlink("T1/UADA", ""); code != http.StatusSeeOther {
		t.Fatalf("unlink: %d", code)
	}
	if _, err := e.db.UserByIdentity(ctx, "slack", "T1/UADA"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("still linked: %v", err)
	}
	_, page = b.get("/settings/integrations?ok=unlinked")
	txt := text(page)
	if !strings.Contains(txt, "Chat account unlinked") || strings.Contains(txt, "Slack T1/UADA ") || !strings.Contains(txt, "Slack T1/UADA2") ||
		!strings.Contains(txt, "unlinked slack:T1/UADA by web:ada@example.com") {
		t.Fatalf("after unlinking:\n%s", txt)
	}
	if !strings.Contains(e.logs.String(), "chat account unlinked") {
		t.Fatal("the unlink is not in the log")
	}
}

// TestAllowSlackWorkspace (issue 8 #6): a site administrator sees the
// installed workspaces and allows one installed without them; others
// cannot.
func TestAllowSlackWorkspace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	if err := e.db.SaveSlackTeam(ctx, store.SlackTeam{TeamID: "TOLD", TeamName: "Old Corp"}, "xoxb-old"); err != nil {
		t.Fatal(err)
	}
	member := e.browser()
	member.login("google", "dev@example.com")
	if _, page := member.get("/settings/integrations"); strings.Contains(page, "Old Corp") {
		t.Fatal("a non-admin sees the Slack workspaces")
	}
	if code, _, _ := member.post("/settings/integrations/slack/TOLD/allow", nil); code != http.StatusForbidden {
		t.Fatalf("allow by a non-admin: %d", code)
	}
	admin := e.browser()
	admin.login("google", siteAdmin)
	_, page := admin.get("/settings/integrations")
	if !strings.Contains(text(page), "Old Corp") || !strings.Contains(text(page), "not allowed") {
		t.Fatalf("admin's integrations page:\n%s", text(page))
	}
	if code, _, _ := admin.post("/settings/integrations/slack/TNONE/allow", nil); code != http.StatusNotFound {
		t.Fatalf("allow an unknown workspace: %d", code)
	}
	if code, loc, _ := admin.post("/settings/integrations/slack/TOLD/allow", nil); code != http.StatusSeeOther || !strings.Contains(loc, "slack-allowed") {
		t.Fatalf("allow: %d %s", code, loc)
	}
	if team, err := e.db.SlackTeamByID(ctx, "TOLD"); err != nil || team.ApprovedBy != siteAdmin {
		t.Fatalf("TOLD approved by %+v %v", team, err)
	}
}
