package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/llm/openai"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// scriptedModel answers in-process: steps no-op tool calls, then finish.
// It keeps the model's own time out of the engine overhead measurement.
type scriptedModel struct{ steps int }

func (m scriptedModel) Complete(_ context.Context, req engine.ModelRequest) (engine.ModelResponse, error) {
	n := 0
	for _, msg := range req.Messages {
		if msg.Role == engine.RoleAssistant {
			n++
		}
	}
	call := engine.ToolCall{ID: "c" + strconv.Itoa(n), Name: "noop", Arguments: `{}`}
	if n >= m.steps {
		call = engine.ToolCall{ID: "c" + strconv.Itoa(n), Name: "finish", Arguments: `{"summary":"done"}`}
	}
	return engine.ModelResponse{Message: engine.Message{Role: engine.RoleAssistant, ToolCalls: []engine.ToolCall{call}}, Usage: engine.Usage{PromptTokens: 100, CompletionTokens: 10}}, nil
}

var noopTool = engine.Tool{
	Name: "noop", Description: "does nothing", Parameters: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`),
	Subject: func(json.RawMessage) (string, string, error) { return "", "noop", nil },
	Run:     func(context.Context, *engine.ToolContext, json.RawMessage) (string, error) { return "ok", nil },
}

// nullWorkspaces hands out no sandbox: the benchmarked tools need none.
type nullWorkspaces struct{}

func (nullWorkspaces) Open(context.Context, *store.Project, *store.Execution, map[string]string) (sandbox.Sandbox, error) {
	return nil, nil
}
func (nullWorkspaces) Close(context.Context, *store.Execution, sandbox.Sandbox) error { return nil }

// quietSurface signals the end of each run.
type quietSurface struct{ done sync.Map } // id → chan *engine.Outcome

func (s *quietSurface) Name() string { return "slack" }
func (s *quietSurface) Update(_ context.Context, ex *store.Execution, ev engine.Event) error {
	if ev.Kind == engine.EventFinished {
		ch, _ := s.done.LoadOrStore(ex.ID, make(chan *engine.Outcome, 1))
		ch.(chan *engine.Outcome) <- ev.Outcome
	}
	return nil
}
func (s *quietSurface) Ask(context.Context, *store.Execution, *store.Confirmation) (string, error) {
	return "", nil
}

// wait waits for run id to end and fails b unless it succeeded: a
// benchmark of failing runs measures nothing.
func (s *quietSurface) wait(b *testing.B, id string) {
	ch, _ := s.done.LoadOrStore(id, make(chan *engine.Outcome, 1))
	if o := <-ch.(chan *engine.Outcome); o.Status != store.StatusSucceeded {
		b.Fatalf("run %s %s: %s", id, o.Status, o.Error)
	}
}

func benchEngine(b *testing.B, model engine.Model, modelName string) (*engine.Engine, *store.Project, *quietSurface) {
	b.Helper()
	db := storetest.Open(b)
	p := &store.Project{Name: "bench", RepoURL: "local", DefaultBranch: "main", Governance: store.Governance{MaxSteps: 100000, BudgetPerRunUSD: 1e9, BudgetPerDayUSD: 1e12},
		// The default policy asks about tools it does not know, like noop;
		// the benchmark measures steps, not questions.
		PolicyRules: []store.PolicyRule{{Tool: "*", Action: "allow"}}}
	if err := db.CreateProject(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Store: db, Workspaces: nullWorkspaces{}, Model: model, ModelName: modelName, Tools: []engine.Tool{noopTool}})
	if err != nil {
		b.Fatal(err)
	}
	s := &quietSurface{}
	eng.AddSurface(s)
	return eng, p, s
}

// BenchmarkStepOverhead is the engine's own cost per step (policy, the
// tool call, persisting the step and the conversation, progress events),
// with an in-process model and a no-op tool, on SQLite.
func BenchmarkStepOverhead(b *testing.B) {
	const stepsPerRun = 50
	eng, p, s := benchEngine(b, scriptedModel{steps: stepsPerRun}, "gpt-4o-mini")
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	steps := 0
	for b.Loop() {
		ex, err := eng.Start(ctx, engine.StartRequest{Project: p, Task: "bench", Surface: "slack", By: requester})
		if err != nil {
			b.Fatal(err)
		}
		s.wait(b, ex.ID)
		steps += stepsPerRun + 1
	}
	eng.Wait()
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(steps), "µs/step")
}

// BenchmarkConcurrentRuns starts 1,000 runs at once against the fake
// OpenAI server over loopback and reports peak RSS and goroutines left.
func BenchmarkConcurrentRuns(b *testing.B) {
	const runs = 1000
	model := openaitest.NewServerFunc(b, func(r openaitest.Request) openaitest.Turn {
		if r.Round() < 2 {
			return openaitest.Tools(openaitest.Call("noop", `{}`))
		}
		return openaitest.Tools(openaitest.Call("finish", `{"summary":"done"}`))
	})
	client, err := openai.New(openai.Config{APIKey: "sk-bench", BaseURL: model.URL(), Model: "gpt-4o-mini"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	eng, p, s := benchEngine(b, client, "gpt-4o-mini")
	ctx := context.Background()
	before := runtime.NumGoroutine()
	var peak atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if r := rssBytes(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	for b.Loop() {
		ids := make([]string, runs)
		for i := range ids {
			ex, err := eng.Start(ctx, engine.StartRequest{Project: p, Task: fmt.Sprintf("run %d", i), Surface: "slack", By: requester})
			if err != nil {
				b.Fatal(err)
			}
			ids[i] = ex.ID
		}
		for _, id := range ids {
			s.wait(b, id)
		}
		eng.Wait()
	}
	close(stop)
	if r := rssBytes(); r > peak.Load() {
		peak.Store(r)
	}
	// Idle HTTP connections are not leaks; let them close before counting.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+8 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(runtime.NumGoroutine()-before), "goroutines-left")
}

// rssBytes reads the process's resident set size from /proc.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
