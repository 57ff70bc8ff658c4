package discord

import (
	"encoding/json"
	"strconv"

	"bytes"
	"context"
	"github.com/bwmarrin/discordgo"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot/discord/discordtest"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

const (
	testApp   = "100000000000000001"
	testToken = "bot-token-test"
	testBot   = "100000000000000002"
	testGuild = "100000000000000003"
)

// env is a running hero with the Discord surface: real SQLite store, real
// engine and model client against a scripted fake model server, the
// interactions route on a loopback server, the fake Discord API. Runs
// work in enginetest's in-memory workspaces (no bubblewrap), or in
// bubblewrap sandboxes holding a git repository for the end-to-end tests
// (newRealEnv).
type env struct {
	t       testing.TB
	db      *store.DB
	eng     *engine.Engine
	a       *Adapter
	discord *discordtest.Server
	key     discordtest.Key
	srv     *httptest.Server
	project *store.Project
	dir     string
	real    bool
	stop    func()

	handled *storetest.Handled
}

type envOpt func(*Config)

// newEnv starts hero with in-memory workspaces: what a surface test
// needs, in milliseconds.
func newEnv(t testing.TB, model *openaitest.Server, opts ...envOpt) *env {
	t.Helper()
	return startEnv(t, t.TempDir(), nil, discordtest.NewKey(t), model, false, opts...)
}

// newRealEnv starts hero whose runs work in bubblewrap sandboxes holding
// a git repository (enginetest.DemoRepo).
func newRealEnv(t testing.TB, model *openaitest.Server, opts ...envOpt) *env {
	t.Helper()
	return startEnv(t, t.TempDir(), nil, discordtest.NewKey(t), model, true, opts...)
}

// restart stops e (its runs stay in the database, as after a crash) and
// starts a new hero on the same database and Discord key.
func (e *env) restart(model *openaitest.Server) *env {
	e.t.Helper()
	e.stop()
	return startEnv(e.t, e.dir, e.project, e.key, model, e.real)
}

func startEnv(t testing.TB, dir string, project *store.Project, key discordtest.Key, model *openaitest.Server, real bool, opts ...envOpt) *env {
	t.Helper()
	return startEnvOn(t, storetest.OpenIn(t, dir), dir, project, key, model, real, opts...)
}

// startEnvOn is startEnv on an open database.
func startEnvOn(t testing.TB, db *store.DB, dir string, project *store.Project, key discordtest.Key, model *openaitest.Server, real bool, opts ...envOpt) *env {
	t.Helper()
	if model == nil {
		model = openaitest.NewServer(t)
	}
	var ws engine.Workspaces = enginetest.Workspaces{}
	if real {
		ws = enginetest.NewGitWorkspaces(t, nil)
	}
	eng := enginetest.NewOn(t, db, ws, enginetest.OpenAI(t, model.URL(), "gpt-4o-mini"))
	fd := discordtest.NewServer(t, testToken, testBot)
	cfg := Config{AppID: testApp, PublicKey: key.PublicHex(), BotToken: testToken, APIURL: fd.APIURL(), Owner: "test",
		WorkerPoll: 50 * time.Millisecond, UpdateInterval: 100 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := New(cfg, db, eng, enginetest.Logger())
	if err != nil {
		t.Fatalf("discord adapter: %v", err)
	}
	eng.AddSurface(a)
	e := &env{t: t, db: db, eng: eng, a: a, discord: fd, key: key, dir: dir, real: real, handled: storetest.NewHandled(t)}
	a.OnHandled(e.handled.Record)
	mux := http.NewServeMux()
	a.Mount(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	_, stop := enginetest.Serve(t, eng, a.Run)
	e.stop = func() { stop(); e.srv.Close() }
	e.project = project
	if project == nil {
		e.project = storetest.Project(t, db, "web", "local")
	}
	return e
}

// user creates a hero user linked to a Discord user id with a role.
func (e *env) user(discordID, email string, role store.Role) *store.User {
	e.t.Helper()
	return storetest.User(e.t, e.db, e.project.ID, email, role, Surface, discordID)
}

func (e *env) bind(channel string) {
	e.t.Helper()
	if err := e.db.BindChannel(context.Background(), Surface, channel, e.project.ID, "test"); err != nil {
		e.t.Fatal(err)
	}
}

// post sends an interaction body signed with e's key at ts and returns
// the status and the response body.
func (e *env) post(body []byte, ts time.Time, sign bool) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/discord/interactions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sign {
		e.key.Sign(req, body, ts)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST /discord/interactions: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// command sends a signed `/hero text` from user in channel; it returns
// the interaction id.
func (e *env) command(user, channel, text string) (string, int, string) {
	id := discordtest.NewID()
	code, body := e.post(discordtest.Command(testApp, id, "tok-"+id, discordtest.Actor{Guild: testGuild, Channel: channel, User: user}, text), time.Now(), true)
	return id, code, body
}

// click sends a signed button click.
func (e *env) click(user, channel, messageID, customID string) (string, int) {
	id := discordtest.NewID()
	code, _ := e.post(discordtest.Click(testApp, id, "tok-"+id, discordtest.Actor{Guild: testGuild, Channel: channel, User: user}, messageID, customID), time.Now(), true)
	return id, code
}

func (e *env) waitHandled(id string) {
	e.t.Helper()
	e.handled.Wait(e.t, id)
}

func (e *env) timesHandled(id string) int { return e.handled.Times(id) }

func (e *env) deliveries() int { return storetest.Deliveries(e.t, e.db, Surface) }

func mustMessage(t testing.TB, b []byte) *discordgo.Message {
	t.Helper()
	m := new(discordgo.Message)
	if err := json.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
