package slack

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/web"
)

// webLinkCode gets a link code the way a person does: logged in to the
// settings page (on the same database) as user, pressing "Link a Slack
// account". The session is made in the database, as a login would.
func webLinkCode(t *testing.T, db *store.DB, user *store.User) string {
	t.Helper()
	site, err := web.New(web.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	site.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	sid, csrf := fmt.Sprintf("session-%d-of-%s", time.Now().UnixNano(), user.Email), "csrf-of-"+user.Email
	sum := sha256.Sum256([]byte(sid))
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := db.CreateSession(t.Context(), &store.WebSession{IDHash: hex.EncodeToString(sum[:]), UserID: user.ID,
		CSRFToken: csrf, CreatedAt: now, LastSeenAt: now}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/settings/integrations/link-code", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", formType)
	req.AddCookie(&http.Cookie{Name: "hero_session", Value: sid})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile("/hero link ([A-Z0-9]{8})").FindStringSubmatch(html.UnescapeString(string(body)))
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("settings page: %d, no link code in\n%s", resp.StatusCode, body)
	}
	return m[1]
}

// TestLinkSlackAccount: a hero user who signed in on the web links a Slack
// account whose email hero does not know with `/hero link CODE`; from then
// on that Slack account has the user's project role.
func TestLinkSlackAccount(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t, openaitest.Tools(call("finish", `{"summary":"done"}`)))
	e := newEnv(t, model)
	e.bind("C1")
	ctx := t.Context()
	u, err := e.db.UpsertUser(ctx, "lin@example.com", "Lin")
	if err != nil {
		t.Fatal(err)
	}
	ephemeral := func(want string) {
		t.Helper()
		e.slack.waitFor(t, "an ephemeral to U7 with "+want, func(cs []apiCall) bool {
			return has(cs, "chat.postEphemeral", func(c apiCall) bool { return c.User == "U7" && strings.Contains(c.Text, want) })
		})
	}

	// U7's Slack email is not confirmed: hero does not know them, and says
	// how to link.
	e.slack.mu.Lock()
	e.slack.users["U7"] = fakeUser{email: "lin@example.com", confirmed: false}
	e.slack.mu.Unlock()
	e.command("U7", "C1", "run fix the adder", "trig-l1")
	ephemeral("/hero link CODE")

	code := webLinkCode(t, e.db, u)
	e.command("U7", "C1", "link "+strings.ToLower(code), "trig-l2")
	ephemeral("Linked: this account now acts as lin@example.com in hero")
	if got, err := e.db.UserByIdentity(ctx, Surface, "T1/U7"); err != nil || got.ID != u.ID {
		t.Fatalf("identity slack T1/U7 → %+v, %v; want user %d", got, err, u.ID)
	}

	// Linked but not a member: refused.
	e.command("U7", "C1", "run fix the adder", "trig-l3")
	ephemeral("You need to be a member of project *web*")

	// With a role set in hero, the Slack account starts runs.
	if err := e.db.SetMember(ctx, e.project.ID, u.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	e.command("U7", "C1", "run fix the adder", "trig-l4")
	e.slack.waitFor(t, "the 'on it' reply", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Text, "On it: run") })
	})

	// The code worked once; nothing hero said repeats it.
	e.command("U7", "C1", "link "+code, "trig-l5")
	ephemeral("unknown, already used or expired")
	for _, c := range e.slack.snapshot() {
		if strings.Contains(c.Text, code) || strings.Contains(c.Text, strings.ToLower(code)) {
			t.Fatalf("hero echoed the link code in %s: %q", c.Method, c.Text)
		}
	}
}

