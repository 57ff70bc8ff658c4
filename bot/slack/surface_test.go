package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/store"
)

// TestRateLimited: Slack answers 429 with Retry-After; the messages still
// arrive, later, in order.
func TestRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.slack.mu.Lock()
	e.slack.limit429["chat.postMessage"] = 2
	e.slack.mu.Unlock()
	start := time.Now()
	e.a.reply("T1", "C7", "", "first")
	e.a.reply("T1", "C7", "", "second")
	calls := e.slack.waitFor(t, "both messages", func(cs []apiCall) bool {
		return count(cs, "chat.postMessage", nil) == 2
	})
	var got []string
	for _, c := range calls {
		if c.Method == "chat.postMessage" {
			got = append(got, c.Text)
			if d := c.At.Sub(start); d < 1900*time.Millisecond {
				t.Errorf("%q sent %s after two 429s with Retry-After: 1", c.Text, d)
			}
		}
	}
	if strings.Join(got, ",") != "first,second" {
		t.Fatalf("messages arrived as %v, want first,second", got)
	}
	if n := count(calls, "chat.postMessage:429", nil); n != 2 {
		t.Fatalf("%d rate-limited attempts, want 2", n)
	}
}

// TestRateLimitPausesWorkspace: Slack's limits are per method and
// workspace, so after a 429 in one channel the other channels wait too
// instead of hammering Slack.
func TestRateLimitPausesWorkspace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.slack.mu.Lock()
	e.slack.limit429["chat.postMessage"] = 1
	e.slack.mu.Unlock()
	e.a.reply("T1", "CA", "", "first")
	calls := e.slack.waitFor(t, "the 429", func(cs []apiCall) bool { return count(cs, "chat.postMessage:429", nil) == 1 })
	// Slack answered the 429 at this moment, before hero read it: the
	// pause it asked for ends at least Retry-After (1 s) later, whenever
	// the test gets to notice.
	var limited time.Time
	for _, c := range calls {
		if c.Method == "chat.postMessage:429" {
			limited = c.At
		}
	}
	// The other channel's message is sent once hero has read the 429: one
	// sent while the answer is still on its way would rightly go out.
	enginetest.Eventually(t, "hero to read the 429", func() bool {
		e.a.out.mu.Lock()
		defer e.a.out.mu.Unlock()
		return !e.a.out.paused["T1|chat.postMessage"].IsZero()
	})
	e.a.reply("T1", "CB", "", "other channel")
	calls = e.slack.waitFor(t, "both messages", func(cs []apiCall) bool { return count(cs, "chat.postMessage", nil) == 2 })
	for _, c := range calls {
		if c.Method == "chat.postMessage" && c.At.Sub(limited) < time.Second {
			t.Errorf("%q went out %s after a 429 with Retry-After: 1", c.Text, c.At.Sub(limited))
		}
	}
	if n := count(calls, "chat.postMessage:429", nil); n != 1 {
		t.Fatalf("%d rate-limited attempts, want 1: the other channel hit the limit too", n)
	}
}

