package github

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/store"
)

const fixtureRepo = "https://github.com/Codertocat/Hello-World"

func (e *env) post(body []byte, header map[string]string) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/github/webhook", bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *env) stored(id string) int {
	e.t.Helper()
	n, err := e.db.Bun().NewSelect().Model((*store.Delivery)(nil)).Where("source = ? AND delivery_id = ?", Source, id).Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

func (e *env) rec() *enginetest.Recorder { return e.eng.(*enginetest.Recorder) }

// mentionComment is a new comment (its own updated_at, so it is not a
// replay of an earlier one: see replay.go).
func mentionComment(t *testing.T, body, assoc, login, typ string) []byte {
	return fixture(t, "issue_comment.created.json", map[string]any{
		"comment.body": body, "comment.author_association": assoc, "comment.user.login": login, "comment.user.type": typ,
		"comment.updated_at": freshTime(),
	})
}

var clockTicks atomic.Int64

// freshTime is a timestamp no other payload of the test run carries.
func freshTime() string {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(clockTicks.Add(1)) * time.Second).Format(time.RFC3339)
}

func TestIntakeRequiresSecret(t *testing.T) {
	t.Parallel()
	if _, err := NewIntake(nil, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "GITHUB_WEBHOOK_SECRET") {
		t.Fatalf("empty secret accepted: %v", err)
	}
}

func TestIntakeBadSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	body := mentionComment(t, "@hero fix it", "OWNER", "Codertocat", "User")
	for name, sig := range map[string]string{
		"missing": "", "wrong secret": Sign([]byte("nope"), body), "not hex": "sha256=zz", "sha1": "sha1=" + strings.Repeat("0", 40),
	} {
		h := map[string]string{"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "bad-" + name, "Content-Type": "application/json"}
		if sig != "" {
			h["X-Hub-Signature-256"] = sig
		}
		if code := e.post(body, h); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, code)
		}
		if e.stored("bad-"+name) != 0 {
			t.Errorf("%s: delivery stored", name)
		}
	}
	// A body changed after signing fails too.
	h := map[string]string{"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "tampered", "X-Hub-Signature-256": Sign([]byte(testSecret), body)}
	if code := e.post(append(body, ' '), h); code != http.StatusUnauthorized {
		t.Errorf("tampered: %d", code)
	}
	if n := len(e.api.Calls()); n != 0 || len(e.rec().Starts()) != 0 {
		t.Fatalf("side effects: %d API calls, %d starts", n, len(e.rec().Starts()))
	}
}

func TestIntakeDuplicateDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	body := mentionComment(t, "@hero the date parser breaks on leap years, please fix", "OWNER", "Codertocat", "User")
	if code := e.deliver("issue_comment", "dup-1", body); code != http.StatusAccepted {
		t.Fatalf("first: %d", code)
	}
	if err := e.waitHandled("dup-1"); err != nil {
		t.Fatal(err)
	}
	if code := e.deliver("issue_comment", "dup-1", body); code != http.StatusOK {
		t.Fatalf("redelivery: %d, want 200", code)
	}
	if n := e.stored("dup-1"); n != 1 {
		t.Fatalf("stored %d times", n)
	}
	if n := len(e.rec().Starts()); n != 1 {
		t.Fatalf("%d runs started", n)
	}
	if rx := e.api.Reactions(); len(rx) != 1 || rx[0].Content != "eyes" || rx[0].CommentID != 492700400 {
		t.Fatalf("reactions %+v", rx)
	}
	st := e.rec().Starts()[0]
	if st.Surface != "github" || st.ThreadRef != "Codertocat/Hello-World#1@c492700400" || st.By.ID != "github:Codertocat" ||
		!strings.Contains(st.Task, "the date parser breaks on leap years, please fix") || strings.Contains(st.Task, "@hero") {
		t.Fatalf("start %+v", st)
	}
}

func TestIntakeOversizedBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	body := bytes.Repeat([]byte(" "), MaxBody+1)
	body[0] = '{'
	code := e.post(body, map[string]string{"X-GitHub-Event": "issues", "X-GitHub-Delivery": "big", "X-Hub-Signature-256": Sign([]byte(testSecret), body)})
	if code != http.StatusRequestEntityTooLarge || e.stored("big") != 0 {
		t.Fatalf("status %d, stored %d", code, e.stored("big"))
	}
}

