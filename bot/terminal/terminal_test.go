package terminal

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// decisions records what the surface decided, as the engine would.
type decisions struct {
	mu  sync.Mutex
	got []string
}

func (d *decisions) Decide(_ context.Context, id string, dec engine.Decision) (*store.Confirmation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := id + " approve=" + map[bool]string{true: "yes", false: "no"}[dec.Approve] + " by " + dec.By.ID
	if dec.Answer != "" {
		s += " answer=" + dec.Answer
	}
	d.got = append(d.got, s)
	return &store.Confirmation{ID: id}, nil
}

func newSurface(t *testing.T, in string, opts Options) (*Surface, *bytes.Buffer, *decisions) {
	t.Helper()
	var out bytes.Buffer
	d := &decisions{}
	c, err := NewConsole(&out, strings.NewReader(in), opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(c, engine.Operator("local:me"), d)
	if err != nil {
		t.Fatal(err)
	}
	return s, &out, d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesWhatItCannotUse(t *testing.T) {
	t.Parallel()
	d := &decisions{}
	if _, err := NewConsole(&bytes.Buffer{}, strings.NewReader(""), Options{Answer: "maybe"}); err == nil || !strings.Contains(err.Error(), `"maybe"`) {
		t.Errorf("answer maybe: %v", err)
	}
	c, err := NewConsole(&bytes.Buffer{}, strings.NewReader(""), Options{})
	must(t, err)
	if _, err := New(c, engine.Operator("local:me"), nil); err == nil {
		t.Error("no decider accepted")
	}
	if _, err := New(nil, engine.Operator("local:me"), d); err == nil {
		t.Error("no console accepted")
	}
}

// What a terminal run prints: a line per step with the same argument
// summary every surface shows, output indented, decisions, the outcome.
func TestRunLines(t *testing.T) {
	t.Parallel()
	term, out, _ := newSurface(t, "", Options{})
	ex := &store.Execution{ID: "r1", Model: "m"}
	ctx := t.Context()
	for _, ev := range []engine.Event{
		{Kind: engine.EventStarted, Text: "On it."},
		{Kind: engine.EventStep, Step: &store.Step{Ordinal: 1, Kind: store.StepModel, Tool: "run_command", Output: "Let me run\nthe tests."}},
		{Kind: engine.EventOutput, Text: "ok  calc\nFAIL web\n"},
		{Kind: engine.EventStep, Step: &store.Step{Ordinal: 2, Kind: store.StepTool, Tool: "run_command", Arguments: `{"command":"go test ./...","timeout_s":60}`, IsError: true, DurationMS: 1234}},
		{Kind: engine.EventStep, Step: &store.Step{Ordinal: 3, Kind: store.StepTool, Tool: "git_push", Arguments: `{}`, DurationMS: 7}},
		{Kind: engine.EventStep, Step: &store.Step{Ordinal: 4, Kind: store.StepModel, Tool: "read_file"}},
		{Kind: engine.EventStep, Step: &store.Step{Ordinal: 5, Kind: store.StepConfirmation, Output: "asked: delete README.md"}},
		{Kind: engine.EventDecided, Confirmation: &store.Confirmation{ID: "c1", Kind: store.ConfirmKindTool, Status: store.ConfirmApproved}},
		{Kind: engine.EventDecided, Confirmation: &store.Confirmation{ID: "c2", Kind: store.ConfirmKindQuestion, Status: store.ConfirmApproved}},
		{Kind: engine.EventStep, Step: &store.Step{Ordinal: 6, Kind: store.StepLimit, Output: "the step limit (20) is reached"}},
		{Kind: engine.EventFinished, Outcome: &engine.Outcome{Status: store.StatusSucceeded, Summary: "Fixed.", Steps: 6, TokensIn: 900, TokensOut: 40,
			PullRequestURL: "https://github.com/acme/app/pull/3", DiffStat: " calc.go | 2 +-"}},
	} {
		must(t, term.Update(ctx, ex, ev))
	}
	want := `hero: On it.
  💭 Let me run the tests.
    │ ok  calc
    │ FAIL web
  ✗ run_command go test ./...  (1234ms)
  • git_push  (7ms)
  ✓ c1 approved
  ✓ c2 answered
  ⏸ the step limit (20) is reached

── run r1 succeeded ──
Fixed.
steps 6 · tokens 900 in / 40 out · cost unknown (model m is not in the price table; counted in tokens only)
pull request: https://github.com/acme/app/pull/3
changes:
 calc.go | 2 +-
`
	if got := out.String(); got != want {
		t.Errorf("terminal shows:\n%s\nwant:\n%s", got, want)
	}
	select {
	case o := <-term.Finished():
		if o.Status != store.StatusSucceeded {
			t.Errorf("finished with %s", o.Status)
		}
	default:
		t.Error("the outcome is not delivered")
	}
}

// How confirmations are answered: typed on a terminal, --yes/--no, and
// denied when nobody can answer. --yes approves actions only.
func TestAsk(t *testing.T) {
	t.Parallel()
	tool := &store.Confirmation{ID: "c1", Kind: store.ConfirmKindTool, Risk: "high", Action: "delete README.md", Reason: "the task says so", ExpiresAt: time.Now().Add(time.Hour)}
	limit := &store.Confirmation{ID: "c2", Kind: store.ConfirmKindLimit, Risk: "low", Action: "20 more steps", ExpiresAt: time.Now().Add(time.Hour)}
	question := &store.Confirmation{ID: "c3", Kind: store.ConfirmKindQuestion, Action: "Which file?\nSay a path.", ExpiresAt: time.Now().Add(time.Hour)}
	for _, tc := range []struct {
		name string
		in   string
		opts Options
		c    *store.Confirmation
		show []string
		want string
	}{
		{"typed yes", "y\n", Options{Interactive: true}, tool, []string{"! confirmation c1 (high risk): delete README.md\n", "  why: the task says so\n", "  approve? [y/N] "}, "c1 approve=yes by local:me"},
		{"typed anything else", "sure\n", Options{Interactive: true}, tool, []string{"approve? [y/N] "}, "c1 approve=no by local:me"},
		{"no answer before the input ends", "", Options{Interactive: true}, tool, []string{"no answer (EOF): denied."}, "c1 approve=no by local:me"},
		{"--yes", "", Options{Answer: "yes"}, tool, []string{"  --yes: approved.\n"}, "c1 approve=yes by local:me"},
		{"--no", "y\n", Options{Answer: "no", Interactive: true}, tool, []string{"  --no: denied.\n"}, "c1 approve=no by local:me"},
		{"--yes is no answer to a limit", "", Options{Answer: "yes"}, limit, []string{"--yes approves actions, not more steps"}, "c2 approve=no by local:me"},
		{"--yes is no answer to a question", "", Options{Answer: "yes"}, question, []string{"--yes cannot answer a question: declined."}, "c3 approve=no by local:me"},
		{"nobody at the terminal", "y\n", Options{}, tool, []string{"stdin is not a terminal, so nobody can answer: denied."}, "c1 approve=no by local:me"},
		{"a question answered", "src/calc.go\n", Options{Interactive: true}, question, []string{"? hero asks (c3): Which file?\n  Say a path.\n", "your answer (empty to decline): "}, "c3 approve=yes by local:me answer=src/calc.go"},
		{"a question declined", "\n", Options{Interactive: true}, question, []string{"your answer (empty to decline): "}, "c3 approve=no by local:me"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			term, out, d := newSurface(t, tc.in, tc.opts)
			if _, err := term.Ask(t.Context(), &store.Execution{ID: "r1"}, tc.c); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.show {
				if !strings.Contains(out.String(), s) {
					t.Errorf("the prompt lacks %q:\n%s", s, out)
				}
			}
			if len(d.got) != 1 || d.got[0] != tc.want {
				t.Errorf("decided %q, want %q", d.got, tc.want)
			}
		})
	}
}

// Ctrl-C while a prompt waits denies instead of hanging.
func TestAskGivesUpWhenCancelled(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	d := &decisions{}
	in, w := io.Pipe()
	defer w.Close()
	c, err := NewConsole(&out, in, Options{Interactive: true})
	must(t, err)
	term, err := New(c, engine.Operator("local:me"), d)
	must(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _ = term.Ask(ctx, &store.Execution{ID: "r1"}, &store.Confirmation{ID: "c1", Kind: store.ConfirmKindTool, Risk: "low", Action: "x"})
	if !strings.Contains(out.String(), "no answer (context canceled): denied.") || len(d.got) != 1 || d.got[0] != "c1 approve=no by local:me" {
		t.Errorf("out %q, decided %q", out.String(), d.got)
	}
}

func TestConfirm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		opts Options
		want bool
		show string
	}{
		{"yes\n", Options{Interactive: true}, true, "apply? [y/N] "},
		{"n\n", Options{Interactive: true}, false, "apply? [y/N] "},
		{"", Options{Answer: "yes"}, true, "apply? --yes: yes.\n"},
		{"y\n", Options{Answer: "no", Interactive: true}, false, "apply? --no: no.\n"},
		{"y\n", Options{}, false, "apply? stdin is not a terminal: no.\n"},
	} {
		term, out, _ := newSurface(t, tc.in, tc.opts)
		if got := term.Confirm(t.Context(), "apply?"); got != tc.want || out.String() != tc.show {
			t.Errorf("%+v: %v, shows %q", tc.opts, got, out)
		}
	}
}

