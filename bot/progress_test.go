package bot_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

func stepEv(s store.Step) engine.Event { return engine.Event{Kind: engine.EventStep, Step: &s} }

// Events in, the model every surface renders out.
func TestProgressApply(t *testing.T) {
	t.Parallel()
	ex := &store.Execution{ID: "r1", Status: store.StatusRunning, TokensIn: 100, TokensOut: 20, CostUSD: 0.5, CostKnown: true}
	tool := store.Step{Ordinal: 2, Kind: store.StepTool, Tool: "run_command", Arguments: `{"command":"go test ./...","timeout_s":60}`, Output: "ok", DurationMS: 1500}
	for _, tc := range []struct {
		name   string
		events []engine.Event
		check  func(t *testing.T, p *bot.Progress)
	}{
		{"a greeting is the note", []engine.Event{{Kind: engine.EventStarted, Text: "On it."}}, func(t *testing.T, p *bot.Progress) {
			if p.Note != "On it." || p.Status != store.StatusRunning || len(p.Steps) != 0 || p.Tokens() != 120 || !p.CostKnown {
				t.Errorf("%+v", p)
			}
		}},
		{"the model thinking", []engine.Event{stepEv(store.Step{Ordinal: 1, Kind: store.StepModel, Output: "let me see"})}, func(t *testing.T, p *bot.Progress) {
			if !p.Thinking || p.Running != nil || len(p.Steps) != 1 || p.Steps[0].Text != "let me see" {
				t.Errorf("%+v", p)
			}
		}},
		{"the tools the model chose run, with live output", []engine.Event{
			stepEv(store.Step{Ordinal: 1, Kind: store.StepModel, Tool: "read_file,run_command"}),
			{Kind: engine.EventOutput, Text: "=== RUN"},
			{Kind: engine.EventOutput, Text: " TestX\n"},
		}, func(t *testing.T, p *bot.Progress) {
			if p.Thinking || !slices.Equal(p.Running, []string{"read_file", "run_command"}) || p.Output != "=== RUN TestX\n" {
				t.Errorf("%+v", p)
			}
		}},
		{"a tool step ends what ran and says what it did", []engine.Event{
			stepEv(store.Step{Ordinal: 1, Kind: store.StepModel, Tool: "run_command"}),
			{Kind: engine.EventOutput, Text: "ok"},
			stepEv(tool),
		}, func(t *testing.T, p *bot.Progress) {
			want := bot.Step{Kind: store.StepTool, Tool: "run_command", Subject: "go test ./...", Text: "ok", Elapsed: 1500 * time.Millisecond}
			if p.Thinking || p.Running != nil || p.Output != "" || len(p.Steps) != 2 || p.Steps[1] != want {
				t.Errorf("%+v", p)
			}
		}},
		{"a step replayed is counted once", []engine.Event{stepEv(tool), stepEv(tool), stepEv(store.Step{Ordinal: 1, Kind: store.StepModel})}, func(t *testing.T, p *bot.Progress) {
			if len(p.Steps) != 1 {
				t.Errorf("%d steps: %+v", len(p.Steps), p.Steps)
			}
		}},
		{"files written, edited or deleted, each once; failed ones not", []engine.Event{
			stepEv(store.Step{Kind: store.StepTool, Tool: "write_file", Arguments: `{"path":"a.go","content":"x"}`}),
			stepEv(store.Step{Kind: store.StepTool, Tool: "edit_file", Arguments: `{"path":"a.go","old":"x","new":"y"}`}),
			stepEv(store.Step{Kind: store.StepTool, Tool: "delete_file", Arguments: `{"path":"b.go"}`, IsError: true}),
			stepEv(store.Step{Kind: store.StepTool, Tool: "read_file", Arguments: `{"path":"c.go"}`}),
			stepEv(store.Step{Kind: store.StepTool, Tool: "delete_file", Arguments: `{"path":"README.md"}`}),
		}, func(t *testing.T, p *bot.Progress) {
			if !slices.Equal(p.Files, []string{"a.go", "README.md"}) || !p.Steps[2].Failed {
				t.Errorf("files %q, steps %+v", p.Files, p.Steps)
			}
		}},
		{"a message says who wrote it", []engine.Event{stepEv(store.Step{Kind: store.StepMessage, Arguments: "slack:T1/U1", Output: "use tabs"})}, func(t *testing.T, p *bot.Progress) {
			if s := p.Steps[0]; s.From != "slack:T1/U1" || s.Text != "use tabs" || s.Subject != "" {
				t.Errorf("%+v", s)
			}
		}},
		{"a confirmation asked, then decided, is one entry", []engine.Event{
			{Kind: engine.EventDecided, Confirmation: &store.Confirmation{ID: "c1", Status: store.ConfirmPending}},
			{Kind: engine.EventDecided, Confirmation: &store.Confirmation{ID: "c2", Status: store.ConfirmPending}},
			{Kind: engine.EventDecided, Confirmation: &store.Confirmation{ID: "c1", Status: store.ConfirmApproved, DecidedBy: "github:octocat"}},
		}, func(t *testing.T, p *bot.Progress) {
			if len(p.Confirmations) != 2 || p.Confirmations[0].Status != store.ConfirmApproved || p.Confirmations[1].Status != store.ConfirmPending {
				t.Errorf("%+v", p.Confirmations)
			}
		}},
		{"finished: the outcome, nothing running", []engine.Event{
			stepEv(store.Step{Ordinal: 1, Kind: store.StepModel, Tool: "run_command"}),
			{Kind: engine.EventOutput, Text: "partial"},
			{Kind: engine.EventFinished, Outcome: &engine.Outcome{Status: store.StatusCancelled, Steps: 1}},
			{Kind: engine.EventStarted, Text: "late"},
		}, func(t *testing.T, p *bot.Progress) {
			if p.Status != store.StatusCancelled || !store.Final(p.Status) || p.Outcome == nil || p.Running != nil || p.Output != "" {
				t.Errorf("%+v", p)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := bot.NewProgress(ex)
			for _, ev := range tc.events {
				p.Apply(ex, ev)
			}
			tc.check(t, p)
		})
	}
}

// Live output is kept as a bounded tail, a step's text as a bounded head,
// neither cut inside a character.
func TestProgressBoundsWhatItKeeps(t *testing.T) {
	t.Parallel()
	ex := &store.Execution{ID: "r1", Status: store.StatusRunning}
	p := bot.NewProgress(ex)
	long := ""
	for range 400 {
		long += "é"
	}
	p.Apply(ex, engine.Event{Kind: engine.EventOutput, Text: "x" + long})
	p.Apply(ex, stepEv(store.Step{Kind: store.StepError, Output: "x" + long + long + long}))
	if len(p.Output) > 600 || !utf8Valid(p.Output) || p.Output[len(p.Output)-2:] != "é" {
		t.Errorf("output tail %d bytes: %q", len(p.Output), p.Output)
	}
	if got := p.Steps[0].Text; len(got) > 1000 || len(got) < 990 || !utf8Valid(got) || got[0] != 'x' {
		t.Errorf("step text %d bytes", len(got))
	}
}

func utf8Valid(s string) bool { return string([]rune(s)) == s }

// After a restart the model rebuilt from the store is the one the events
// had built: the same steps, files, numbers and confirmations, except
// that nothing runs until the run resumes.
func TestProgressRestoredEqualsLive(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		p := &store.Project{Name: "app", RepoURL: "https://github.com/acme/app", DefaultBranch: "main"}
		if err := db.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		ex := &store.Execution{ProjectID: p.ID, Status: store.StatusRunning, Surface: "slack", ThreadRef: "T1/C1/1.2", Requester: "slack:T1/U1",
			Task: "fix", Model: "m", CreatedAt: time.Now(), UpdatedAt: time.Now(), LeaseUntil: time.Now(), TokensIn: 900, TokensOut: 45, CostUSD: 0.01, CostKnown: true}
		if err := db.CreateExecution(ctx, ex); err != nil {
			t.Fatal(err)
		}
		live := bot.NewProgress(ex)
		ordinal := 0
		record := func(s store.Step) {
			ordinal++
			s.ExecutionID, s.Ordinal, s.CreatedAt = ex.ID, ordinal, time.Now()
			if err := db.AppendStep(ctx, &s); err != nil {
				t.Fatal(err)
			}
			live.Apply(ex, engine.Event{Kind: engine.EventStep, Step: &s})
		}
		ask := func(kind, tool, action string) *store.Confirmation {
			c := &store.Confirmation{ExecutionID: ex.ID, ProjectID: p.ID, Kind: kind, Tool: tool, Action: action, Risk: "high", ExpiresAt: time.Now().Add(time.Hour)}
			if err := db.CreateConfirmation(ctx, c); err != nil {
				t.Fatal(err)
			}
			live.Confirm(c)
			record(store.Step{Kind: store.StepConfirmation, Tool: tool, Arguments: c.ID, Output: "asked: " + action})
			return c
		}

		live.Apply(ex, engine.Event{Kind: engine.EventStarted, Text: "On it."})
		record(store.Step{Kind: store.StepModel, Tool: "read_file,write_file", Output: "Reading first."})
		record(store.Step{Kind: store.StepTool, Tool: "read_file", Arguments: `{"path":"calc.go"}`, Output: "package calc", DurationMS: 3})
		record(store.Step{Kind: store.StepTool, Tool: "write_file", Arguments: `{"path":"calc.go","content":"package calc\n"}`, Output: "wrote", DurationMS: 4})
		record(store.Step{Kind: store.StepMessage, Arguments: "slack:T1/U1", Output: "also the docs"})
		record(store.Step{Kind: store.StepModel, Tool: "delete_file"})
		c1 := ask(store.ConfirmKindTool, "delete_file", "delete README.md")
		if ok, err := db.DecideConfirmation(ctx, c1.ID, store.ConfirmApproved, "slack:T1/U1", "", time.Now()); err != nil || !ok {
			t.Fatalf("decide: %v %v", ok, err)
		}
		decided, err := db.Confirmation(ctx, c1.ID)
		if err != nil {
			t.Fatal(err)
		}
		live.Apply(ex, engine.Event{Kind: engine.EventDecided, Confirmation: decided})
		record(store.Step{Kind: store.StepConfirmation, Tool: "delete_file", Arguments: c1.ID, Output: "approved by slack:T1/U1"})
		record(store.Step{Kind: store.StepTool, Tool: "delete_file", Arguments: `{"path":"README.md"}`, Output: "deleted", DurationMS: 1})
		record(store.Step{Kind: store.StepTool, Tool: "run_command", Arguments: `{"command":"go vet ./..."}`, Output: "exit status 1\nvet: x", IsError: true, DurationMS: 900})
		record(store.Step{Kind: store.StepModel, Tool: "git_push"})
		ask(store.ConfirmKindTool, "git_push", "git push origin hero/x")
		live.Apply(ex, engine.Event{Kind: engine.EventOutput, Text: "Enumerating objects"})

		restored, err := bot.RestoreProgress(ctx, db, ex)
		if err != nil {
			t.Fatal(err)
		}
		if !live.Thinking && live.Running == nil {
			t.Fatal("the live model shows nothing running; the test does not test the difference")
		}
		if restored.Thinking || restored.Running != nil || restored.Output != "" {
			t.Errorf("a restored run shows something running: %+v", restored)
		}
		if !slices.Equal(restored.Files, []string{"calc.go", "README.md"}) || len(restored.Steps) != ordinal {
			t.Errorf("restored files %q, %d steps", restored.Files, len(restored.Steps))
		}
		// What differs by design: the note (the greeting is not stored;
		// a resumed run sends its own) and what runs now.
		live.Note, live.Thinking, live.Running, live.Output = "", false, nil, ""
		if got, want := confirmationStates(restored), confirmationStates(live); !slices.Equal(got, want) {
			t.Errorf("confirmations: restored %q, live %q", got, want)
		}
		restored.Confirmations, live.Confirmations = nil, nil
		if !reflect.DeepEqual(restored, live) {
			t.Errorf("restored:\n%+v\nlive:\n%+v", restored, live)
		}
		// A step the engine reports again after the restart counts once.
		steps, err := db.ListSteps(ctx, ex.ID)
		if err != nil {
			t.Fatal(err)
		}
		if restored.Apply(ex, engine.Event{Kind: engine.EventStep, Step: &steps[len(steps)-1]}) != nil || len(restored.Steps) != ordinal {
			t.Errorf("a replayed step was added again")
		}
	})
}