func TestIntakeMalformed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	good := fixture(t, "issues.opened.json", nil)
	cases := map[string]struct {
		body   []byte
		header map[string]string
	}{
		"not json":    {[]byte(`{"action": "created",`), map[string]string{"X-GitHub-Event": "issues", "X-GitHub-Delivery": "m1"}},
		"json array":  {[]byte(`[1,2]`), map[string]string{"X-GitHub-Event": "issues", "X-GitHub-Delivery": "m2"}},
		"no event":    {good, map[string]string{"X-GitHub-Delivery": "m3"}},
		"no delivery": {good, map[string]string{"X-GitHub-Event": "issues"}},
	}
	for name, c := range cases {
		c.header["X-Hub-Signature-256"] = Sign([]byte(testSecret), c.body)
		if code := e.post(c.body, c.header); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, code)
		}
	}
	for _, id := range []string{"m1", "m2", "m3"} {
		if e.stored(id) != 0 {
			t.Errorf("%s stored", id)
		}
	}
	// A form-encoded delivery (the hook's other content type) is accepted.
	form := []byte("payload=" + urlEncode(string(good)))
	code := e.post(form, map[string]string{"X-GitHub-Event": "issues", "X-GitHub-Delivery": "form", "Content-Type": "application/x-www-form-urlencoded", "X-Hub-Signature-256": Sign([]byte(testSecret), form)})
	if code != http.StatusAccepted || e.waitHandled("form") != nil {
		t.Fatalf("form delivery: %d", code)
	}
}

func TestIntakeUnknownEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	body := []byte(`{"action":"purchased","marketplace_purchase":{"account":{"login":"x"}}}`)
	if code := e.deliver("marketplace_purchase", "unk-1", body); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	if err := e.waitHandled("unk-1"); err != nil {
		t.Fatalf("handler: %v", err)
	}
	if len(e.api.Calls()) != 0 || len(e.rec().Starts()) != 0 {
		t.Fatal("unknown event had effects")
	}
}

func TestPingAnswered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	if code := e.deliver("ping", "ping-1", fixture(t, "ping.json", nil)); code != http.StatusOK {
		t.Fatalf("ping: %d", code)
	}
}

func TestUntrustedAuthor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	for _, assoc := range []string{"NONE", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR"} {
		id := "u" + assoc
		e.deliver("issue_comment", id, mentionComment(t, "@hero delete everything", assoc, "stranger", "User"))
		if err := e.waitHandled(id); err != nil {
			t.Fatal(err)
		}
	}
	enginetest.Eventually(t, "the courtesy reply", func() bool { return len(e.api.Comments()) > 0 })
	// One polite answer per stranger, issue and day, however often they ask.
	e.deliver("issue_comment", "uother", mentionComment(t, "@hero please", "NONE", "other", "User"))
	if err := e.waitHandled("uother"); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, "the second stranger's reply", func() bool { return len(e.api.Comments()) == 2 })
	cs := e.api.Comments()
	if !strings.Contains(cs[0].Body, "@stranger") || !strings.Contains(cs[0].Body, "owners, members and collaborators") || !strings.Contains(cs[1].Body, "@other") {
		t.Fatalf("comments %+v", cs)
	}
	if len(e.rec().Starts()) != 0 || len(e.api.Reactions()) != 0 {
		t.Fatal("an untrusted author started work")
	}
	// The allow-list trusts a login whatever its association.
	e2 := newEnv(t, nil, nil, nil, fixtureRepo, func(c *envConfig) { c.AllowList = []string{"friend", "renovate[bot]"}; c.UntrustedReply = "custom no" })
	e2.deliver("issue_comment", "a1", mentionComment(t, "@hero go", "NONE", "friend", "User"))
	e2.deliver("issue_comment", "a2", mentionComment(t, "@hero go", "NONE", "renovate[bot]", "Bot"))
	e2.deliver("issue_comment", "a3", mentionComment(t, "@hero go", "NONE", "other", "User"))
	for _, id := range []string{"a1", "a2", "a3"} {
		if err := e2.waitHandled(id); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e2.rec().Starts()); n != 2 {
		t.Fatalf("allow-listed starts: %d", n)
	}
	enginetest.Eventually(t, "the custom reply", func() bool { return len(e2.api.Comments()) == 1 })
	if cs := e2.api.Comments(); len(cs) != 1 || cs[0].Body != "@other custom no" {
		t.Fatalf("custom reply: %+v", cs)
	}
}

func TestOwnAndBotCommentsIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	// hero's own progress comments mention /hero approve: no loop.
	e.deliver("issue_comment", "self", mentionComment(t, "/hero approve c123\n@hero", "NONE", "hero-bot", "User"))
	e.deliver("issue_comment", "bot", mentionComment(t, "@hero bump deps", "MEMBER", "dependabot[bot]", "Bot"))
	for _, id := range []string{"self", "bot"} {
		if err := e.waitHandled(id); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.api.Calls()) != 0 || len(e.rec().Starts()) != 0 || len(e.rec().Decides()) != 0 {
		t.Fatalf("own/bot comment had effects: %+v", e.api.Calls())
	}
}