// fakeRun records an execution the surface can render without running it.
func fakeRun(t testing.TB, e *env, thread string) *store.Execution {
	t.Helper()
	ex := &store.Execution{ProjectID: e.project.ID, Status: store.StatusRunning, Surface: Surface, ThreadRef: threadRef("T1", "C1", thread),
		Requester: "slack:T1/U1", Task: "chatty", Model: "m", CostKnown: true}
	if err := e.db.CreateExecution(context.Background(), ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

// chatty drives Update with n steps spread over d and returns the
// progress message's edits.
func chatty(t testing.TB, e *env, ex *store.Execution, n int, d time.Duration) (progressTS string, edits []apiCall) {
	ctx := context.Background()
	e.a.Update(ctx, ex, engine.Event{Kind: engine.EventStarted, Text: "On it"})
	tick := d / time.Duration(n)
	for i := range n {
		ex.Steps, ex.TokensIn, ex.CostUSD = i+1, int64(100*(i+1)), 0.001*float64(i+1)
		e.a.Update(ctx, ex, engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepTool, Tool: "run_command",
			Arguments: fmt.Sprintf(`{"command":"echo step %d"}`, i+1), Output: "ok"}})
		time.Sleep(tick)
	}
	ex.Status = store.StatusSucceeded
	e.a.Update(ctx, ex, engine.Event{Kind: engine.EventFinished, Outcome: &engine.Outcome{Status: store.StatusSucceeded, Summary: "chatty done", Steps: n, CostKnown: true}})
	calls := e.slack.waitFor(t, "the last progress edit", func(cs []apiCall) bool {
		return has(cs, "chat.update", func(c apiCall) bool {
			return strings.Contains(c.Blocks, fmt.Sprintf("%d steps", n)) && strings.Contains(c.Text, "succeeded")
		})
	})
	for _, c := range calls {
		if c.Method == "chat.postMessage" && strings.Contains(c.Text, "Run "+ex.ID+":") {
			progressTS = c.TS
		}
	}
	for _, c := range calls {
		if c.Method == "chat.update" && c.TS == progressTS {
			edits = append(edits, c)
		}
	}
	return progressTS, edits
}

// TestProgressThrottled: 60 steps in 3 s give about 3 edits of one
// message, never two within a second, the last one showing the end.
func TestProgressThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ex := fakeRun(t, e, "1700000400.000001")
	start := time.Now()
	_, edits := chatty(t, e, ex, 60, 3*time.Second)
	// The steps take 3 s or, on a loaded machine, longer: an edit a second
	// over the time they really took, plus the first one.
	took := time.Since(start)
	for i := 1; i < len(edits); i++ {
		if gap := edits[i].At.Sub(edits[i-1].At); gap < time.Second {
			t.Errorf("edits %d and %d are %s apart", i-1, i, gap)
		}
	}
	if most := int(took/time.Second) + 1; len(edits) > most {
		t.Errorf("%d edits for %s of steps, want at most %d", len(edits), took.Round(time.Millisecond), most)
	}
	if !strings.Contains(edits[len(edits)-1].Blocks, "echo step 60") {
		t.Errorf("last edit lacks the last step: %s", edits[len(edits)-1].Blocks)
	}
}