// A model (or a command it ran) that prints escape sequences must not be
// able to draw what looks like hero's own confirmation line: the real
// confirmation is the only line that starts with "! confirmation".
func TestTerminalShowsEscapeSequencesInsteadOfObeyingThem(t *testing.T) {
	t.Parallel()
	const fake = "! confirmation c999 (low risk): go test"
	payloads := []string{
		"\x1b[1A\x1b[2K\r" + fake,                         // up a line, erase it, draw over it
		"rm -rf /\r" + fake,                               // carriage return over the real text
		"rm -rf /" + strings.Repeat("\b", 8) + "go test ", // backspaces
		"\u009b2K\u009b1A" + fake,                         // C1 CSI
		"\u202egnirts-laer\u202c go test",                 // bidi override
		"line\n" + fake,                                   // a new line from the model
		"\xff\x9b2K",                                      // bytes that are not UTF-8 (8-bit CSI)
	}
	term, out, _ := newSurface(t, "", Options{})
	ex := &store.Execution{ID: "r1", Model: "m"}
	ctx := t.Context()
	for _, p := range payloads {
		args, err := json.Marshal(map[string]string{"command": p})
		must(t, err)
		must(t, term.Update(ctx, ex, engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepModel, Output: p}}))
		must(t, term.Update(ctx, ex, engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepTool, Tool: "run_command", Arguments: string(args)}}))
		must(t, term.Update(ctx, ex, engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepError, Output: p}}))
		must(t, term.Update(ctx, ex, engine.Event{Kind: engine.EventOutput, Text: p + "\n"}))
		_, err = term.Ask(ctx, ex, &store.Confirmation{ID: "c1", Kind: store.ConfirmKindTool, Risk: "high", Action: "run `rm -rf / " + p + "`", Reason: p, ExpiresAt: time.Now().Add(time.Hour)})
		must(t, err)
		_, err = term.Ask(ctx, ex, &store.Confirmation{ID: "q1", Kind: store.ConfirmKindQuestion, Action: "which one?\n" + p})
		must(t, err)
	}
	must(t, term.Update(ctx, ex, engine.Event{Kind: engine.EventFinished, Outcome: &engine.Outcome{Status: "succeeded", Summary: payloads[0], Error: payloads[3], DiffStat: payloads[4]}}))

	got := out.String()
	for _, bad := range []string{"\x1b", "\r", "\b", "\u009b", "\u202e", "\xff", "\x9b"} {
		if strings.Contains(got, bad) {
			t.Errorf("terminal output holds %q:\n%s", bad, got)
		}
	}
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "! confirmation") && !strings.HasPrefix(line, "! confirmation c1 (high risk): run `rm -rf /") {
			t.Errorf("a line passes for a confirmation: %q", line)
		}
	}
	if !strings.Contains(got, "  • run_command ^[[1A^[[2K^M! confirmation") || !strings.Contains(got, `\u202e`) || !strings.Contains(got, `\x9b`) {
		t.Errorf("the escapes are not shown visibly:\n%s", got)
	}
}

func TestTextKeepsPlainText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "ok\n\tgo test ./...\n", "héllo — ✓ 日本"} {
		if got := Text(s); got != s {
			t.Errorf("Text(%q) = %q", s, got)
		}
	}
	if got := Text("a\r\nb"); got != "a\nb" {
		t.Errorf("CRLF: %q", got)
	}
	if got := Line("a\n  b\tc", 100); got != "a b c" {
		t.Errorf("Line: %q", got)
	}
	if got := Line(strings.Repeat("x", 20), 10); got != strings.Repeat("x", 9)+"…" {
		t.Errorf("Line clips to %q", got)
	}
}
