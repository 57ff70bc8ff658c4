package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/tools"
	"github.com/hero-dev/hero/llm/openai"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/redact"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/vault"
)

// harness is a real engine: SQLite store, bubblewrap sandboxes, the
// go-openai client talking to a scripted fake server, the real tools.
type harness struct {
	t       *testing.T
	db      *store.DB
	eng     *engine.Engine
	model   *openaitest.Server
	surface *recordingSurface
	ws      *testWorkspaces
	project *store.Project
	cancel  context.CancelFunc
	ctx     context.Context
}

type harnessOpt func(*engine.Config, *store.Project)

func newHarness(t *testing.T, model *openaitest.Server, opts ...harnessOpt) *harness {
	t.Helper()
	dir := t.TempDir()
	db := openDB(t, dir)
	p := &store.Project{Name: "demo", RepoURL: "local", DefaultBranch: "main"}
	cfg := engine.Config{ModelName: "gpt-4o-mini", PollInterval: 20 * time.Millisecond}
	for _, o := range opts {
		o(&cfg, p)
	}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("create project: %v", err)
	}
	return startHarness(t, db, p, model, dir, cfg)
}

// sharedProject is a database with one project, for tests that start
// several engines on it (restarts, replicas).
func sharedProject(t *testing.T) (string, *store.DB, *store.Project) {
	t.Helper()
	dir := t.TempDir()
	db := openDB(t, dir)
	p := &store.Project{Name: "demo", RepoURL: "local", DefaultBranch: "main"}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("create project: %v", err)
	}
	return dir, db, p
}