// TestClickAfterRestart: the buttons work from the database alone — an
// approval of a confirmation no process is waiting on, and a click on an
// expired one.
func TestClickAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.user("U2", "approver@example.com", store.RoleApprover)
	ctx := context.Background()
	ex := fakeRun(t, e, "1700000500.000001")
	ex.Status = store.StatusWaiting
	e.db.UpdateExecution(ctx, ex, "status")
	now := time.Now()
	live := &store.Confirmation{ExecutionID: ex.ID, ProjectID: e.project.ID, Kind: store.ConfirmKindTool, Tool: "git_push",
		Action: "git push origin hero/x", Risk: "high", Status: store.ConfirmPending, ExpiresAt: now.Add(time.Hour), CreatedAt: now,
		SurfaceRef: "T1/C1/1700000500.000002"}
	old := &store.Confirmation{ExecutionID: ex.ID, ProjectID: e.project.ID, Kind: store.ConfirmKindTool, Tool: "delete_file",
		Action: "delete README.md", Risk: "medium", Status: store.ConfirmPending, ExpiresAt: now.Add(-time.Minute), CreatedAt: now.Add(-time.Hour),
		SurfaceRef: "T1/C1/1700000500.000003"}
	for _, c := range []*store.Confirmation{live, old} {
		if err := e.db.CreateConfirmation(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// The high-risk one carries a confirm dialog.
	_, blocks := confirmationMessage(live, now)
	b, _ := json.Marshal(blocks)
	if !strings.Contains(string(b), `"confirm"`) || !strings.Contains(string(b), "git push origin hero/x") {
		t.Fatalf("high-risk buttons without a confirm dialog showing the action: %s", b)
	}

	e.click("U2", "C1", "1700000500.000002", actionApprove, live.ID, "trig-r1")
	e.slack.waitFor(t, "the approved message", func(cs []apiCall) bool {
		return has(cs, "chat.update", func(c apiCall) bool {
			return c.TS == "1700000500.000002" && strings.Contains(c.Blocks, "Approved by") && !strings.Contains(c.Blocks, actionApprove)
		})
	})
	if c, _ := e.db.Confirmation(ctx, live.ID); c.Status != store.ConfirmApproved || c.DecidedBy != "slack:T1/U2" {
		t.Fatalf("confirmation after the click: %s by %s", c.Status, c.DecidedBy)
	}

	e.click("U2", "C1", "1700000500.000003", actionApprove, old.ID, "trig-r2")
	e.slack.waitFor(t, "the expired message and notice", func(cs []apiCall) bool {
		return has(cs, "chat.update", func(c apiCall) bool {
			return c.TS == "1700000500.000003" && strings.Contains(c.Blocks, "Expired") && !strings.Contains(c.Blocks, actionApprove)
		}) && has(cs, "chat.postEphemeral", func(c apiCall) bool { return c.User == "U2" && strings.Contains(c.Text, "expired") })
	})
	if c, _ := e.db.Confirmation(ctx, old.ID); c.Status != store.ConfirmExpired {
		t.Fatalf("expired confirmation is %s after a click", c.Status)
	}
}

// TestSocketMode: hero opens a Socket Mode connection (apps.connections.
// open → websocket), receives an event and a slash command, acknowledges
// each after storing it, and answers.
func TestSocketMode(t *testing.T) {
	t.Parallel()
	acks := make(chan string, 8)
	e := newEnv(t, nil, func(c *Config, fs *fakeSlack) {
		c.AppToken = "xapp-1-test"
		c.SigningSecret = "" // HTTP routes off: everything comes over the socket
		fs.ws = func(w http.ResponseWriter, r *http.Request) {
			// Slack's client sends Origin: https://api.slack.com.
			up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				t.Logf("websocket upgrade: %v", err)
				return
			}
			defer conn.Close()
			conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1, "connection_info": map[string]any{"app_id": "A1"}})
			conn.WriteJSON(map[string]any{"type": "events_api", "envelope_id": "env-1", "accepts_response_payload": false,
				"payload": json.RawMessage(eventJSON("EvSock", "app_mention", "U1", "C3", "<@UHERO> help", "1700000600.000001", ""))})
			conn.WriteJSON(map[string]any{"type": "slash_commands", "envelope_id": "env-2", "accepts_response_payload": true,
				"payload": map[string]any{"team_id": "T1", "channel_id": "C3", "user_id": "U1", "command": "/hero", "text": "frobnicate", "trigger_id": "sock-trig"}})
			for {
				var msg struct {
					EnvelopeID string `json:"envelope_id"`
				}
				if err := conn.ReadJSON(&msg); err != nil {
					return
				}
				acks <- msg.EnvelopeID
			}
		}
	})
	got := map[string]bool{}
	deadline := time.After(enginetest.Patience)
	for len(got) < 2 {
		select {
		case id := <-acks:
			got[id] = true
		case <-deadline:
			t.Fatalf("acks received: %v", got)
		}
	}
	e.waitHandled("ev:EvSock")
	e.waitHandled("cmd:sock-trig")
	e.slack.waitFor(t, "the answers", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool {
			return c.ThreadTS == "1700000600.000001" && strings.Contains(c.Text, "/hero run")
		}) &&
			has(cs, "chat.postEphemeral", func(c apiCall) bool { return c.User == "U1" && strings.Contains(c.Text, "bound") })
	})
	// The HTTP routes are not mounted without a signing secret.
	resp, err := http.Post(e.srv.URL+"/slack/events", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("/slack/events without a signing secret: %d, want it unmounted", resp.StatusCode)
	}
}

