package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/hero-dev/hero/store"
)

// Price is what a model costs per million tokens, in USD.
type Price struct {
	InputPerMTok  float64
	OutputPerMTok float64
}

// PriceTable maps a model name to its price. A model missing from the
// table is counted in tokens only and the summary says so.
type PriceTable map[string]Price

// DefaultPrices holds list prices of common OpenAI models (USD per 1M
// tokens). Operators override or extend it in configuration.
func DefaultPrices() PriceTable {
	return PriceTable{
		"gpt-4o-mini":  {InputPerMTok: 0.15, OutputPerMTok: 0.60},
		"gpt-4o":       {InputPerMTok: 2.50, OutputPerMTok: 10.00},
		"gpt-4.1":      {InputPerMTok: 2.00, OutputPerMTok: 8.00},
		"gpt-4.1-mini": {InputPerMTok: 0.40, OutputPerMTok: 1.60},
		"gpt-4.1-nano": {InputPerMTok: 0.10, OutputPerMTok: 0.40},
		"gpt-5":        {InputPerMTok: 1.25, OutputPerMTok: 10.00},
		"gpt-5-mini":   {InputPerMTok: 0.25, OutputPerMTok: 2.00},
		"gpt-5-nano":   {InputPerMTok: 0.05, OutputPerMTok: 0.40},
	}
}

// Cost returns the USD cost of usage on model and whether the model's
// price is known. A dated variant ("gpt-4o-mini-2024-07-18") or a
// provider-prefixed name ("openai/gpt-4o-mini") uses its base entry.
func (t PriceTable) Cost(model string, u Usage) (float64, bool) {
	p, ok := t.lookup(model)
	if !ok {
		return 0, false
	}
	return float64(u.PromptTokens)*p.InputPerMTok/1e6 + float64(u.CompletionTokens)*p.OutputPerMTok/1e6, true
}

func (t PriceTable) lookup(model string) (Price, bool) {
	if p, ok := t[model]; ok {
		return p, true
	}
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		return t.lookup(model[i+1:])
	}
	// Longest table key that is a prefix followed by "-": dated variants.
	best, found := "", false
	for k := range t {
		if strings.HasPrefix(model, k+"-") && len(k) > len(best) {
			best, found = k, true
		}
	}
	if found {
		return t[best], true
	}
	return Price{}, false
}

// Limits are a run's governance limits after defaults were applied.
type Limits struct {
	BudgetPerRunUSD      float64
	BudgetPerDayUSD      float64
	MaxSteps             int
	WallClock            time.Duration
	UncertaintyThreshold float64
	ConfirmationTTL      time.Duration
}

// DefaultLimits apply where a project leaves a governance value at zero.
func DefaultLimits() Limits {
	return Limits{
		BudgetPerRunUSD:      2,
		BudgetPerDayUSD:      20,
		MaxSteps:             50,
		WallClock:            30 * time.Minute,
		UncertaintyThreshold: 0.5,
		ConfirmationTTL:      24 * time.Hour,
	}
}

// limitsFor merges a project's governance over the defaults.
func limitsFor(g store.Governance, d Limits) Limits {
	l := d
	if g.BudgetPerRunUSD > 0 {
		l.BudgetPerRunUSD = g.BudgetPerRunUSD
	}
	if g.BudgetPerDayUSD > 0 {
		l.BudgetPerDayUSD = g.BudgetPerDayUSD
	}
	if g.MaxSteps > 0 {
		l.MaxSteps = g.MaxSteps
	}
	if g.WallClockS > 0 {
		l.WallClock = time.Duration(g.WallClockS) * time.Second
	}
	if g.UncertaintyThreshold > 0 {
		l.UncertaintyThreshold = g.UncertaintyThreshold
	}
	if g.ConfirmationTTLS > 0 {
		l.ConfirmationTTL = time.Duration(g.ConfirmationTTLS) * time.Second
	}
	return l
}

// withRunLimits applies the limits recorded for one run over l.
func withRunLimits(l Limits, ex *store.Execution) Limits {
	if ex.LimitSteps > 0 {
		l.MaxSteps = ex.LimitSteps
	}
	if ex.LimitBudgetUSD > 0 {
		l.BudgetPerRunUSD = ex.LimitBudgetUSD
	}
	if ex.LimitWallS > 0 {
		l.WallClock = time.Duration(ex.LimitWallS) * time.Second
	}
	return l
}

// limitHit describes a governance limit a run has reached, or is nil.
type limitHit struct {
	what string // "steps", "budget", "daily budget", "time"
	text string // for the person: what was reached and what approving does
}

// checkLimits reports the first limit the run has reached. spentToday is
// the project's spend today excluding this run.
func checkLimits(e *store.Execution, l Limits, spentToday float64, elapsed time.Duration) *limitHit {
	if maxSteps := l.MaxSteps + e.ExtraSteps; e.Steps >= maxSteps {
		return &limitHit{"steps", fmt.Sprintf("The run has taken %d steps, its limit. Approve to allow %d more steps, or deny to stop here.", e.Steps, l.MaxSteps)}
	}
	if budget := l.BudgetPerRunUSD + e.ExtraBudgetUSD; e.CostKnown && e.CostUSD >= budget {
		return &limitHit{"budget", fmt.Sprintf("The run has spent $%.4f of its $%.2f budget. Approve to allow $%.2f more, or deny to stop here.", e.CostUSD, budget, l.BudgetPerRunUSD)}
	}
	if day := l.BudgetPerDayUSD + e.ExtraBudgetUSD; e.CostKnown && spentToday+e.CostUSD >= day {
		return &limitHit{"daily budget", fmt.Sprintf("The project has spent $%.4f today, its daily budget is $%.2f. Approve to let this run spend $%.2f more, or deny to stop here.", spentToday+e.CostUSD, day, l.BudgetPerRunUSD)}
	}
	if wall := l.WallClock + time.Duration(e.ExtraWallS)*time.Second; elapsed >= wall {
		return &limitHit{"time", fmt.Sprintf("The run has been going for %s, its limit is %s. Approve to allow %s more, or deny to stop here.", elapsed.Round(time.Second), wall, l.WallClock)}
	}
	return nil
}

// extend grants the run one more allowance of the limit it hit.
func extend(e *store.Execution, l Limits, what string) {
	switch what {
	case "steps":
		e.ExtraSteps += l.MaxSteps
	case "budget", "daily budget":
		e.ExtraBudgetUSD += l.BudgetPerRunUSD
	case "time":
		e.ExtraWallS += int(l.WallClock / time.Second)
	}
}
