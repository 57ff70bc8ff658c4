package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// Progress is what a run's progress shows, in no surface's format: the
// run's state, its steps, what runs now, the confirmations asked and how
// they were decided, and once it ended its outcome. It is fed by the
// engine's events (Apply, Confirm) and rebuilt from what the store
// recorded after a restart (RestoreProgress): both give the same value,
// so a surface only renders it (Slack blocks, GitHub markdown, Discord
// text, terminal lines).
//
// A Progress is not safe for concurrent use; a surface guards its own.
type Progress struct {
	RunID string
	// Status is the run's store status (the outcome's once finished).
	Status string
	// Note is the latest greeting of the run (EventStarted's text).
	Note string
	// Steps are every step recorded, oldest first.
	Steps []Step
	// Thinking: the model is choosing its next move.
	Thinking bool
	// Running are the tools the model chose and that run now.
	Running []string
	// Output is the tail of the running command's live output.
	Output string

	TokensIn, TokensOut int64
	CostUSD             float64
	CostKnown           bool // false: the model is not in the price table

	// Confirmations are those asked, in order, each as last known
	// (pending, decided or expired).
	Confirmations []*store.Confirmation
	// Files are the paths the run wrote, edited or deleted.
	Files []string
	// Outcome is how the run ended; nil until it did.
	Outcome *engine.Outcome

	last int // highest step ordinal applied: a step replayed after a restart counts once
}

// Step is one recorded step as every surface shows it.
type Step struct {
	Kind    string // a store.Step* kind
	Tool    string // the tool (tool and confirmation steps); the chosen tools, comma-separated (model steps)
	Subject string // the argument people care about (ToolSubject); "" when none
	From    string // who wrote a message step
	Failed  bool
	// Text is the start of the step's output: a tool's result or error,
	// the model's words, a message, a limit reached. Surfaces clip it.
	Text    string
	Elapsed time.Duration
}

// Sizes the model keeps: a surface clips further.
const (
	stepText   = 1000 // bytes of a step's output
	outputTail = 600  // bytes of live command output
)

// NewProgress starts the progress of run ex, with nothing done yet.
func NewProgress(ex *store.Execution) *Progress {
	p := &Progress{RunID: ex.ID}
	p.sync(ex)
	return p
}

// ProgressSource reads what a run recorded (store.DB does).
type ProgressSource interface {
	ListSteps(ctx context.Context, executionID string) ([]store.Step, error)
	ConfirmationsOf(ctx context.Context, executionID string) ([]store.Confirmation, error)
}

// RestoreProgress rebuilds run ex's progress from its recorded steps and
// confirmations (after a restart, or on another replica): the value the
// events had built, except that nothing runs until the run resumes.
func RestoreProgress(ctx context.Context, src ProgressSource, ex *store.Execution) (*Progress, error) {
	steps, err := src.ListSteps(ctx, ex.ID)
	if err != nil {
		return nil, fmt.Errorf("restore the progress of run %s: %w", ex.ID, err)
	}
	cs, err := src.ConfirmationsOf(ctx, ex.ID)
	if err != nil {
		return nil, fmt.Errorf("restore the progress of run %s: %w", ex.ID, err)
	}
	p := NewProgress(ex)
	for i := range steps {
		p.step(&steps[i])
	}
	for i := range cs {
		p.Confirm(&cs[i])
	}
	p.Thinking, p.Running, p.Output = false, nil, ""
	return p, nil
}

// Apply takes in one event of run ex (ex may be nil: the run's numbers
// stay as they were). It returns the step the event added, nil when none
// (not a step, or one applied before).
func (p *Progress) Apply(ex *store.Execution, ev engine.Event) *Step {
	if ex != nil {
		p.sync(ex)
	}
	switch ev.Kind {
	case engine.EventStarted:
		p.Note = ev.Text
	case engine.EventOutput:
		p.Output = Tail(p.Output+ev.Text, outputTail)
	case engine.EventStep:
		return p.step(ev.Step)
	case engine.EventAsked, engine.EventDecided:
		p.Confirm(ev.Confirmation)
	case engine.EventFinished:
		p.Outcome = ev.Outcome
		p.Status = ev.Outcome.Status
		p.Thinking, p.Running, p.Output = false, nil, ""
	}
	return nil
}

// Confirm records a confirmation asked, or how one was decided.
func (p *Progress) Confirm(c *store.Confirmation) {
	if c == nil {
		return
	}
	for i, have := range p.Confirmations {
		if have.ID == c.ID {
			p.Confirmations[i] = c
			return
		}
	}
	p.Confirmations = append(p.Confirmations, c)
}

func (p *Progress) sync(ex *store.Execution) {
	if p.Outcome == nil {
		p.Status = ex.Status
	}
	p.TokensIn, p.TokensOut, p.CostUSD, p.CostKnown = ex.TokensIn, ex.TokensOut, ex.CostUSD, ex.CostKnown
}