func confirmationStates(p *bot.Progress) []string {
	var out []string
	for _, c := range p.Confirmations {
		out = append(out, c.ID+" "+c.Status+" "+c.DecidedBy)
	}
	return out
}

// Every surface shows the same argument of a tool call.
func TestToolSubject(t *testing.T) {
	t.Parallel()
	for args, want := range map[string]string{
		`{"command":"go test ./...","cwd":"sub"}`:           "go test ./...",
		`{"path":"a.go","content":"x"}`:                     "a.go",
		`{"pattern":"flaky","path":"pkg"}`:                  "pkg",
		`{"pattern":"flaky"}`:                               "flaky",
		`{}`:                                                "",
		`{"branch":"hero/r1"}`:                              "hero/r1",
		`{"title":"Fix calc","body":"long text","draft":1}`: "Fix calc",
		`{"message":"calc: fix Add"}`:                       "calc: fix Add",
		`{"question":"Which file?"}`:                        "Which file?",
		`{"body":"Thanks!"}`:                                "Thanks!",
		`{"summary":"Add adds now."}`:                       "Add adds now.",
		`{"number":42}`:                                     "#42",
		`{"command":""}`:                                    "",
		`not json`:                                          "",
	} {
		if got := bot.ToolSubject(args); got != want {
			t.Errorf("ToolSubject(%s) = %q, want %q", args, got, want)
		}
	}
}

func TestLinesKeepTheNewest(t *testing.T) {
	t.Parallel()
	ex := &store.Execution{ID: "r1"}
	p := bot.NewProgress(ex)
	for i := range 7 {
		kind := store.StepTool
		if i%2 == 1 {
			kind = store.StepModel
		}
		p.Apply(ex, stepEv(store.Step{Kind: kind, Tool: string(rune('a' + i))}))
	}
	lines, dropped := p.Lines(2, func(s *bot.Step) string {
		if s.Kind != store.StepTool {
			return ""
		}
		return s.Tool
	})
	if !slices.Equal(lines, []string{"e", "g"}) || dropped != 2 {
		t.Errorf("lines %q, dropped %d", lines, dropped)
	}
}