// TestAddToSlack (issue 8 #6): only a hero site administrator, logged in
// on the settings page, can install hero into a workspace. The state is
// bound to their session; the callback checks it, exchanges the code and
// stores the bot token encrypted and the workspace as allowed by them;
// later calls for that workspace use its token.
func TestAddToSlack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	admin, err := e.db.UpsertUser(ctx, "admin@example.com", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetUserAdmin(ctx, admin.ID, true); err != nil {
		t.Fatal(err)
	}
	member, err := e.db.UpsertUser(ctx, "member@example.com", "Member")
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string, cookie *http.Cookie) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := (&http.Client{CheckRedirect: noRedirect}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// Nobody logged in: to the login page, and back here afterwards.
	resp := get("/slack/install", nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/settings/login?next=%2Fslack%2Finstall" {
		t.Fatalf("install without a hero login: %d %q, want a redirect to the login page", resp.StatusCode, loc)
	}
	// A hero user who is not a site administrator: refused.
	if resp := get("/slack/install", e.session(member)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("install by a non-admin: %d, want 403", resp.StatusCode)
	}

	adminBrowser := e.session(admin)
	resp = get("/slack/install", adminBrowser)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Host != strings.TrimPrefix(e.slack.srv.URL, "http://") || loc.Path != "/oauth/v2/authorize" ||
		loc.Query().Get("client_id") != "cid" || loc.Query().Get("redirect_uri") != "https://hero.example/slack/oauth/callback" {
		t.Fatalf("install: %d %s (want Slack's consent page next to SLACK_API_URL)", resp.StatusCode, loc)
	}
	state := loc.Query().Get("state")

	callback := func(q string, cookie *http.Cookie) int { return get("/slack/oauth/callback?"+q, cookie).StatusCode }
	if s := callback("code=good-code&state="+url.QueryEscape(state+"x"), adminBrowser); s != http.StatusBadRequest {
		t.Errorf("tampered state: %d", s)
	}
	// The state of the admin's session, used in another session (another
	// admin's browser, or an attacker who lured the admin): refused.
	otherAdmin := e.session(admin)
	if s := callback("code=good-code&state="+url.QueryEscape(state), otherAdmin); s != http.StatusBadRequest {
		t.Errorf("state from another session: %d, want 400", s)
	}
	if s := callback("code=good-code&state="+url.QueryEscape(state), nil); s != http.StatusSeeOther {
		t.Errorf("callback without a session: %d, want a redirect to log in", s)
	}
	if _, _, err := e.db.SlackTeamToken(ctx, "T2"); err == nil {
		t.Fatal("a refused callback installed the workspace")
	}
	if s := callback("code=bad&state="+url.QueryEscape(state), adminBrowser); s != http.StatusBadGateway {
		t.Errorf("refused code: %d", s)
	}
	resp = get("/slack/oauth/callback?code=good-code&state="+url.QueryEscape(state), adminBrowser)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings/integrations?ok=slack-installed" {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	team, tok, err := e.db.SlackTeamToken(ctx, "T2")
	if err != nil || tok != "xoxb-installed" || team.BotUserID != "UBOT2" || team.ApprovedBy != "admin@example.com" {
		t.Fatalf("stored team: %+v %q %v", team, tok, err)
	}
	// Messages to the new workspace use its token; the first one keeps
	// the configured SLACK_BOT_TOKEN.
	e.a.reply("T2", "C1", "", "hello second")
	e.a.reply("T1", "C1", "", "hello first")
	e.slack.waitFor(t, "both workspaces' messages with their tokens", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return c.Text == "hello second" && c.Token == "xoxb-installed" }) &&
			has(cs, "chat.postMessage", func(c apiCall) bool { return c.Text == "hello first" && c.Token == "xoxb-test" })
	})
}

