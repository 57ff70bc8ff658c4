// Package terminal is `hero run`'s surface: a run's steps as lines on a
// writer, confirmations as y/n prompts on a reader. It renders the
// neutral progress model's steps (bot.Step) like the chat surfaces do,
// and makes every text hero did not write safe to print (Text).
package terminal

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// Name is the surface name terminal runs carry (store.Execution.Surface).
const Name = "terminal"

// Decider records a person's decision on a confirmation;
// *engine.Engine implements it.
type Decider interface {
	Decide(ctx context.Context, id string, d engine.Decision) (*store.Confirmation, error)
}

// Options say how confirmations are answered.
type Options struct {
	// Interactive: the reader is a terminal a person types into. When
	// false nobody can answer, so confirmations are denied.
	Interactive bool
	// Answer is "yes" or "no" to answer confirmations without asking
	// (hero run --yes/--no); "" asks when Interactive.
	Answer string
}

// Console is the terminal `hero run` talks to the person on: lines out,
// y/n answers in. The run's Surface prints and prompts on it, and so does
// what happens around the run without the engine (the changes offered at
// the end), so a Console is made first and needs nothing else. It is safe
// for concurrent use (lines never interleave).
type Console struct {
	out  io.Writer
	in   *bufio.Reader
	opts Options
	mu   sync.Mutex
}

// NewConsole returns the console writing to out and reading answers from
// in, answering as opts say.
func NewConsole(out io.Writer, in io.Reader, opts Options) (*Console, error) {
	switch {
	case out == nil || in == nil:
		return nil, fmt.Errorf("terminal: a writer and a reader are required")
	case opts.Answer != "" && opts.Answer != "yes" && opts.Answer != "no":
		return nil, fmt.Errorf("terminal: answer %q: want yes, no or nothing", opts.Answer)
	}
	return &Console{out: out, in: bufio.NewReader(in), opts: opts}, nil
}

var _ engine.Surface = (*Surface)(nil)

// Surface prints runs on a Console. One terminal drives one run at a
// time; it is safe for concurrent use.
type Surface struct {
	*Console
	who    engine.Principal
	decide Decider

	finished chan *engine.Outcome
}

// New returns the surface printing and prompting on c; who is the
// principal its decisions are recorded as (the local operator), decide
// where they go.
func New(c *Console, who engine.Principal, decide Decider) (*Surface, error) {
	if c == nil || decide == nil {
		return nil, fmt.Errorf("terminal surface: a console and a decider are required")
	}
	return &Surface{Console: c, who: who, decide: decide, finished: make(chan *engine.Outcome, 1)}, nil
}

// Name is the surface name runs carry.
func (t *Surface) Name() string { return Name }

// Finished delivers the outcome of the run once it ended.
func (t *Surface) Finished() <-chan *engine.Outcome { return t.finished }

// Printf prints on the terminal, never in the middle of another line hero
// prints. Arguments hero did not write go through Text first.
func (t *Console) Printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, format, args...)
}

// Update prints one line per step, live command output indented, and the
// closing summary.
func (t *Surface) Update(_ context.Context, ex *store.Execution, ev engine.Event) error {
	switch ev.Kind {
	case engine.EventStarted:
		t.Printf("hero: %s\n", Line(ev.Text, 300))
	case engine.EventStep:
		if ev.Step == nil {
			return nil
		}
		s := bot.StepOf(ev.Step)
		if line := stepLine(&s); line != "" {
			t.Printf("%s\n", line)
		}
	case engine.EventOutput:
		t.Printf("%s", indent(Text(ev.Text), "    │ "))
	case engine.EventDecided:
		c := ev.Confirmation
		t.Printf("  ✓ %s %s\n", c.ID, decisionWords(c))
	case engine.EventFinished:
		t.Printf("%s", outcome(ex, ev.Outcome))
		select {
		case t.finished <- ev.Outcome:
		default:
		}
	}
	return nil
}

// Ask prompts on the terminal and records the answer at once.
func (t *Surface) Ask(ctx context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	var b strings.Builder
	switch c.Kind {
	case store.ConfirmKindQuestion:
		// A question may have several lines; indented, none of them can
		// pass for a line hero prints.
		fmt.Fprintf(&b, "\n? hero asks (%s): %s\n", c.ID, strings.TrimPrefix(indent(Text(strings.TrimSpace(c.Action))+"\n", "  "), "  "))
	default:
		fmt.Fprintf(&b, "\n! confirmation %s (%s risk): %s\n", c.ID, c.Risk, Line(c.Action, 2000))
		if c.Reason != "" {
			fmt.Fprintf(&b, "  why: %s\n", Line(c.Reason, 500))
		}
	}
	if t.opts.Answer != "" || !t.opts.Interactive {
		approve := false
		switch {
		case t.opts.Answer == "no":
			b.WriteString("  --no: denied.\n")
		case t.opts.Answer == "yes" && c.Kind == store.ConfirmKindLimit:
			// A limit given on the command line is a cap, not a question.
			b.WriteString("  --yes approves actions, not more steps, budget or time: denied. Raise --max-steps, --budget or --timeout to allow more.\n")
		case t.opts.Answer == "yes" && c.Kind == store.ConfirmKindQuestion:
			b.WriteString("  --yes cannot answer a question: declined. Run hero in a terminal to answer.\n")
		case t.opts.Answer == "yes":
			approve = true
			b.WriteString("  --yes: approved.\n")
		default:
			b.WriteString("  stdin is not a terminal, so nobody can answer: denied. Run hero in a terminal to approve actions, or pass --yes or --no.\n")
		}
		t.Printf("%s", b.String())
		_, err := t.decide.Decide(ctx, c.ID, engine.Decision{Approve: approve, By: t.who})
		return "", err
	}
	if c.Kind == store.ConfirmKindQuestion {
		b.WriteString("  your answer (empty to decline): ")
	} else {
		b.WriteString("  approve? [y/N] ")
	}
	t.Printf("%s", b.String())
	line, err := t.readLine(ctx)
	if err != nil {
		t.Printf("\n  no answer (%v): denied.\n", err)
		_, derr := t.decide.Decide(ctx, c.ID, engine.Decision{Approve: false, By: t.who})
		return "", derr
	}
	d := engine.Decision{By: t.who}
	if c.Kind == store.ConfirmKindQuestion {
		d.Answer, d.Approve = line, line != ""
	} else {
		d.Approve = isYes(line)
	}
	_, err = t.decide.Decide(ctx, c.ID, d)
	return "", err
}

// Confirm asks a plain y/n question outside any run (applying the diff),
// answered like confirmations are: by --yes/--no, no when nobody can
// answer.
func (t *Console) Confirm(ctx context.Context, question string) bool {
	switch t.opts.Answer {
	case "yes":
		t.Printf("%s --yes: yes.\n", question)
		return true
	case "no":
		t.Printf("%s --no: no.\n", question)
		return false
	}
	if !t.opts.Interactive {
		t.Printf("%s stdin is not a terminal: no.\n", question)
		return false
	}
	t.Printf("%s [y/N] ", question)
	line, err := t.readLine(ctx)
	return err == nil && isYes(line)
}

// readLine reads one line, giving up when ctx ends (Ctrl-C).
func (t *Console) readLine(ctx context.Context) (string, error) {
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

func isYes(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "y", "yes":
		return true
	}
	return false
}
