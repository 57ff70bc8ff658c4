package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// terminalSurface is `hero run`'s surface: step lines on stdout, y/n
// prompts on stdin. One terminal drives one run at a time.
type terminalSurface struct {
	out         io.Writer
	in          *bufio.Reader
	interactive bool // false: stdin is not a terminal, confirmations are denied
	// answer is "yes" or "no" to answer confirmations without asking
	// (hero run --yes/--no); "" asks on an interactive stdin.
	answer string
	decide func(ctx context.Context, id string, d engine.Decision) (*store.Confirmation, error)
	who    engine.Principal

	mu       sync.Mutex
	finished chan *engine.Outcome
}

func newTerminalSurface(out io.Writer, in io.Reader, interactive bool, answer string, who engine.Principal) *terminalSurface {
	return &terminalSurface{out: out, in: bufio.NewReader(in), interactive: interactive, answer: answer, who: who, finished: make(chan *engine.Outcome, 1)}
}

func (t *terminalSurface) Name() string { return "terminal" }

func (t *terminalSurface) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, format, args...)
}

// Update prints one line per step, live command output indented, and the
// closing summary.
func (t *terminalSurface) Update(_ context.Context, ex *store.Execution, ev engine.Event) error {
	switch ev.Kind {
	case engine.EventStarted:
		t.printf("hero: %s\n", oneLine(ev.Text, 300))
	case engine.EventStep:
		if line := stepLine(ev.Step); line != "" {
			t.printf("%s\n", line)
		}
	case engine.EventOutput:
		t.printf("%s", indent(termText(ev.Text), "    │ "))
	case engine.EventDecided:
		c := ev.Confirmation
		t.printf("  ✓ %s %s\n", c.ID, decisionWords(c))
	case engine.EventFinished:
		t.printf("%s", renderOutcome(ex, ev.Outcome))
		select {
		case t.finished <- ev.Outcome:
		default:
		}
	}
	return nil
}

// Ask prompts on the terminal and records the answer at once.
func (t *terminalSurface) Ask(ctx context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	var b strings.Builder
	switch c.Kind {
	case store.ConfirmKindQuestion:
		// A question may have several lines; indented, none of them can
		// pass for a line hero prints.
		fmt.Fprintf(&b, "\n? hero asks (%s): %s\n", c.ID, strings.TrimPrefix(indent(termText(strings.TrimSpace(c.Action))+"\n", "  "), "  "))
	default:
		fmt.Fprintf(&b, "\n! confirmation %s (%s risk): %s\n", c.ID, c.Risk, oneLine(c.Action, 2000))
		if c.Reason != "" {
			fmt.Fprintf(&b, "  why: %s\n", oneLine(c.Reason, 500))
		}
	}
	if t.answer != "" || !t.interactive {
		approve := false
		switch {
		case t.answer == "no":
			b.WriteString("  --no: denied.\n")
		case t.answer == "yes" && c.Kind == store.ConfirmKindLimit:
			// A limit given on the command line is a cap, not a question.
			b.WriteString("  --yes approves actions, not more steps, budget or time: denied. Raise --max-steps, --budget or --timeout to allow more.\n")
		case t.answer == "yes" && c.Kind == store.ConfirmKindQuestion:
			b.WriteString("  --yes cannot answer a question: declined. Run hero in a terminal to answer.\n")
		case t.answer == "yes":
			approve = true
			b.WriteString("  --yes: approved.\n")
		default:
			b.WriteString("  stdin is not a terminal, so nobody can answer: denied. Run hero in a terminal to approve actions, or pass --yes or --no.\n")
		}
		t.printf("%s", b.String())
		_, err := t.decide(ctx, c.ID, engine.Decision{Approve: approve, By: t.who})
		return "", err
	}
	if c.Kind == store.ConfirmKindQuestion {
		b.WriteString("  your answer (empty to decline): ")
	} else {
		b.WriteString("  approve? [y/N] ")
	}
	t.printf("%s", b.String())
	line, err := t.readLine(ctx)
	if err != nil {
		t.printf("\n  no answer (%v): denied.\n", err)
		_, derr := t.decide(ctx, c.ID, engine.Decision{Approve: false, By: t.who})
		return "", derr
	}
	d := engine.Decision{By: t.who}
	if c.Kind == store.ConfirmKindQuestion {
		d.Answer, d.Approve = line, line != ""
	} else {
		d.Approve = isYes(line)
	}
	_, err = t.decide(ctx, c.ID, d)
	return "", err
}

