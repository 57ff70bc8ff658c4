package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// hero_confirmations_asked_total counts the engine's asked events, one
// per question: the steps recording a confirmation (asked, then decided)
// are counted by kind only, whatever their text says.
func TestMetricsCountAskedConfirmations(t *testing.T) {
	t.Parallel()
	m := newMetrics(nil)
	ex := &store.Execution{ID: "r1"}
	c := &store.Confirmation{ID: "c1", Tool: "delete_file", Status: store.ConfirmPending}
	for _, ev := range []engine.Event{
		{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepConfirmation, Output: "asked: delete README.md"}},
		{Kind: engine.EventAsked, Confirmation: c},
		{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepConfirmation, Output: "asked: approved by local:me"}},
		{Kind: engine.EventDecided, Confirmation: &store.Confirmation{ID: "c1", Status: store.ConfirmApproved}},
	} {
		m.observe(ex, ev)
	}
	// A registry of these counters alone: the full one would scrape the
	// inbox from a database this test has not.
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.asked, m.steps, m.decided)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, x := range f.GetMetric() {
			key := f.GetName()
			for _, l := range x.GetLabel() {
				key += " " + l.GetValue()
			}
			got[key] = x.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"hero_confirmations_asked_total":            1,
		"hero_steps_total confirmation":             2,
		"hero_confirmations_decided_total approved": 1,
	} {
		if got[key] != want {
			t.Errorf("%s = %g, want %g (all: %v)", key, got[key], want, got)
		}
	}
}