func (p *Progress) step(s *store.Step) *Step {
	if s == nil {
		return nil
	}
	if s.Ordinal != 0 {
		if s.Ordinal <= p.last {
			return nil
		}
		p.last = s.Ordinal
	}
	v := StepOf(s)
	p.Steps = append(p.Steps, v)
	switch s.Kind {
	case store.StepTool:
		// Its live output is over; the model chooses next.
		p.Thinking, p.Running, p.Output = false, nil, ""
		if !s.IsError && (s.Tool == "write_file" || s.Tool == "edit_file" || s.Tool == "delete_file") {
			var a struct {
				Path string `json:"path"`
			}
			if json.Unmarshal([]byte(s.Arguments), &a) == nil && a.Path != "" && !slices.Contains(p.Files, a.Path) {
				p.Files = append(p.Files, a.Path)
			}
		}
	case store.StepModel:
		// The model chose its next tools; they show once they ran, their
		// live output meanwhile.
		p.Running, p.Output = nil, ""
		if s.Tool != "" {
			p.Running = strings.Split(s.Tool, ",")
		}
		p.Thinking = len(p.Running) == 0
	}
	return &p.Steps[len(p.Steps)-1]
}

// StepOf is how every surface shows recorded step s.
func StepOf(s *store.Step) Step {
	v := Step{Kind: s.Kind, Tool: s.Tool, Failed: s.IsError, Text: Head(s.Output, stepText),
		Elapsed: time.Duration(s.DurationMS) * time.Millisecond}
	switch s.Kind {
	case store.StepTool:
		v.Subject = Head(ToolSubject(s.Arguments), stepText)
	case store.StepMessage:
		v.From = s.Arguments
	}
	return v
}

// Tokens is the run's token count so far, both ways.
func (p *Progress) Tokens() int64 { return p.TokensIn + p.TokensOut }

// Lines renders the steps a surface lists (line returns "" for the others)
// and keeps the newest n: it returns them, oldest first, and how many
// earlier ones were left out.
func (p *Progress) Lines(n int, line func(*Step) string) (lines []string, dropped int) {
	for i := range p.Steps {
		if l := line(&p.Steps[i]); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		dropped = len(lines) - n
		lines = lines[dropped:]
	}
	return lines, dropped
}

// Doing says what the run does at the moment: "thinking…", "running "
// and the tools the model chose (each shown by code), or "" when neither.
func (p *Progress) Doing(code func(tool string) string) string {
	if p.Thinking {
		return "thinking…"
	}
	if len(p.Running) == 0 {
		return ""
	}
	tools := make([]string, len(p.Running))
	for i, t := range p.Running {
		tools[i] = code(t)
	}
	return "running " + strings.Join(tools, ", ")
}

// CostSoFar is the running cost for a progress message's footer.
func (p *Progress) CostSoFar() string {
	if !p.CostKnown {
		return fmt.Sprintf("cost unknown for this model · %d tokens", p.Tokens())
	}
	return fmt.Sprintf("$%.4f so far · %d tokens", p.CostUSD, p.Tokens())
}

// Facts is the closing line of a finished run: steps, tokens and cost.
func Facts(o *engine.Outcome) string {
	cost := "cost unknown (model not in the price table)"
	if o.CostKnown {
		cost = fmt.Sprintf("$%.4f", o.CostUSD)
	}
	return fmt.Sprintf("%d steps · %d tokens in, %d out · %s", o.Steps, o.TokensIn, o.TokensOut, cost)
}

// Runs holds a surface's state of each run it shows, by run id; safe for
// concurrent use.
type Runs[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

// Get returns run id's state; ok is false when there is none.
func (r *Runs[V]) Get(id string) (v V, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok = r.m[id]
	return v, ok
}

// Add keeps v as run id's state unless another was added meanwhile, and
// returns the one kept (added: v is).
func (r *Runs[V]) Add(id string, v V) (kept V, added bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.m[id]; ok {
		return prev, false
	}
	if r.m == nil {
		r.m = map[string]V{}
	}
	r.m[id] = v
	return v, true
}

// Delete forgets run id (it ended).
func (r *Runs[V]) Delete(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}

// ProgressMessages is where the store remembers the message a chat
// surface shows a run's progress in (store.DB implements it).
type ProgressMessages interface {
	ProgressSource
	ProgressMessage(ctx context.Context, executionID, surface string) (string, error)
}

// OpenProgress returns run ex's progress on surface and the reference of
// the message showing it: after a restart (or on another replica) the
// progress is restored from the store and ref is the message recorded
// then; else it is new and ref is "".
func OpenProgress(ctx context.Context, db ProgressMessages, ex *store.Execution, surface string) (p *Progress, ref string, err error) {
	ref, err = db.ProgressMessage(ctx, ex.ID, surface)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return NewProgress(ex), "", nil
	case err != nil:
		return nil, "", fmt.Errorf("find the %s progress message of run %s: %w", surface, ex.ID, err)
	}
	if p, err = RestoreProgress(ctx, db, ex); err != nil {
		return nil, "", err
	}
	return p, ref, nil
}