// TestLinkCodeReLinksAndIsBurnedInPublic: a code re-links a Slack account
// already mapped to someone else; a code posted in a channel message is
// cancelled instead of used.
func TestLinkCodeReLinksAndIsBurnedInPublic(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bind("C1")
	ctx := t.Context()
	e.user("U8", "old@example.com", "")
	newUser, err := e.db.UpsertUser(ctx, "new@example.com", "New")
	if err != nil {
		t.Fatal(err)
	}

	code := webLinkCode(t, e.db, newUser)
	e.command("U8", "C1", "link "+code, "trig-r1")
	e.slack.waitFor(t, "the re-link answer", func(cs []apiCall) bool {
		return has(cs, "chat.postEphemeral", func(c apiCall) bool {
			return c.User == "U8" && strings.Contains(c.Text, "now acts as new@example.com") && strings.Contains(c.Text, "acted as old@example.com before")
		})
	})
	if got, err := e.db.UserByIdentity(ctx, Surface, "T1/U8"); err != nil || got.ID != newUser.ID {
		t.Fatalf("after re-link: %+v, %v", got, err)
	}

	// "@hero link CODE" in a channel: everyone can read it, so the code
	// is spent without linking anyone.
	other, err := e.db.UpsertUser(ctx, "other@example.com", "Other")
	if err != nil {
		t.Fatal(err)
	}
	public := webLinkCode(t, e.db, other)
	e.post("/slack/events", "application/json", eventJSON("EvL", "app_mention", "U9", "C1", "<@UHERO> link "+public, "1700000300.000001", ""), time.Now())
	e.waitHandled("ev:EvL")
	e.slack.waitFor(t, "the cancelled-code reply", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Text, "so I cancelled it") })
	})
	if _, err := e.db.UserByIdentity(ctx, Surface, "T1/U9"); err == nil {
		t.Fatal("a code posted in a channel linked an account")
	}
	if _, err := e.db.UseLinkCode(ctx, public, time.Now()); err == nil {
		t.Fatal("a code posted in a channel still works")
	}

	// A direct message to hero is private: it links.
	dm := webLinkCode(t, e.db, other)
	e.post("/slack/events", "application/json", eventJSON("EvD", "message", "U9", "D9", "link "+dm, "1700000400.000001", ""), time.Now())
	e.waitHandled("ev:EvD")
	e.slack.waitFor(t, "the DM link answer", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool {
			return c.Channel == "D9" && strings.Contains(c.Text, "now acts as other@example.com")
		})
	})
	if got, err := e.db.UserByIdentity(ctx, Surface, "T1/U9"); err != nil || got.ID != other.ID {
		t.Fatalf("after a DM link: %+v, %v", got, err)
	}
}

// TestLinkCodeGuessingLimited (issue 8 #15): after five wrong codes in 15
// minutes an account is refused — even a right code — with a clear
// message, while other accounts still link; once the window has passed
// it may try again; and past the hourly cap for everyone together, nobody
// can link until it eases. The counts are in the database.
func TestLinkCodeGuessingLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	u, err := e.db.UpsertUser(ctx, "lin@example.com", "Lin")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	say := func(user, text, want string) {
		t.Helper()
		n++
		trig := fmt.Sprintf("guess-%d", n)
		e.command(user, "C1", text, trig)
		e.waitHandled("cmd:" + trig)
		e.slack.waitFor(t, "an ephemeral to "+user+" with "+want, func(cs []apiCall) bool {
			return count(cs, "chat.postEphemeral", func(c apiCall) bool { return c.User == user && strings.Contains(c.Text, want) }) > 0
		})
	}
	for i := range store.LinkFailsPerAccount {
		say("U5", fmt.Sprintf("link ZZZZZZZ%d", i+2), "unknown, already used or expired")
	}
	good := webLinkCode(t, e.db, u)
	say("U5", "link "+good, "Too many wrong link codes from this account: try again in 15 minutes")
	if _, err := e.db.UserByIdentity(ctx, Surface, "T1/U5"); err == nil {
		t.Fatal("a code worked past the limit")
	}
	// Another account is not held to U5's limit.
	say("U6", "link "+good, "Linked: this account now acts as lin@example.com")

	// After the window (its failures moved back in time), U5 may try again.
	if _, err := e.db.Bun().NewUpdate().Table("limit_events").Set("created_at = ?", time.Now().Add(-store.LinkFailWindow-time.Minute).UTC()).
		Where("subject = ?", "slack:T1/U5").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	again := webLinkCode(t, e.db, u)
	say("U5", "link "+again, "Linked: this account now acts as lin@example.com")

	// Everyone together: past the hourly cap nobody links.
	for i := range store.LinkFailsPerHour {
		if err := e.db.RecordLimitEvent(ctx, store.LimitLinkFail, fmt.Sprintf("slack:T9/G%d", i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	third := webLinkCode(t, e.db, u)
	say("U4", "link "+third, "linking is paused for everyone")
	if _, err := e.db.UserByIdentity(ctx, Surface, "T1/U4"); err == nil {
		t.Fatal("a code worked past the global cap")
	}
}
