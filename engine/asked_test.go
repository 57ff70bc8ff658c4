package engine_test

import (
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// Observers tell an asked confirmation from a decided one through
// engine.Asked, not by the step's wording.
func TestAskedStep(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t)
	p := &store.Project{Name: "demo", RepoURL: "local", DefaultBranch: "main"}
	must(t, db.CreateProject(t.Context(), p))
	surf := enginetest.NewSurface("test")
	eng := enginetest.New(t, db, enginetest.Script(enginetest.Call("delete_file", `{"path":"README.md"}`), enginetest.Finish("ok")), surf)
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
	steps, err := db.ListSteps(t.Context(), ex.ID)
	must(t, err)
	asked, confirmations := 0, 0
	for i := range steps {
		if steps[i].Kind == store.StepConfirmation {
			confirmations++
		}
		if engine.Asked(&steps[i]) {
			asked++
		}
	}
	if asked != 1 || confirmations < 2 {
		t.Fatalf("%d asked of %d confirmation steps, want 1 of the asked and decided ones", asked, confirmations)
	}
	if engine.Asked(nil) || engine.Asked(&store.Step{Kind: store.StepTool, Output: "asked: x"}) {
		t.Fatal("Asked accepted a step that is no confirmation")
	}
}