func openDB(t *testing.T, dir string) *store.DB {
	t.Helper()
	kr, err := vault.LoadOrCreate(dir, "", "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	db, err := store.Open(t.Context(), "", dir, slog.New(slog.DiscardHandler), store.WithKeyring(kr))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// startHarness starts an engine on an existing database (a "restart").
func startHarness(t *testing.T, db *store.DB, p *store.Project, model *openaitest.Server, dir string, cfg engine.Config) *harness {
	t.Helper()
	prov := newProvider(t, filepath.Join(dir, fmt.Sprintf("sandboxes-%d", time.Now().UnixNano())))
	client, err := openai.New(openai.Config{APIKey: "sk-test", BaseURL: model.URL(), Model: cfg.ModelName, MaxRetries: 1, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("model client: %v", err)
	}
	ws := &testWorkspaces{p: prov, files: map[string]string{"README.md": "# demo\n", "calc.go": "package calc\n\nfunc Add(a, b int) int { return a - b }\n"}}
	cfg.Store, cfg.Workspaces, cfg.Model, cfg.Tools = db, ws, client, tools.All()
	cfg.Redact = func(secrets map[string]string) func(string) string {
		r := redact.New()
		r.AddMap(secrets)
		return r.String
	}
	if cfg.Owner == "" {
		cfg.Owner = "replica-" + fmt.Sprint(time.Now().UnixNano())
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	surf := newRecordingSurface("slack", eng)
	eng.AddSurface(surf)
	ctx, cancel := context.WithCancel(t.Context())
	h := &harness{t: t, db: db, eng: eng, model: model, surface: surf, ws: ws, project: p, cancel: cancel, ctx: ctx}
	t.Cleanup(func() { cancel(); eng.Wait() })
	return h
}

func newProvider(t *testing.T, dir string) *bwrap.Provider {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed: run scripts/install-deps.sh bwrap")
	}
	prov, err := bwrap.New(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("bwrap provider: %v", err)
	}
	return prov
}

// start begins a run of task as requester "slack:U1".
func (h *harness) start(task string) *store.Execution {
	h.t.Helper()
	ex, err := h.eng.Start(h.ctx, engine.StartRequest{Project: h.project, Task: task, Surface: "slack", ThreadRef: "C1/1.0", By: requester})
	if err != nil {
		h.t.Fatalf("start: %v", err)
	}
	return ex
}

// outcome waits for the run's finished event.
func (h *harness) outcome(id string) *engine.Outcome {
	h.t.Helper()
	select {
	case o := <-h.surface.finished(id):
		return o
	case <-time.After(60 * time.Second):
		h.t.Fatalf("run %s did not finish; events: %s", id, h.surface.dump(id))
		return nil
	}
}

// confirmation waits for the next confirmation the run asks.
func (h *harness) confirmation(id string) *store.Confirmation {
	h.t.Helper()
	select {
	case c := <-h.surface.asked(id):
		return c
	case <-time.After(30 * time.Second):
		h.t.Fatalf("run %s asked nothing; events: %s", id, h.surface.dump(id))
		return nil
	}
}

func (h *harness) steps(id string) []store.Step {
	h.t.Helper()
	st, err := h.db.ListSteps(h.t.Context(), id)
	if err != nil {
		h.t.Fatalf("list steps: %v", err)
	}
	return st
}

// testWorkspaces gives each run a fresh bubblewrap sandbox holding a small
// git repository.
type testWorkspaces struct {
	p     *bwrap.Provider
	files map[string]string

	mu     sync.Mutex
	opened map[string]sandbox.Sandbox
	fail   error
}

func (w *testWorkspaces) Open(ctx context.Context, p *store.Project, ex *store.Execution, env map[string]string) (sandbox.Sandbox, error) {
	if w.fail != nil {
		return nil, w.fail
	}
	sb, err := w.p.Create(ctx, sandbox.Spec{Env: env, Labels: map[string]string{"execution": ex.ID}})
	if err != nil {
		return nil, err
	}
	for name, body := range w.files {
		if err := sb.WriteFile(ctx, name, []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	res, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"sh", "-c", "git init -q -b main && git add -A && git -c user.name=t -c user.email=t@t commit -qm init"}})
	if err != nil || res.ExitCode != 0 {
		return nil, fmt.Errorf("init repo: %v (exit %d)", err, res.ExitCode)
	}
	w.mu.Lock()
	if w.opened == nil {
		w.opened = map[string]sandbox.Sandbox{}
	}
	w.opened[ex.ID] = sb
	w.mu.Unlock()
	return sb, nil
}

func (w *testWorkspaces) Close(ctx context.Context, ex *store.Execution, sb sandbox.Sandbox) error {
	return sb.Close(ctx)
}

func (w *testWorkspaces) sandbox(id string) sandbox.Sandbox {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.opened[id]
}

// recordingSurface records every event and hands confirmations to the test.
type recordingSurface struct {
	name string
	eng  *engine.Engine

	mu     sync.Mutex
	events map[string][]engine.Event
	ask    map[string]chan *store.Confirmation
	done   map[string]chan *engine.Outcome

	// Hooks set by tests before the run starts: onStarted runs in its own
	// goroutine, onOutput blocks the run's output stream.
	onStarted func(id string)
	onOutput  func()
}

var _ engine.Surface = (*recordingSurface)(nil)

func newRecordingSurface(name string, eng *engine.Engine) *recordingSurface {
	return &recordingSurface{name: name, eng: eng, events: map[string][]engine.Event{}, ask: map[string]chan *store.Confirmation{}, done: map[string]chan *engine.Outcome{}}
}

func (s *recordingSurface) Name() string { return s.name }

func (s *recordingSurface) Update(_ context.Context, ex *store.Execution, ev engine.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events[ex.ID] = append(s.events[ex.ID], ev)
	if ev.Kind == engine.EventStarted && s.onStarted != nil {
		go s.onStarted(ex.ID)
	}
	if ev.Kind == engine.EventOutput && s.onOutput != nil {
		hook := s.onOutput
		s.mu.Unlock()
		hook()
		s.mu.Lock()
	}
	if ev.Kind == engine.EventFinished {
		s.doneLocked(ex.ID) <- ev.Outcome
	}
	return nil
}

func (s *recordingSurface) Ask(_ context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	s.mu.Lock()
	ch := s.askLocked(ex.ID)
	s.mu.Unlock()
	cc := *c
	ch <- &cc
	return "msg-" + c.ID, nil
}

func (s *recordingSurface) askLocked(id string) chan *store.Confirmation {
	if s.ask[id] == nil {
		s.ask[id] = make(chan *store.Confirmation, 16)
	}
	return s.ask[id]
}

func (s *recordingSurface) doneLocked(id string) chan *engine.Outcome {
	if s.done[id] == nil {
		s.done[id] = make(chan *engine.Outcome, 1)
	}
	return s.done[id]
}

func (s *recordingSurface) asked(id string) chan *store.Confirmation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.askLocked(id)
}

func (s *recordingSurface) finished(id string) chan *engine.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doneLocked(id)
}

// text is everything the surface showed for run id, for leak checks.
func (s *recordingSurface) text(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, ev := range s.events[id] {
		fmt.Fprintf(&b, "%s %s", ev.Kind, ev.Text)
		if ev.Step != nil {
			fmt.Fprintf(&b, " %s %s %s", ev.Step.Tool, ev.Step.Arguments, ev.Step.Output)
		}
		if ev.Outcome != nil {
			fmt.Fprintf(&b, " %s %s", ev.Outcome.Summary, ev.Outcome.Error)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func (s *recordingSurface) dump(id string) string { return s.text(id) }

// errIs fails unless err wraps target.
func errIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// requester is the person the tests start runs as: unknown to hero, a
// project member by their platform's word.
var requester = engine.Principal{ID: "slack:U1", Granted: store.RoleMember}
