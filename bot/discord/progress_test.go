package discord

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot/discord/discordtest"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/store"
)

// Discord's progress message survives a restart as Slack's and GitHub's
// do: the next adapter rebuilds the run's progress from the stored steps
// and edits the same message, each step shown once, instead of posting a
// second one.
func TestProgressRestoredAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	const thread = "900"
	ex := &store.Execution{ProjectID: e.project.ID, Status: store.StatusRunning, Surface: Surface, ThreadRef: thread, Requester: "discord:200",
		Task: "fix", Model: "m", CreatedAt: time.Now(), UpdatedAt: time.Now(), LeaseUntil: time.Now()}
	if err := e.db.CreateExecution(ctx, ex); err != nil {
		t.Fatal(err)
	}
	var steps []*store.Step
	step := func(a *Adapter, n int) {
		t.Helper()
		if n > len(steps) {
			s := &store.Step{ExecutionID: ex.ID, Ordinal: n, Kind: store.StepTool, Tool: "run_command",
				Arguments: fmt.Sprintf(`{"command":"go test ./pkg%d"}`, n), Output: "ok", CreatedAt: time.Now()}
			if err := e.db.AppendStep(ctx, s); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, s)
		}
		if err := a.Update(ctx, ex, engine.Event{Kind: engine.EventStep, Step: steps[n-1]}); err != nil {
			t.Fatal(err)
		}
	}
	progressMessages := func() []discordtest.Message {
		var out []discordtest.Message
		for _, m := range e.discord.Messages(thread) {
			if strings.Contains(m.Content, "**Run `"+ex.ID+"`**") {
				out = append(out, m)
			}
		}
		return out
	}
	step(e.a, 1)
	step(e.a, 2)
	e.discord.WaitFor(t, "the progress message with two steps", enginetest.Patience, func(*discordtest.Server) bool {
		ms := progressMessages()
		return len(ms) == 1 && strings.Contains(ms[0].Content, "pkg2")
	})
	// The message appears on Discord a moment before hero has stored its
	// reference; a restart in between would post a second one (and this
	// test would say so): restart once it is stored.
	enginetest.Eventually(t, "the progress message's reference stored", func() bool {
		ref, err := e.db.ProgressMessage(ctx, ex.ID, Surface)
		return err == nil && ref != ""
	})

	// Restart: a new adapter on the same database (and the same Discord).
	cfg := e.a.cfg
	a2, err := New(cfg, e.db, e.eng, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	step(a2, 2) // reported again by the resumed run: shown once
	step(a2, 3)
	if err := a2.Update(ctx, ex, engine.Event{Kind: engine.EventFinished, Outcome: &engine.Outcome{Status: store.StatusSucceeded, Summary: "all green", Steps: 3}}); err != nil {
		t.Fatal(err)
	}
	e.discord.WaitFor(t, "the final state on the same progress message", enginetest.Patience, func(*discordtest.Server) bool {
		ms := progressMessages()
		return len(ms) == 1 && strings.Contains(ms[0].Content, "succeeded")
	})
	got := progressMessages()[0].Content
	for _, want := range []string{"pkg1", "pkg2", "pkg3", "· 3 steps"} {
		if !strings.Contains(got, want) {
			t.Errorf("the progress message lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "pkg2") != 1 {
		t.Errorf("a step shows twice:\n%s", got)
	}
}
