// Package fanout is the engine surface of runs that live in several places
// at once — a kanban card's Slack threads and its GitHub issue, a
// schedule's channel: every event and question goes to each place's own
// surface, and a decision taken in any of them is shown in all (the engine
// reports it once, here, and each place edits its own message).
//
// It is its own package so that the conversation layer (bot) and the
// board and schedules, which bot's commands use, can all build on it.
package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// Name is the surface name of runs whose ThreadRef lists their places
// (see Ref).
const Name = "fanout"

// Destination is one place a run reports to: a surface and that
// surface's own reference (a Slack thread, a GitHub issue).
type Destination struct {
	Surface string `json:"surface"`
	Ref     string `json:"ref"`
}

// key names a destination in a confirmation's references: a surface may
// hold several of a run's places (two Slack threads of one card).
func (d Destination) key() string { return d.Surface + " " + d.Ref }

// Ref is the ThreadRef of a run reporting to every destination.
func Ref(ds ...Destination) string {
	b, _ := json.Marshal(ds)
	return string(b)
}

// ParseRef reads the destinations Ref wrote.
func ParseRef(ref string) ([]Destination, error) {
	var ds []Destination
	if err := json.Unmarshal([]byte(ref), &ds); err != nil || len(ds) == 0 {
		return nil, fmt.Errorf("fan-out reference %q: want a JSON list of {surface, ref}", ref)
	}
	return ds, nil
}

// Config says where a fan-out's runs report.
type Config struct {
	// Name is the surface name its runs are recorded with (default Name).
	Name string
	// Places finds a place's surface by name (*engine.Engine, or Over).
	// Nil: no place can be reached from this process (a command-line
	// tool), so events go nowhere and questions wait on the settings page.
	Places Places
	// Destinations lists a run's places, read at every event so places
	// added later (a card posted to another channel) hear the rest.
	// Default: ParseRef of the run's ThreadRef.
	Destinations func(ctx context.Context, ex *store.Execution) ([]Destination, error)
	// Finished, when set, hears a run's end after its places did (a card
	// moves on, a schedule counts a failure).
	Finished func(ctx context.Context, ex *store.Execution, o *engine.Outcome) error
	Log      *slog.Logger
}

// Places finds engine surfaces by name.
type Places interface {
	Surface(name string) (engine.Surface, bool)
}

// Surface is an engine.Surface that relays to each of a run's places.
type Surface struct{ cfg Config }

var _ engine.Surface = (*Surface)(nil)

// New returns the fan-out surface of cfg.
func New(cfg Config) *Surface {
	if cfg.Name == "" {
		cfg.Name = Name
	}
	if cfg.Destinations == nil {
		cfg.Destinations = func(_ context.Context, ex *store.Execution) ([]Destination, error) {
			return ParseRef(ex.ThreadRef)
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Surface{cfg: cfg}
}

// Over is the Places of the given surfaces, by Name.
func Over(surfaces ...engine.Surface) Places {
	m := over{}
	for _, s := range surfaces {
		m[s.Name()] = s
	}
	return m
}

type over map[string]engine.Surface

func (m over) Surface(name string) (engine.Surface, bool) {
	s, ok := m[name]
	return s, ok
}

// Name implements engine.Surface.
func (f *Surface) Name() string { return f.cfg.Name }

// each calls do for every place of ex with ex re-addressed to it. A place
// that fails does not keep the others from hearing; the failures come back
// joined.
func (f *Surface) each(ctx context.Context, ex *store.Execution, do func(s engine.Surface, at *store.Execution, d Destination) error) error {
	if f.cfg.Places == nil {
		return nil
	}
	ds, err := f.cfg.Destinations(ctx, ex)
	if err != nil {
		return fmt.Errorf("places of run %s: %w", ex.ID, err)
	}
	var errs []error
	for _, d := range ds {
		if d.Surface == f.cfg.Name {
			continue // never relay to ourselves
		}
		s, ok := f.cfg.Places.Surface(d.Surface)
		if !ok {
			errs = append(errs, fmt.Errorf("run %s reports to %s, which is not configured here", ex.ID, d.Surface))
			continue
		}
		at := *ex
		at.Surface, at.ThreadRef = d.Surface, d.Ref
		if err := do(s, &at, d); err != nil {
			f.cfg.Log.Warn("fan-out place failed", "run", ex.ID, "surface", d.Surface, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", d.Surface, err))
		}
	}
	return errors.Join(errs...)
}

// Update implements engine.Surface: every place renders the event (a
// decided confirmation carries each place's own message reference), then
// Finished hears the end.
func (f *Surface) Update(ctx context.Context, ex *store.Execution, ev engine.Event) error {
	var refs map[string]string
	if ev.Confirmation != nil {
		_ = json.Unmarshal([]byte(ev.Confirmation.SurfaceRef), &refs)
	}
	err := f.each(ctx, ex, func(s engine.Surface, at *store.Execution, d Destination) error {
		e := ev
		if ev.Confirmation != nil {
			c := *ev.Confirmation
			c.SurfaceRef = refs[d.key()]
			e.Confirmation = &c
		}
		return s.Update(ctx, at, e)
	})
	if ev.Kind == engine.EventFinished && ev.Outcome != nil && f.cfg.Finished != nil {
		err = errors.Join(err, f.cfg.Finished(ctx, ex, ev.Outcome))
	}
	return err
}

// Ask implements engine.Surface: the question is shown in every place and
// the reference returned maps each place to its own message. It fails
// only when no place could show it; with no place at all the question
// waits on the settings page's run page.
func (f *Surface) Ask(ctx context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	refs := map[string]string{}
	err := f.each(ctx, ex, func(s engine.Surface, at *store.Execution, d Destination) error {
		ref, err := s.Ask(ctx, at, c)
		if err == nil {
			refs[d.key()] = ref
		}
		return err
	})
	if len(refs) == 0 {
		return "", err
	}
	b, _ := json.Marshal(refs)
	return string(b), nil
}
