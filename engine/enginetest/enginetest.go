// Package enginetest runs the real engine in tests. Surface tests use a
// scripted Model, in-memory Workspaces, a recording Surface and the wait
// helpers: they need no bubblewrap and no model server and run in
// milliseconds. End-to-end tests keep the real parts with GitWorkspaces
// (bubblewrap sandboxes holding a git repository) and OpenAI (hero's
// model client against an llm/openaitest server). Tests of the
// conversation layer alone (the dispatcher, the GitHub surface's
// commands) put a Recorder where the engine would be.
package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/tools"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
)

// Model answers each call with the next scripted reply; once the script
// is used up, every run finishes with "done".
type Model struct {
	mu     sync.Mutex
	script []engine.ModelResponse
	calls  int
}

var _ engine.Model = (*Model)(nil)

// Script returns a model that answers with replies, in order.
func Script(replies ...engine.ModelResponse) *Model { return &Model{script: replies} }

// Call is a reply calling one tool with JSON arguments.
func Call(tool, args string) engine.ModelResponse {
	return engine.ModelResponse{Message: engine.Message{Role: engine.RoleAssistant,
		ToolCalls: []engine.ToolCall{{ID: fmt.Sprintf("call-%s-%d", tool, time.Now().UnixNano()), Name: tool, Arguments: args}}}}
}

// Finish is a reply ending the run with summary.
func Finish(summary string) engine.ModelResponse {
	b, _ := json.Marshal(map[string]string{"summary": summary})
	return Call("finish", string(b))
}

// Complete implements engine.Model.
func (m *Model) Complete(ctx context.Context, _ engine.ModelRequest) (engine.ModelResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if len(m.script) == 0 {
		return Finish("done"), nil
	}
	r := m.script[0]
	m.script = m.script[1:]
	return r, nil
}

// Calls counts the model calls.
func (m *Model) Calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

// Workspaces hands every run an in-memory sandbox holding a README.md.
type Workspaces struct{}

var _ engine.Workspaces = Workspaces{}

// Open implements engine.Workspaces.
func (Workspaces) Open(_ context.Context, _ *store.Project, ex *store.Execution, _ map[string]string) (sandbox.Sandbox, error) {
	return &Sandbox{id: "fake-" + ex.ID, files: map[string][]byte{"README.md": []byte("# demo\n")}}, nil
}

// Close implements engine.Workspaces.
func (Workspaces) Close(context.Context, *store.Execution, sandbox.Sandbox) error { return nil }

// Sandbox keeps files in memory and runs no commands.
type Sandbox struct {
	id    string
	mu    sync.Mutex
	files map[string][]byte
}

var _ sandbox.Sandbox = (*Sandbox)(nil)

// ErrNoCommands is what Exec answers: the fake runs nothing.
var ErrNoCommands = errors.New("enginetest: the fake sandbox runs no commands")

func (s *Sandbox) ID() string { return s.id }

func (s *Sandbox) Exec(context.Context, sandbox.Cmd) (sandbox.Result, error) {
	return sandbox.Result{}, ErrNoCommands
}

func (s *Sandbox) ReadFile(_ context.Context, path string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.files[path]
	if !ok {
		return nil, fmt.Errorf("read %s: %w", path, fs.ErrNotExist)
	}
	return b, nil
}

func (s *Sandbox) WriteFile(_ context.Context, path string, data []byte, _ fs.FileMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = append([]byte(nil), data...)
	return nil
}

func (s *Sandbox) List(_ context.Context, dir string, _ bool) ([]sandbox.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sandbox.FileInfo
	for p, b := range s.files {
		if dir == "" || dir == "." || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") {
			out = append(out, sandbox.FileInfo{Path: p, Size: int64(len(b))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (s *Sandbox) Stat(_ context.Context, path string) (sandbox.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.files[path]
	if !ok {
		return sandbox.FileInfo{}, fmt.Errorf("stat %s: %w", path, fs.ErrNotExist)
	}
	return sandbox.FileInfo{Path: path, Size: int64(len(b))}, nil
}

func (s *Sandbox) Remove(_ context.Context, path string, _ bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, path)
	return nil
}

func (s *Sandbox) Alive(context.Context) error { return nil }
func (s *Sandbox) Close(context.Context) error { return nil }

// New returns a real engine over db with the model (nil: Script()) and
// hero's tools over in-memory workspaces, reporting to surfaces; runs
// stop when the test ends.
func New(t testing.TB, db engine.Store, model engine.Model, surfaces ...engine.Surface) *engine.Engine {
	t.Helper()
	return NewOn(t, db, Workspaces{}, model, surfaces...)
}

// NewOn is New on the given workspaces (GitWorkspaces for the real
// parts).
func NewOn(t testing.TB, db engine.Store, ws engine.Workspaces, model engine.Model, surfaces ...engine.Surface) *engine.Engine {
	t.Helper()
	if model == nil {
		model = Script()
	}
	eng, err := engine.New(engine.Config{Store: db, Workspaces: ws, Model: model, ModelName: "gpt-4o-mini", Tools: tools.All(),
		Owner: "enginetest", PollInterval: 20 * time.Millisecond, Log: Logger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range surfaces {
		eng.AddSurface(s)
	}
	t.Cleanup(eng.Wait)
	return eng
}

// Logger discards what it is told, unless HERO_TEST_LOG is set: then it
// writes to stderr, for debugging a test.
func Logger() *slog.Logger {
	if os.Getenv("HERO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// Patience is how long the wait helpers wait: generous, because a
// loaded machine under -race runs real sandboxes slowly; a test that
// passes never waits that long.
const Patience = 60 * time.Second

// Eventually polls cond until it holds or Patience runs out (then the
// test fails, naming what).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventually(t, func() string { return "timed out waiting for " + what }, cond)
}

// EventuallyWithin is Eventually for a wait longer than Patience (a
// whole end-to-end run behind it).
func EventuallyWithin(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, within, func() string { return "timed out waiting for " + what }, cond)
}

func eventually(t testing.TB, failure func() string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, Patience, failure, cond)
}

func eventuallyWithin(t testing.TB, within time.Duration, failure func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(failure())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitFinished waits until run id has ended and returns it.
func WaitFinished(t testing.TB, db interface {
	Execution(ctx context.Context, id string) (*store.Execution, error)
}, id string) *store.Execution {
	t.Helper()
	var ex *store.Execution
	Eventually(t, "run "+id+" to end", func() bool {
		var err error
		ex, err = db.Execution(context.Background(), id)
		return err == nil && (ex.Status == store.StatusSucceeded || ex.Status == store.StatusFailed || ex.Status == store.StatusCancelled || ex.Status == store.StatusInterrupted)
	})
	return ex
}

// Serve runs loop (a surface's worker) in its own goroutine until stop is
// called or the test ends. stop cancels ctx, waits for the runs of eng
// (unless nil) and for loop to return; it may be called more than once.
// An error loop returns before stop is logged. With HERO_BENCH_NO_WORKER
// set loop does not run, so that a benchmark measures only the path to
// the inbox.
func Serve(t testing.TB, eng *engine.Engine, loop func(ctx context.Context) error) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if os.Getenv("HERO_BENCH_NO_WORKER") != "" {
		close(done)
	} else {
		go func() {
			defer close(done)
			if err := loop(ctx); err != nil && ctx.Err() == nil {
				t.Logf("enginetest: the worker stopped: %v", err)
			}
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if eng != nil {
				eng.Wait()
			}
			<-done
		})
	}
	t.Cleanup(stop)
	return ctx, stop
}