// readLine reads one line, giving up when ctx ends (Ctrl-C).
func (t *terminalSurface) readLine(ctx context.Context) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := t.in.ReadString('\n')
		if err == io.EOF && s != "" {
			err = nil
		}
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// confirm asks a plain y/n question outside any run (applying the diff).
func (t *terminalSurface) confirm(ctx context.Context, question string) bool {
	switch t.answer {
	case "yes":
		t.printf("%s --yes: yes.\n", question)
		return true
	case "no":
		t.printf("%s --no: no.\n", question)
		return false
	}
	if !t.interactive {
		t.printf("%s stdin is not a terminal: no.\n", question)
		return false
	}
	t.printf("%s [y/N] ", question)
	line, err := t.readLine(ctx)
	return err == nil && isYes(line)
}

func isYes(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "y", "yes":
		return true
	}
	return false
}

func decisionWords(c *store.Confirmation) string {
	switch c.Status {
	case store.ConfirmApproved:
		if c.Kind == store.ConfirmKindQuestion {
			return "answered"
		}
		return "approved"
	case store.ConfirmDenied:
		return "denied"
	}
	return c.Status
}

func stepLine(s *store.Step) string {
	if s == nil {
		return ""
	}
	switch s.Kind {
	case store.StepTool:
		mark := "•"
		if s.IsError {
			mark = "✗"
		}
		return fmt.Sprintf("  %s %s %s  (%dms)", mark, s.Tool, oneLine(s.Arguments, 100), s.DurationMS)
	case store.StepModel:
		if s.Output != "" {
			return "  💭 " + oneLine(s.Output, 160)
		}
	case store.StepLimit:
		return "  ⏸ " + oneLine(s.Output, 300)
	case store.StepMessage:
		return "  ✉ " + oneLine(s.Output, 160)
	case store.StepError:
		return "  ✗ " + oneLine(s.Output, 200)
	}
	return ""
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(termText(s)), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}

// renderOutcome is the closing summary of a run.
func renderOutcome(ex *store.Execution, o *engine.Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n── run %s %s ──\n", ex.ID, o.Status)
	if o.Summary != "" {
		fmt.Fprintf(&b, "%s\n", termText(o.Summary))
	}
	if o.Error != "" {
		fmt.Fprintf(&b, "error: %s\n", termText(o.Error))
	}
	cost := fmt.Sprintf("$%.4f", o.CostUSD)
	if !o.CostKnown {
		cost = fmt.Sprintf("unknown (model %s is not in the price table; counted in tokens only)", ex.Model)
	}
	fmt.Fprintf(&b, "steps %d · tokens %d in / %d out · cost %s\n", o.Steps, o.TokensIn, o.TokensOut, cost)
	if o.PullRequestURL != "" {
		fmt.Fprintf(&b, "pull request: %s\n", o.PullRequestURL)
	}
	if o.DiffStat != "" {
		fmt.Fprintf(&b, "changes:\n%s\n", termText(o.DiffStat))
	}
	return b.String()
}

// termText makes text that hero did not write (the model's words, command
// output, a diff) safe to print on a terminal: control characters that
// would move the cursor, erase or recolour lines (ESC sequences, CR,
// backspace, C1 controls such as CSI), bidi overrides that reorder what is
// shown, and bytes that are not UTF-8 are printed as visible escapes
// (^[, ^M, \u009b, \u202e, \xff). Line feeds and tabs stay; a CR before a
// line feed is dropped.
func termText(s string) string {
	if termSafe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\r' && i+1 < len(s) && s[i+1] == '\n':
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20:
			b.WriteByte('^')
			b.WriteByte(byte(r) + 0x40)
		case r == 0x7f:
			b.WriteString("^?")
		case r >= 0x80 && r <= 0x9f, isBidiControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// termSafe reports whether s prints as itself (the common case: no copy).
func termSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return utf8.ValidString(s[i:]) && !strings.ContainsFunc(s[i:], func(r rune) bool { return (r >= 0x80 && r <= 0x9f) || isBidiControl(r) })
		}
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// isBidiControl reports the embedding, override and isolate controls
// (U+202A–U+202E, U+2066–U+2069) that make a terminal show text in
// another order than it is.
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}
