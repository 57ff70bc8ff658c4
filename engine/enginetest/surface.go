package enginetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// Surface records what the engine reported, in order, and waits for it
// run by run.
type Surface struct {
	name string

	mu     sync.Mutex
	events []reported
	asked  []reportedAsk
	taken  map[string]int // run → confirmations NextAsked returned
}

type reported struct {
	run string
	ev  engine.Event
}

type reportedAsk struct {
	run string
	c   *store.Confirmation
}

var _ engine.Surface = (*Surface)(nil)

// NewSurface returns a recording surface named name.
func NewSurface(name string) *Surface { return &Surface{name: name, taken: map[string]int{}} }

func (s *Surface) Name() string { return s.name }

func (s *Surface) Update(_ context.Context, ex *store.Execution, ev engine.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, reported{run: ex.ID, ev: ev})
	return nil
}

// Ask records a copy of c (the engine goes on with its own) and answers
// with the message reference "<name>:<confirmation id>".
func (s *Surface) Ask(_ context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cc := *c
	s.asked = append(s.asked, reportedAsk{run: ex.ID, c: &cc})
	return s.name + ":" + c.ID, nil
}

// Events returns what was reported so far, for every run.
func (s *Surface) Events() []engine.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]engine.Event, 0, len(s.events))
	for _, r := range s.events {
		out = append(out, r.ev)
	}
	return out
}

// RunEvents returns what was reported so far for run.
func (s *Surface) RunEvents(run string) []engine.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []engine.Event
	for _, r := range s.events {
		if r.run == run {
			out = append(out, r.ev)
		}
	}
	return out
}

// Asked returns the confirmations shown so far, for every run.
func (s *Surface) Asked() []*store.Confirmation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*store.Confirmation, 0, len(s.asked))
	for _, a := range s.asked {
		out = append(out, a.c)
	}
	return out
}

// AskedIn returns the confirmations run asked so far.
func (s *Surface) AskedIn(run string) []*store.Confirmation {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Confirmation
	for _, a := range s.asked {
		if a.run == run {
			out = append(out, a.c)
		}
	}
	return out
}

// Text is everything the surface was shown for run, one event a line
// (kind, text, step tool, arguments and output, outcome summary and
// error): what a leak check searches.
func (s *Surface) Text(run string) string {
	var b strings.Builder
	for _, ev := range s.RunEvents(run) {
		fmt.Fprintf(&b, "%s %s", ev.Kind, ev.Text)
		if ev.Step != nil {
			fmt.Fprintf(&b, " %s %s %s", ev.Step.Tool, ev.Step.Arguments, ev.Step.Output)
		}
		if ev.Outcome != nil {
			fmt.Fprintf(&b, " %s %s", ev.Outcome.Summary, ev.Outcome.Error)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Outcome waits for run's finished event and returns its outcome.
func (s *Surface) Outcome(t testing.TB, run string) *engine.Outcome {
	t.Helper()
	var o *engine.Outcome
	eventually(t, func() string { return fmt.Sprintf("run %s did not finish; events:\n%s", run, s.Text(run)) }, func() bool {
		for _, ev := range s.RunEvents(run) {
			if ev.Kind == engine.EventFinished {
				o = ev.Outcome
				return true
			}
		}
		return false
	})
	return o
}

// NextAsked waits for the next confirmation run asks (the first one
// this NextAsked has not returned yet).
func (s *Surface) NextAsked(t testing.TB, run string) *store.Confirmation {
	t.Helper()
	var c *store.Confirmation
	eventually(t, func() string { return fmt.Sprintf("run %s asked nothing more; events:\n%s", run, s.Text(run)) }, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, a := range s.asked {
			if a.run != run {
				continue
			}
			if n == s.taken[run] {
				s.taken[run]++
				c = a.c
				return true
			}
			n++
		}
		return false
	})
	return c
}
