package slack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	"github.com/hero-dev/hero/web"
)

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// env is a running hero with the Slack surface: real SQLite store, real
// engine and model client against a scripted fake model server, the
// adapter's HTTP routes on a loopback server, the fake Slack Web API.
// Runs work in enginetest's in-memory workspaces (no bubblewrap), or in
// bubblewrap sandboxes holding a git repository for the end-to-end tests
// (newRealEnv).
type env struct {
	t       testing.TB
	db      *store.DB
	eng     *engine.Engine
	a       *Adapter
	slack   *fakeSlack
	srv     *httptest.Server
	project *store.Project
	ctx     context.Context
	dir     string
	real    bool
	stop    func()

	handled *storetest.Handled
}

type envOpt func(*Config, *fakeSlack)

// newEnv starts hero with in-memory workspaces: what a surface test
// needs, in milliseconds.
func newEnv(t testing.TB, model *openaitest.Server, opts ...envOpt) *env {
	t.Helper()
	return startEnv(t, t.TempDir(), nil, model, false, opts...)
}

// newRealEnv starts hero whose runs work in bubblewrap sandboxes holding
// a git repository (enginetest.DemoRepo).
func newRealEnv(t testing.TB, model *openaitest.Server, opts ...envOpt) *env {
	t.Helper()
	return startEnv(t, t.TempDir(), nil, model, true, opts...)
}

// restart stops e (its runs stay in the database, as after a crash or a
// deploy) and starts a new hero on the same database, with a new Slack
// fake; it does not resume runs by itself.
func (e *env) restart(model *openaitest.Server) *env {
	e.t.Helper()
	e.stop()
	return startEnv(e.t, e.dir, e.project, model, e.real)
}

func startEnv(t testing.TB, dir string, project *store.Project, model *openaitest.Server, real bool, opts ...envOpt) *env {
	t.Helper()
	db := storetest.OpenIn(t, dir)
	if model == nil {
		model = openaitest.NewServer(t)
	}
	var ws engine.Workspaces = enginetest.Workspaces{}
	if real {
		ws = enginetest.NewGitWorkspaces(t, nil)
	}
	eng := enginetest.NewOn(t, db, ws, enginetest.OpenAI(t, model.URL(), "gpt-4o-mini"))
	fs := newFakeSlack(t)
	// The settings page on the same database: its sessions say who may
	// install hero into a workspace.
	site, err := web.New(web.Config{DB: db})
	if err != nil {
		t.Fatalf("settings page: %v", err)
	}
	cfg := Config{SigningSecret: testSecret, BotToken: "xoxb-test", APIURL: fs.apiURL(), Owner: "test",
		ClientID: "cid", ClientSecret: "csecret", RedirectURL: "https://hero.example/slack/oauth/callback", Sessions: site,
		PostInterval: 20 * time.Millisecond, WorkerPoll: 50 * time.Millisecond}
	for _, o := range opts {
		o(&cfg, fs)
	}
	a, err := New(cfg, db, eng, enginetest.Logger())
	if err != nil {
		t.Fatalf("slack adapter: %v", err)
	}
	eng.AddSurface(a)
	e := &env{t: t, db: db, eng: eng, a: a, slack: fs, dir: dir, real: real, handled: storetest.NewHandled(t)}
	a.OnHandled(e.handled.Record)
	mux := http.NewServeMux()
	a.Mount(mux)
	site.Mount(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	ctx, stop := enginetest.Serve(t, eng, a.Run)
	e.ctx = ctx
	e.stop = func() { stop(); e.srv.Close() }

	e.project = project
	if project == nil {
		e.project = storetest.Project(t, db, "web", "local")
	}
	return e
}

// user creates a hero user linked to Slack user T1/<slackID> with a role.
func (e *env) user(slackID, email string, role store.Role) *store.User {
	e.t.Helper()
	return storetest.User(e.t, e.db, e.project.ID, email, role, Surface, "T1/"+slackID)
}

// session logs user in to the settings page the way a login does (a
// session row) and returns the browser's cookie.
func (e *env) session(user *store.User) *http.Cookie {
	e.t.Helper()
	sid := fmt.Sprintf("session-%d-%s", time.Now().UnixNano(), user.Email)
	sum := sha256.Sum256([]byte(sid))
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := e.db.CreateSession(context.Background(), &store.WebSession{IDHash: hex.EncodeToString(sum[:]), UserID: user.ID,
		CSRFToken: "csrf-" + sid, CreatedAt: now, LastSeenAt: now}); err != nil {
		e.t.Fatal(err)
	}
	return &http.Cookie{Name: "hero_session", Value: sid}
}

// allowTeams installs hero into workspaces as a site administrator would
// (with the test's bot token).
func (e *env) allowTeams(teams ...string) {
	e.t.Helper()
	for _, team := range teams {
		if err := e.db.SaveSlackTeam(context.Background(), store.SlackTeam{TeamID: team, TeamName: team, ApprovedBy: "admin@example.com"}, "xoxb-test"); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) bind(channel string) {
	e.t.Helper()
	if err := e.db.BindChannel(context.Background(), Surface, "T1/"+channel, e.project.ID, "test"); err != nil {
		e.t.Fatal(err)
	}
}

// post sends body to path signed the way Slack signs, at time ts.
func (e *env) post(path, contentType string, body []byte, ts time.Time, header ...string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	stamp := strconv.FormatInt(ts.Unix(), 10)
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", Sign(testSecret, stamp, body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	return resp
}

const formType = "application/x-www-form-urlencoded"

// command sends a signed slash command and returns the response. In a
// D… channel it is typed in a direct message, as Slack says it.
func (e *env) command(user, channel, text, trigger string) *http.Response {
	name := "dev"
	if strings.HasPrefix(channel, "D") {
		name = "directmessage"
	}
	f := url.Values{"token": {"x"}, "team_id": {"T1"}, "team_domain": {"acme"}, "channel_id": {channel}, "channel_name": {name},
		"user_id": {user}, "user_name": {user}, "command": {"/hero"}, "text": {text}, "api_app_id": {"A1"},
		"response_url": {"https://hooks.slack.com/commands/T1/1/x"}, "trigger_id": {trigger}}
	return e.post("/slack/commands", formType, []byte(f.Encode()), time.Now())
}

// click sends a signed block_actions payload for a confirmation button.
func (e *env) click(user, channel, msgTS, actionID, confirmationID, trigger string) *http.Response {
	payload := fmt.Sprintf(`{"type":"block_actions","user":{"id":%q,"username":"u","team_id":"T1"},"api_app_id":"A1","token":"x",`+
		`"container":{"type":"message","message_ts":%q,"channel_id":%q,"is_ephemeral":false},"trigger_id":%q,`+
		`"team":{"id":"T1","domain":"acme"},"channel":{"id":%q,"name":"dev"},"message":{"type":"message","ts":%q,"text":"x"},`+
		`"actions":[{"action_id":%q,"block_id":"b","text":{"type":"plain_text","text":"Approve"},"value":%q,"type":"button","action_ts":"1700000001.000001"}]}`,
		user, msgTS, channel, trigger, channel, msgTS, actionID, confirmationID)
	return e.post("/slack/interactions", formType, []byte(url.Values{"payload": {payload}}.Encode()), time.Now())
}

// waitHandled waits until the delivery was processed.
func (e *env) waitHandled(id string) {
	e.t.Helper()
	e.handled.Wait(e.t, id)
}

func (e *env) timesHandled(id string) int { return e.handled.Times(id) }

func (e *env) deliveries() int64 { return int64(storetest.Deliveries(e.t, e.db, Surface)) }
