package github

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/store"
)

func newRun(t *testing.T, e *env) *store.Execution {
	t.Helper()
	ex := &store.Execution{ProjectID: e.project.ID, Status: store.StatusRunning, Surface: "github", ThreadRef: "Codertocat/Hello-World#1@c7",
		Requester: "github:Codertocat", Task: "fix", Model: "m", CreatedAt: time.Now(), UpdatedAt: time.Now(), LeaseUntil: time.Now()}
	if err := e.db.CreateExecution(t.Context(), ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

func toolStep(ex *store.Execution, n int) *store.Step {
	return &store.Step{ExecutionID: ex.ID, Ordinal: n, Kind: store.StepTool, Tool: "run_command",
		Arguments: fmt.Sprintf(`{"command":"go test ./pkg%d"}`, n), Output: "ok", CreatedAt: time.Now()}
}

// A burst of steps becomes a few edits of one comment, and the last edit
// shows the last step; the run never waits for GitHub to take an edit.
func TestProgressCoalesced(t *testing.T) {
	t.Parallel()
	held := newHeldRequests(func(req *http.Request) bool { return req.Method == http.MethodPatch }) // comment edits
	// The surface's clock stands still: the burst comes within one edit
	// interval however slowly the machine runs it.
	c := &clock{t: time.Now()}
	e := newEnv(t, nil, nil, nil, fixtureRepo, func(cfg *envConfig) {
		cfg.EditInterval = 200 * time.Millisecond
		cfg.Now = c.now
		cfg.Pub.Transport = held
	})
	ex := newRun(t, e)
	ctx := t.Context()
	if err := e.svc.Update(ctx, ex, engine.Event{Kind: engine.EventStarted, Text: "On it."}); err != nil {
		t.Fatal(err)
	}
	// While GitHub holds every edit, the run's 30 steps still go on.
	burst := make(chan error, 1)
	go func() {
		for i := 1; i <= 30; i++ {
			if err := e.svc.Update(ctx, ex, engine.Event{Kind: engine.EventStep, Step: toolStep(ex, i)}); err != nil {
				burst <- err
				return
			}
		}
		burst <- nil
	}()
	select {
	case err := <-burst:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(enginetest.Patience):
		t.Fatal("the run's step updates waited for GitHub to take an edit")
	}
	close(held.open)
	enginetest.Eventually(t, "the last step in the comment", func() bool {
		cs := e.api.Comments()
		return len(cs) == 1 && strings.Contains(cs[0].Body, "go test ./pkg30")
	})
	comment := e.api.Comments()[0]
	if len(comment.Edits) > 2 {
		t.Fatalf("%d edits for a burst of 30 steps", len(comment.Edits))
	}
	if !strings.Contains(comment.Body, "- [x] `run_command` `go test ./pkg1`") {
		t.Fatalf("body:\n%s", comment.Body)
	}
}

// After a restart the same progress comment is edited, rebuilt from the
// recorded steps, and the summary lists the outcome.
func TestProgressSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	ex := newRun(t, e)
	ctx := t.Context()
	if err := e.svc.Update(ctx, ex, engine.Event{Kind: engine.EventStarted, Text: "On it."}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		s := toolStep(ex, i)
		if err := e.db.AppendStep(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Update(ctx, ex, engine.Event{Kind: engine.EventStep, Step: s}); err != nil {
			t.Fatal(err)
		}
	}
	restarted := newEnv(t, e.db, e.api, nil, "https://github.com/elsewhere/x")
	s3 := toolStep(ex, 3)
	if err := e.db.AppendStep(ctx, s3); err != nil {
		t.Fatal(err)
	}
	if err := restarted.svc.Update(ctx, ex, engine.Event{Kind: engine.EventStep, Step: s3}); err != nil {
		t.Fatal(err)
	}
	err := restarted.svc.Update(ctx, ex, engine.Event{Kind: engine.EventFinished, Outcome: &engine.Outcome{
		Status: store.StatusFailed, Error: "the model failed: quota exceeded", Steps: 3, TokensIn: 1200, TokensOut: 80, CostUSD: 0.0021, CostKnown: true}})
	if err != nil {
		t.Fatal(err)
	}
	cs := e.api.Comments()
	if len(cs) != 2 {
		t.Fatalf("%d comments, want the progress comment and the summary", len(cs))
	}
	for _, want := range []string{"❌ failed", "./pkg1", "./pkg2", "./pkg3"} {
		if !strings.Contains(cs[0].Body, want) {
			t.Errorf("progress lacks %q:\n%s", want, cs[0].Body)
		}
	}
	if strings.Count(cs[0].Body, "./pkg3") != 1 {
		t.Errorf("step shown twice:\n%s", cs[0].Body)
	}
	for _, want := range []string{"failed", "What went wrong: the model failed: quota exceeded", "3 steps", "1200 tokens in, 80 out", "$0.0021"} {
		if !strings.Contains(cs[1].Body, want) {
			t.Errorf("summary lacks %q:\n%s", want, cs[1].Body)
		}
	}
}
