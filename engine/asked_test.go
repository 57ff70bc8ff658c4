package engine_test

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/engine/tools"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// Observers (metrics) hear of an asked confirmation through its own event
// kind, EventAsked, once per question, not by reading the step's wording;
// surfaces are asked through Ask and never see it.
func TestAskedEvent(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t)
	p := &store.Project{Name: "demo", RepoURL: "local", DefaultBranch: "main"}
	must(t, db.CreateProject(t.Context(), p))
	surf := enginetest.NewSurface("test")
	var mu sync.Mutex
	var seen []engine.Event
	eng, err := engine.New(engine.Config{Store: db, Workspaces: enginetest.Workspaces{},
		Model:     enginetest.Script(enginetest.Call("delete_file", `{"path":"README.md"}`), enginetest.Finish("ok")),
		ModelName: "test-model", Tools: tools.All(), Owner: "test", PollInterval: 20 * time.Millisecond, Log: slog.New(slog.DiscardHandler),
		Observe: func(_ *store.Execution, ev engine.Event) {
			mu.Lock()
			seen = append(seen, ev)
			mu.Unlock()
		}})
	must(t, err)
	eng.AddSurface(surf)
	t.Cleanup(eng.Wait)
	ex, err := eng.Start(t.Context(), engine.StartRequest{Project: p, Task: "remove the readme", Surface: "test", By: engine.Operator("local:me")})
	must(t, err)
	enginetest.Eventually(t, "the question", func() bool {
		cur, _ := db.Execution(t.Context(), ex.ID)
		if cur != nil && cur.Status == store.StatusFailed {
			t.Fatalf("run failed: %s", cur.Error)
		}
		return len(surf.Asked()) == 1
	})
	_, err = eng.Decide(t.Context(), surf.Asked()[0].ID, engine.Decision{Approve: true, By: engine.Operator("local:me")})
	must(t, err)
	enginetest.WaitFinished(t, db, ex.ID)

	mu.Lock()
	defer mu.Unlock()
	var asked []*store.Confirmation
	confirmationSteps := 0
	for _, ev := range seen {
		switch {
		case ev.Kind == engine.EventAsked:
			asked = append(asked, ev.Confirmation)
		case ev.Kind == engine.EventStep && ev.Step.Kind == store.StepConfirmation:
			confirmationSteps++
		}
	}
	if len(asked) != 1 || asked[0] == nil || asked[0].ID != surf.Asked()[0].ID || asked[0].Tool != "delete_file" {
		t.Fatalf("observer saw %d asked events (%+v), want one for the delete_file question %s", len(asked), asked, surf.Asked()[0].ID)
	}
	if confirmationSteps < 2 {
		t.Fatalf("observer saw %d confirmation steps, want the asked and the decided one", confirmationSteps)
	}
	for _, ev := range surf.Events() {
		if ev.Kind == engine.EventAsked {
			t.Fatal("the surface was sent EventAsked; it is asked through Ask")
		}
	}
}
