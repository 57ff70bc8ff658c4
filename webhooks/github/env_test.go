package github

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/inbox"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

const (
	testSecret = "It's a Secret to Everybody"
	testToken  = "ghp_testTOKENvalue1234567890"
	fixtures   = "testdata/fixtures/"
)

// env is the GitHub surface wired as `hero serve` wires it: real SQLite
// store, group-committing inbox writer, intake on an httptest server, an
// inbox worker, and the fake GitHub API.
type env struct {
	t       *testing.T
	db      *store.DB
	pub     *Publisher
	api     *githubtest.Server
	svc     *Service
	srv     *httptest.Server
	project *store.Project
	eng     Engine
	ctx     context.Context

	handled *storetest.Handled
}

// envConfig is what a test may change before the surface is built: the
// Service's Config and its Publisher's.
type envConfig struct {
	Config
	Pub PublisherConfig
	// ownRun: the test starts Service.Run (which sends courtesy replies)
	// itself, when it wants them to start going out.
	ownRun bool
}

type envOpt func(*envConfig)

// newTestPublisher is NewPublisher that fails the test on error.
func newTestPublisher(t testing.TB, cfg PublisherConfig) *Publisher {
	t.Helper()
	p, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// openStore opens the test database in dir (a second call on the same
// dir is a restart).
func openStore(t testing.TB, dir string) *store.DB { return storetest.OpenIn(t, dir) }

// newEnv starts the surface with eng (nil: a recording fake engine) on a
// project whose repository is repoURL.
func newEnv(t *testing.T, db *store.DB, api *githubtest.Server, eng Engine, repoURL string, opts ...envOpt) *env {
	t.Helper()
	if db == nil {
		db = openStore(t, t.TempDir())
	}
	if api == nil {
		api = githubtest.NewServer(t, testToken)
	}
	p := storetest.Project(t, db, fmt.Sprintf("demo%d", time.Now().UnixNano()), repoURL)
	e := &env{t: t, db: db, api: api, project: p, handled: storetest.NewHandled(t)}
	cfg := envConfig{
		Config: Config{Store: db, BotLogin: "hero-bot", EditInterval: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler)},
		Pub:    PublisherConfig{APIURL: api.APIURL(), Credentials: StaticToken(testToken), WritePace: -1},
	}
	for _, o := range opts {
		o(&cfg)
	}
	if eng == nil {
		eng = newRecorder(db)
	}
	cfg.Engine = eng
	if cfg.Publisher == nil {
		cfg.Publisher = newTestPublisher(t, cfg.Pub)
	}
	svc, err := NewService(cfg.Config)
	if err != nil {
		t.Fatal(err)
	}
	e.svc, e.pub, e.eng = svc, cfg.Publisher, eng
	w, err := svc.NewWorker(db, inbox.Config{Owner: "test", Poll: 20 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	w.OnHandled(e.handled.Record)
	e.ctx, _ = enginetest.Serve(t, nil, w.Run)
	if !cfg.ownRun {
		enginetest.Serve(t, nil, svc.Run) // courtesy replies
	}
	intake, err := NewIntake([]byte(testSecret), store.NewInboxWriter(db, 0, 0), w.Kick, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /github/webhook", intake)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// deliver posts a signed delivery and returns the status code.
func (e *env) deliver(event, id string, body []byte) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/github/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", Sign([]byte(testSecret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitHandled waits until the worker handled delivery id and returns the
// handler's result.
func (e *env) waitHandled(id string) error {
	e.t.Helper()
	return e.handled.Wait(e.t, id)
}

// fixture reads a payload from the shared fixtures, applying edits
// (dotted paths → values) to its JSON.
func fixture(t testing.TB, name string, edits map[string]any) []byte {
	t.Helper()
	path := fixtures + name
	if strings.HasPrefix(name, "testdata/") {
		path = name // payloads of this package
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(edits) == 0 {
		return raw
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for path, v := range edits {
		keys := strings.Split(path, ".")
		cur := m
		for _, k := range keys[:len(keys)-1] {
			next, ok := cur[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[k] = next
			}
			cur = next
		}
		cur[keys[len(keys)-1]] = v
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newRecorder is the fake engine of these tests (enginetest.Recorder),
// whose runs end as soon as they start: later work in an issue starts a
// run of its own.
func newRecorder(db *store.DB) *enginetest.Recorder {
	return &enginetest.Recorder{DB: db, RunStatus: store.StatusSucceeded}
}

var _ Engine = (*enginetest.Recorder)(nil)

// decided is who decided which confirmation so far, as "id:person".
func decided(r *enginetest.Recorder) []string {
	var out []string
	for _, d := range r.Decides() {
		out = append(out, d.ID+":"+d.Decision.By.ID)
	}
	return out
}