func TestFixturesReplayed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	entries, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ent := range entries {
		name := ent.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		event, _, _ := strings.Cut(name, ".")
		code := e.deliver(event, "fx-"+name, fixture(t, name, nil))
		if code/100 != 2 {
			t.Errorf("%s: status %d", name, code)
		}
		if event != "ping" {
			if err := e.waitHandled("fx-" + name); err != nil {
				t.Errorf("%s: handler: %v", name, err)
			}
		}
		n++
	}
	if n < 15 {
		t.Fatalf("only %d fixtures", n)
	}
	// None of the recorded payloads calls hero: nothing starts, nothing
	// is posted.
	if len(e.rec().Starts()) != 0 || len(e.api.Calls()) != 0 {
		t.Fatalf("fixtures had effects: %d starts, calls %+v", len(e.rec().Starts()), e.api.Calls())
	}
}

func TestTriggers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo+".git")
	cases := []struct {
		event, id string
		body      []byte
		starts    bool
	}{
		{"issue_comment", "t-slash", mentionComment(t, "/hero fix the flaky test", "MEMBER", "Codertocat", "User"), true},
		{"issue_comment", "t-mid", mentionComment(t, "Thanks! cc @HERO can you look at this", "COLLABORATOR", "Codertocat", "User"), true},
		{"issue_comment", "t-email", mentionComment(t, "mail me at someone@hero.dev", "OWNER", "Codertocat", "User"), false},
		{"issue_comment", "t-other", mentionComment(t, "@heroine please", "OWNER", "Codertocat", "User"), false},
		{"issue_comment", "t-edit", fixture(t, "issue_comment.edited.json", map[string]any{"comment.body": "@hero fix"}), false},
		{"issues", "t-label", fixture(t, "issues.labeled.json", map[string]any{"label.name": "hero"}), true},
		{"issues", "t-label-other", fixture(t, "issues.labeled.json", nil), false},
		{"issues", "t-assign", fixture(t, "issues.labeled.json", map[string]any{"action": "assigned", "assignee": map[string]any{"login": "hero-bot", "type": "Bot"}}), true},
		{"issues", "t-assign-other", fixture(t, "issues.labeled.json", map[string]any{"action": "assigned", "assignee": map[string]any{"login": "octocat", "type": "User"}}), false},
	}
	want := 0
	for _, c := range cases {
		e.deliver(c.event, c.id, c.body)
		if err := e.waitHandled(c.id); err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		if c.starts {
			want++
		}
		if got := len(e.rec().Starts()); got != want {
			t.Fatalf("%s: %d starts, want %d", c.id, got, want)
		}
	}
	rec := e.rec()
	if starts := rec.Starts(); starts[1].Task == "" || !strings.Contains(starts[1].Task, "can you look at this") || starts[2].ThreadRef != "Codertocat/Hello-World#1" {
		t.Fatalf("starts %+v", starts)
	}
	// Label and assignment get 👀 on the issue itself.
	var issueEyes int
	for _, r := range e.api.Reactions() {
		if r.CommentID == 0 && r.Issue == 1 && r.Content == "eyes" {
			issueEyes++
		}
	}
	if issueEyes != 2 {
		t.Fatalf("issue reactions %+v", e.api.Reactions())
	}
}

func TestUnknownRepository(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, "https://github.com/someone/else")
	e.deliver("issue_comment", "x1", mentionComment(t, "@hero fix", "OWNER", "Codertocat", "User"))
	if err := e.waitHandled("x1"); err != nil {
		t.Fatal(err)
	}
	if len(e.api.Calls()) != 0 || len(e.rec().Starts()) != 0 {
		t.Fatal("unknown repository had effects")
	}
	e2 := newEnv(t, nil, nil, nil, "https://github.com/someone/else", func(c *envConfig) { c.UnknownRepoReply = true })
	e2.deliver("issue_comment", "x2", mentionComment(t, "@hero fix", "OWNER", "Codertocat", "User"))
	if err := e2.waitHandled("x2"); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, "the unknown-repository reply", func() bool { return len(e2.api.Comments()) > 0 })
	if cs := e2.api.Comments(); len(cs) != 1 || !strings.Contains(cs[0].Body, "hero project add") {
		t.Fatalf("comments %+v", cs)
	}
}