// TestUnknownWorkspaceRefused (issue 8 #6): a workspace nobody at hero
// installed or allowed (the app installed from Slack's side, or an
// install from before installs needed a hero login) gets a clear refusal
// and nothing else: no run, and no email matching — even for a person
// whose Slack email is a hero project owner's.
func TestUnknownWorkspaceRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.a.hooks = append(e.a.hooks, e.slack.srv.URL+"/hooks/")
	owner, err := e.db.UpsertUser(ctx, "owner@example.com", "Owner")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetMember(ctx, e.project.ID, owner.ID, store.RoleOwner); err != nil {
		t.Fatal(err)
	}
	e.slack.mu.Lock()
	e.slack.users["UEVIL"] = fakeUser{email: "owner@example.com", confirmed: true}
	e.slack.mu.Unlock()
	if err := e.db.BindChannel(ctx, Surface, "TEVIL/C1", e.project.ID, "test"); err != nil {
		t.Fatal(err)
	}
	// An install nobody at hero approved (as made before this fix).
	if err := e.db.SaveSlackTeam(ctx, store.SlackTeam{TeamID: "TOLD", TeamName: "Old", BotUserID: "UB"}, "xoxb-old"); err != nil {
		t.Fatal(err)
	}
	if err := e.db.BindChannel(ctx, Surface, "TOLD/C1", e.project.ID, "test"); err != nil {
		t.Fatal(err)
	}
	for i, team := range []string{"TEVIL", "TOLD"} {
		f := url.Values{"team_id": {team}, "channel_id": {"C1"}, "user_id": {"UEVIL"}, "command": {"/hero"}, "text": {"delete the production database"},
			"response_url": {e.slack.srv.URL + "/hooks/" + team + "/1/x"}, "trigger_id": {"evil-" + team}}
		if r := e.post("/slack/commands", formType, []byte(f.Encode()), time.Now()); r.StatusCode != http.StatusOK {
			t.Fatalf("%s: command status %d", team, r.StatusCode)
		}
		e.waitHandled("cmd:evil-" + team)
		e.slack.waitFor(t, "the refusal for "+team, func(cs []apiCall) bool {
			return count(cs, "response_url", func(c apiCall) bool { return c.Text == refusal }) == i+1
		})
	}
	exs, err := e.db.ListExecutions(ctx, store.ExecutionFilter{ProjectID: e.project.ID})
	if err != nil || len(exs) != 0 {
		t.Fatalf("a refused workspace started runs: %d %v", len(exs), err)
	}
	calls := e.slack.snapshot()
	if has(calls, "users.info", nil) || has(calls, "chat.postMessage", nil) {
		t.Fatalf("a refused workspace was looked up or answered in the channel:\n%s", dumpCalls(calls))
	}
	for _, ext := range []string{"TEVIL/UEVIL", "TOLD/UEVIL"} {
		if _, err := e.db.UserByIdentity(ctx, Surface, ext); err == nil {
			t.Fatalf("%s was matched to a hero user by email", ext)
		}
	}

	// A mention in each: the installed one is answered in the thread with
	// its own token; the unknown one has no way back, so only a log line.
	for _, team := range []string{"TEVIL", "TOLD"} {
		var ev map[string]any
		json.Unmarshal(eventJSON("EvRefuse"+team, "app_mention", "UEVIL", "C1", "<@UHERO> deploy", "1700000500.000001", ""), &ev)
		ev["team_id"] = team
		body, _ := json.Marshal(ev)
		e.post("/slack/events", "application/json", body, time.Now())
		e.waitHandled("ev:EvRefuse" + team)
	}
	calls = e.slack.waitFor(t, "the refusal in the mention's thread", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool {
			return c.Text == refusal && c.Token == "xoxb-old" && c.ThreadTS == "1700000500.000001"
		})
	})
	if n := count(calls, "chat.postMessage", nil); n != 1 || has(calls, "users.info", nil) {
		t.Fatalf("refused mentions: %d messages posted, or a user looked up:\n%s", n, dumpCalls(calls))
	}

	// Once a site administrator allows the old install, its people are
	// matched by email and may work.
	if err := e.db.ApproveSlackTeam(ctx, "TOLD", "admin@example.com"); err != nil {
		t.Fatal(err)
	}
	f := url.Values{"team_id": {"TOLD"}, "channel_id": {"C1"}, "user_id": {"UEVIL"}, "command": {"/hero"}, "text": {"budget"},
		"response_url": {e.slack.srv.URL + "/hooks/TOLD/2/x"}, "trigger_id": {"allowed-TOLD"}}
	e.post("/slack/commands", formType, []byte(f.Encode()), time.Now())
	e.waitHandled("cmd:allowed-TOLD")
	if u, err := e.db.UserByIdentity(ctx, Surface, "TOLD/UEVIL"); err != nil || u.ID != owner.ID {
		t.Fatalf("allowed workspace: email match %v %v", u, err)
	}
}

