package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// FanOutName is the surface name of runs that report to several places.
const FanOutName = "fanout"

// Destination is one place a fan-out run reports to: a surface and that
// surface's own reference (a Slack thread, a GitHub issue).
type Destination struct {
	Surface string `json:"surface"`
	Ref     string `json:"ref"`
}

// FanOutRef is the ThreadRef of a run reporting to every destination.
func FanOutRef(ds ...Destination) string {
	b, _ := json.Marshal(ds)
	return string(b)
}

// ParseFanOutRef reads a fan-out run's destinations.
func ParseFanOutRef(ref string) ([]Destination, error) {
	var ds []Destination
	if err := json.Unmarshal([]byte(ref), &ds); err != nil || len(ds) == 0 {
		return nil, fmt.Errorf("fan-out reference %q: want a JSON list of {surface, ref}", ref)
	}
	return ds, nil
}

// FanOut is the engine surface of runs that live in several places at
// once (a kanban card's Slack thread and its GitHub issue): every event
// and question goes to each place's own surface, and a decision taken in
// any of them is shown in all (the engine reports it once, here).
//
// The confirmation's stored reference maps each surface to the
// reference its own Ask returned, so each place edits its own message.
type FanOut struct {
	surfaces map[string]engine.Surface
}

var _ engine.Surface = (*FanOut)(nil)

// NewFanOut returns the fan-out over the given surfaces (by Name).
func NewFanOut(surfaces ...engine.Surface) (*FanOut, error) {
	f := &FanOut{surfaces: map[string]engine.Surface{}}
	for _, s := range surfaces {
		if s == nil {
			return nil, errors.New("bot: fan-out over a nil surface")
		}
		f.surfaces[s.Name()] = s
	}
	return f, nil
}

// Name implements engine.Surface.
func (f *FanOut) Name() string { return FanOutName }

// at is ex as seen by one destination's surface.
func at(ex *store.Execution, d Destination) *store.Execution {
	c := *ex
	c.Surface, c.ThreadRef = d.Surface, d.Ref
	return &c
}

func (f *FanOut) each(ex *store.Execution, do func(s engine.Surface, ex *store.Execution, d Destination) error) error {
	ds, err := ParseFanOutRef(ex.ThreadRef)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range ds {
		s, ok := f.surfaces[d.Surface]
		if !ok {
			errs = append(errs, fmt.Errorf("run %s reports to %s, which is not configured here", ex.ID, d.Surface))
			continue
		}
		if err := do(s, at(ex, d), d); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Surface, err))
		}
	}
	return errors.Join(errs...)
}

// Update implements engine.Surface: every place renders the event; a
// decided confirmation carries each place's own message reference.
func (f *FanOut) Update(ctx context.Context, ex *store.Execution, ev engine.Event) error {
	var refs map[string]string
	if ev.Confirmation != nil {
		_ = json.Unmarshal([]byte(ev.Confirmation.SurfaceRef), &refs)
	}
	return f.each(ex, func(s engine.Surface, ex *store.Execution, d Destination) error {
		e := ev
		if ev.Confirmation != nil {
			c := *ev.Confirmation
			c.SurfaceRef = refs[d.Surface]
			e.Confirmation = &c
		}
		return s.Update(ctx, ex, e)
	})
}

// Ask implements engine.Surface: the question is shown in every place;
// the reference returned maps each surface to its own.
func (f *FanOut) Ask(ctx context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	refs := map[string]string{}
	err := f.each(ex, func(s engine.Surface, ex *store.Execution, d Destination) error {
		ref, err := s.Ask(ctx, ex, c)
		if err == nil {
			refs[d.Surface] = ref
		}
		return err
	})
	b, _ := json.Marshal(refs)
	if len(refs) == 0 {
		return "", err
	}
	return string(b), err
}
