package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/engine/tools"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/redact"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// harness is a real engine: SQLite store, bubblewrap sandboxes holding a
// git repository, the go-openai client talking to a scripted fake
// server, the real tools.
type harness struct {
	t       *testing.T
	db      *store.DB
	eng     *engine.Engine
	model   *openaitest.Server
	surface *hookedSurface
	ws      *enginetest.GitWorkspaces
	project *store.Project
	cancel  context.CancelFunc
	ctx     context.Context
}

type harnessOpt func(*engine.Config, *store.Project)

func newHarness(t *testing.T, model *openaitest.Server, opts ...harnessOpt) *harness {
	t.Helper()
	db := storetest.Open(t)
	p := &store.Project{Name: "demo", RepoURL: "local", DefaultBranch: "main"}
	cfg := engine.Config{ModelName: "gpt-4o-mini", PollInterval: 20 * time.Millisecond}
	for _, o := range opts {
		o(&cfg, p)
	}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("create project: %v", err)
	}
	return startHarness(t, db, p, model, cfg)
}

// sharedProject is a database with one project, for tests that start
// several engines on it (restarts, replicas).
func sharedProject(t *testing.T) (*store.DB, *store.Project) {
	t.Helper()
	db := storetest.Open(t)
	return db, storetest.Project(t, db, "demo", "local")
}

// startHarness starts an engine on an existing database (a "restart").
func startHarness(t *testing.T, db *store.DB, p *store.Project, model *openaitest.Server, cfg engine.Config) *harness {
	t.Helper()
	ws := enginetest.NewGitWorkspaces(t, nil)
	cfg.Store, cfg.Workspaces, cfg.Model, cfg.Tools = db, ws, enginetest.OpenAI(t, model.URL(), cfg.ModelName), tools.All()
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
	surf := &hookedSurface{Surface: enginetest.NewSurface("slack")}
	eng.AddSurface(surf)
	ctx, cancel := context.WithCancel(t.Context())
	h := &harness{t: t, db: db, eng: eng, model: model, surface: surf, ws: ws, project: p, cancel: cancel, ctx: ctx}
	t.Cleanup(func() { cancel(); eng.Wait() })
	return h
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
	return h.surface.Outcome(h.t, id)
}

// confirmation waits for the next confirmation the run asks.
func (h *harness) confirmation(id string) *store.Confirmation {
	h.t.Helper()
	return h.surface.NextAsked(h.t, id)
}

func (h *harness) steps(id string) []store.Step {
	h.t.Helper()
	st, err := h.db.ListSteps(h.t.Context(), id)
	if err != nil {
		h.t.Fatalf("list steps: %v", err)
	}
	return st
}

// hookedSurface is a recording surface with hooks a test sets before the
// run starts: onStarted runs in its own goroutine, onOutput blocks the
// run's output stream.
type hookedSurface struct {
	*enginetest.Surface

	mu        sync.Mutex
	onStarted func(id string)
	onOutput  func()
}

func (s *hookedSurface) Update(ctx context.Context, ex *store.Execution, ev engine.Event) error {
	if err := s.Surface.Update(ctx, ex, ev); err != nil {
		return err
	}
	s.mu.Lock()
	started, output := s.onStarted, s.onOutput
	s.mu.Unlock()
	if ev.Kind == engine.EventStarted && started != nil {
		go started(ex.ID)
	}
	if ev.Kind == engine.EventOutput && output != nil {
		output()
	}
	return nil
}

func (s *hookedSurface) setOnStarted(f func(id string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onStarted = f
}

func (s *hookedSurface) setOnOutput(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onOutput = f
}

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