// TestPacedPerChannel: a burst of posts to one channel goes out at the
// configured pace after the allowed burst; another channel is not held up.
func TestPacedPerChannel(t *testing.T) {
	t.Parallel()
	const interval, burst = 200 * time.Millisecond, 2
	e := newEnv(t, nil, func(c *Config, _ *fakeSlack) { c.PostInterval, c.PostBurst = interval, burst })
	start := time.Now()
	for i := range 5 {
		e.a.reply("T1", "CP", "", fmt.Sprintf("busy %d", i))
	}
	e.a.reply("T1", "CQ", "", "other channel")
	calls := e.slack.waitFor(t, "all posts", func(cs []apiCall) bool { return count(cs, "chat.postMessage", nil) == 6 })
	var busy []time.Time
	var other time.Time
	for _, c := range calls {
		switch {
		case c.Channel == "CP":
			busy = append(busy, c.At)
		case c.Channel == "CQ":
			other = c.At
		}
	}
	// Burst of 2, then one per 200 ms from when the channel's lane began
	// (after start): post i waits for (i-1) intervals. Measured from start,
	// not from the first post's arrival, which can be late by any amount.
	for i, at := range busy[burst:] {
		if d, least := at.Sub(start), time.Duration(i+1)*interval; d < least {
			t.Errorf("post %d to one channel went out %s after the burst began, want at least %s (paced at %s after a burst of %d)", burst+i, d, least, interval, burst)
		}
	}
	if other.After(busy[4]) {
		t.Fatalf("the other channel waited behind the busy one")
	}
}

// TestEmailMapping: a Slack user with a confirmed email that matches a hero
// user is linked on first contact; an unconfirmed email is not trusted.
func TestEmailMapping(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, func(_ *Config, fs *fakeSlack) {
		fs.users["U5"] = fakeUser{email: "Dev@Example.com", confirmed: true}
		fs.users["U6"] = fakeUser{email: "ops@example.com", confirmed: false}
	})
	ctx := context.Background()
	for _, email := range []string{"dev@example.com", "ops@example.com"} {
		u, err := e.db.UpsertUser(ctx, email, email)
		if err != nil {
			t.Fatal(err)
		}
		e.db.SetMember(ctx, e.project.ID, u.ID, store.RoleMember)
	}
	e.bind("CM")
	e.command("U6", "CM", "budget", "em-0")
	e.command("U6", "CM", "run tidy up", "em-1")
	e.slack.waitFor(t, "the refusal for an unconfirmed email", func(cs []apiCall) bool {
		return has(cs, "chat.postEphemeral", func(c apiCall) bool { return c.User == "U6" && strings.Contains(c.Text, "does not know you") })
	})
	hero, err := e.a.heroUser(ctx, "T1", "U5")
	if err != nil || hero == nil || hero.Email != "dev@example.com" {
		t.Fatalf("U5 mapped to %+v (%v), want dev@example.com", hero, err)
	}
	if u, err := e.db.UserByIdentity(ctx, Surface, "T1/U5"); err != nil || u.Email != "dev@example.com" {
		t.Fatalf("identity not linked after the email match: %v %v", u, err)
	}
	if _, err := e.db.UserByIdentity(ctx, Surface, "T1/U6"); err == nil {
		t.Fatal("an unconfirmed email was linked")
	}
}
