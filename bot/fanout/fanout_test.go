package fanout

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// place records what one chat surface was shown, per thread.
type place struct {
	name string
	fail map[string]bool // threads whose posts fail
	mu   sync.Mutex
	seen []string
}

func (p *place) Name() string { return p.name }

func (p *place) Update(_ context.Context, ex *store.Execution, ev engine.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := ex.ThreadRef + " " + string(ev.Kind)
	if ev.Confirmation != nil {
		line += " ref=" + ev.Confirmation.SurfaceRef
	}
	p.seen = append(p.seen, line)
	if p.fail[ex.ThreadRef] {
		return errors.New("platform down")
	}
	return nil
}

func (p *place) Ask(_ context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, ex.ThreadRef+" ask "+c.ID)
	if p.fail[ex.ThreadRef] {
		return "", errors.New("platform down")
	}
	return "msg-in-" + ex.ThreadRef, nil
}

func (p *place) lines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.seen, "; ")
}

func TestEveryPlaceHearsAndEditsItsOwnMessage(t *testing.T) {
	ctx := t.Context()
	slack := &place{name: "slack", fail: map[string]bool{}}
	github := &place{name: "github", fail: map[string]bool{}}
	var finished []string
	f := New(Config{Name: "card", Places: Over(slack, github),
		Destinations: func(context.Context, *store.Execution) ([]Destination, error) {
			// Two threads on one surface, one issue, and the fan-out's own
			// name (never relayed to itself).
			return []Destination{{"slack", "T/C1/1"}, {"slack", "T/C2/2"}, {"github", "o/r#7"}, {"card", "k1"}}, nil
		},
		Finished: func(_ context.Context, ex *store.Execution, o *engine.Outcome) error {
			finished = append(finished, ex.ThreadRef+" "+o.Status+" after "+slack.lines())
			return nil
		},
	})
	ex := &store.Execution{ID: "r1", Surface: "card", ThreadRef: "k1"}

	ref, err := f.Ask(ctx, ex, &store.Confirmation{ID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Update(ctx, ex, engine.Event{Kind: engine.EventDecided, Confirmation: &store.Confirmation{ID: "c1", SurfaceRef: ref}}); err != nil {
		t.Fatal(err)
	}
	if got, want := slack.lines(), "T/C1/1 ask c1; T/C2/2 ask c1; T/C1/1 decided ref=msg-in-T/C1/1; T/C2/2 decided ref=msg-in-T/C2/2"; got != want {
		t.Fatalf("slack saw %q, want %q", got, want)
	}
	if got, want := github.lines(), "o/r#7 ask c1; o/r#7 decided ref=msg-in-o/r#7"; got != want {
		t.Fatalf("github saw %q, want %q", got, want)
	}
	if err := f.Update(ctx, ex, engine.Event{Kind: engine.EventFinished, Outcome: &engine.Outcome{Status: store.StatusSucceeded}}); err != nil {
		t.Fatal(err)
	}
	if len(finished) != 1 || !strings.HasPrefix(finished[0], "k1 succeeded after ") || !strings.HasSuffix(finished[0], "T/C2/2 finished") {
		t.Fatalf("Finished heard %q; want once, after every place", finished)
	}
}

func TestAFailingPlaceDoesNotSilenceTheOthers(t *testing.T) {
	ctx := t.Context()
	slack := &place{name: "slack", fail: map[string]bool{"T/C1/1": true}}
	f := New(Config{Places: Over(slack)})
	ex := &store.Execution{ID: "r1", Surface: Name, ThreadRef: Ref(Destination{"slack", "T/C1/1"}, Destination{"slack", "T/C2/2"}, Destination{"discord", "D/1"})}

	ref, err := f.Ask(ctx, ex, &store.Confirmation{ID: "c1"})
	if err != nil || ref != `{"slack T/C2/2":"msg-in-T/C2/2"}` {
		t.Fatalf("Ask = %q, %v; want the working place's reference and no error", ref, err)
	}
	err = f.Update(ctx, ex, engine.Event{Kind: engine.EventStep})
	if err == nil || !strings.Contains(err.Error(), "platform down") || !strings.Contains(err.Error(), "discord, which is not configured here") {
		t.Fatalf("Update error %v; want the failing and the missing place named", err)
	}
	if !strings.Contains(slack.lines(), "T/C2/2 step") {
		t.Fatalf("the working thread missed the step: %q", slack.lines())
	}

	slack.fail["T/C2/2"] = true
	if ref, err := f.Ask(ctx, ex, &store.Confirmation{ID: "c2"}); err == nil || ref != "" {
		t.Fatalf("Ask with no place able to show it = %q, %v; want an error", ref, err)
	}
}

func TestNoPlacesIsQuiet(t *testing.T) {
	f := New(Config{Name: "schedule", Destinations: func(context.Context, *store.Execution) ([]Destination, error) {
		t.Fatal("destinations read without places to reach")
		return nil, nil
	}})
	ex := &store.Execution{ID: "r1", Surface: "schedule", ThreadRef: "s1"}
	if ref, err := f.Ask(t.Context(), ex, &store.Confirmation{ID: "c1"}); ref != "" || err != nil {
		t.Fatalf("Ask = %q, %v", ref, err)
	}
	if err := f.Update(t.Context(), ex, engine.Event{Kind: engine.EventStep}); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRef("not json"); err == nil {
		t.Fatal("ParseRef accepted a bad reference")
	}
}