func TestDecideCommands(t *testing.T) {
	t.Parallel()
	db := openStore(t, t.TempDir())
	rec := newRecorder(db)
	rec.DecideWith = func(id string, d engine.Decision) (*store.Confirmation, error) {
		switch id {
		case "cnope":
			return &store.Confirmation{ID: id, Status: store.ConfirmPending}, fmt.Errorf("only the person who started run r1 or a project approver can decide: %w", engine.ErrNotAllowed)
		case "cdone":
			return &store.Confirmation{ID: id, Status: store.ConfirmApproved}, errAlready
		}
		return &store.Confirmation{ID: id, Status: store.ConfirmApproved}, nil
	}
	e := newEnv(t, db, nil, rec, fixtureRepo)
	e.deliver("issue_comment", "d1", mentionComment(t, "/hero approve c4k9x2", "OWNER", "Codertocat", "User"))
	e.deliver("issue_comment", "d2", mentionComment(t, "/hero deny cdone wrong branch", "OWNER", "Codertocat", "User"))
	e.deliver("issue_comment", "d3", mentionComment(t, "/hero aprove c1", "OWNER", "Codertocat", "User"))
	e.deliver("issue_comment", "d4", mentionComment(t, "@hero approve cnope", "COLLABORATOR", "someone", "User"))
	for _, id := range []string{"d1", "d2", "d3", "d4"} {
		if err := e.waitHandled(id); err != nil {
			t.Fatal(err)
		}
	}
	if decides := decided(rec); len(decides) != 3 || !slices.Contains(decides, "c4k9x2:github:Codertocat") || !slices.Contains(decides, "cnope:github:someone") {
		t.Fatalf("decides %v", decides)
	}
	var bodies []string
	for _, c := range e.api.Comments() {
		bodies = append(bodies, c.Body)
	}
	all := strings.Join(bodies, "\n---\n")
	if len(bodies) != 3 || !strings.Contains(all, "`cdone` was already approved") || !strings.Contains(all, "Did you mean `/hero approve`?") ||
		!strings.Contains(all, "@someone You may not decide `cnope`") {
		t.Fatalf("replies:\n%s", all)
	}
	// The successful decision is acknowledged with 👍 on its comment.
	var plus int
	for _, r := range e.api.Reactions() {
		if r.Content == "+1" {
			plus++
		}
	}
	if plus != 1 {
		t.Fatalf("reactions %+v", e.api.Reactions())
	}
}

var errAlready = wrapErr(engine.ErrAlreadyDecided)

func wrapErr(err error) error {
	return errors.Join(errors.New("confirmation was already decided"), err)
}

func urlEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return b.String()
}

func TestLinkedAccountNeedsProjectMemberRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	ctx := t.Context()
	u, err := e.db.UpsertUser(ctx, "vic@example.com", "Vic")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.LinkIdentity(ctx, "github", "vic", u.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetMember(ctx, e.project.ID, u.ID, store.RoleViewer); err != nil {
		t.Fatal(err)
	}
	// A repository collaborator whose hero account is only a viewer.
	e.deliver("issue_comment", "v1", mentionComment(t, "@hero fix it", "COLLABORATOR", "vic", "User"))
	if err := e.waitHandled("v1"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.rec().Starts()); n != 0 {
		t.Fatalf("a viewer started %d runs", n)
	}
	if cs := e.api.Comments(); len(cs) != 1 || !strings.Contains(cs[0].Body, "@vic You need to be a member of project") {
		t.Fatalf("comments = %+v", cs)
	}
	// Made a member, the same person starts a run.
	if err := e.db.SetMember(ctx, e.project.ID, u.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	e.deliver("issue_comment", "v2", mentionComment(t, "@hero fix it", "COLLABORATOR", "vic", "User"))
	if err := e.waitHandled("v2"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.rec().Starts()); n != 1 {
		t.Fatalf("a member started %d runs, want 1", n)
	}
}

func TestLinkCodeInACommentIsCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	ctx := t.Context()
	u, err := e.db.UpsertUser(ctx, "lin@example.com", "Lin")
	if err != nil {
		t.Fatal(err)
	}
	code := store.NewLinkCode()
	if err := e.db.CreateLinkCode(ctx, u.ID, code, time.Now().Add(store.LinkCodeTTL)); err != nil {
		t.Fatal(err)
	}
	e.deliver("issue_comment", "l1", mentionComment(t, "/hero link "+code, "OWNER", "lin", "User"))
	if err := e.waitHandled("l1"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.rec().Starts()); n != 0 {
		t.Fatalf("a link command started %d runs", n)
	}
	if cs := e.api.Comments(); len(cs) != 1 || !strings.Contains(cs[0].Body, "cancelled") || strings.Contains(cs[0].Body, code) {
		t.Fatalf("comments = %+v", cs)
	}
	if _, err := e.db.UseLinkCode(ctx, code, time.Now()); err == nil {
		t.Fatal("the code posted publicly still works")
	}
}
