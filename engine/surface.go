package engine

import (
	"context"

	"github.com/hero-dev/hero/store"
)

// Surface is where the people behind a run read its progress and answer
// its questions: a terminal, a Slack or Discord thread, a GitHub issue.
// The engine knows nothing else about them; each adapter renders Events in
// its own format (and throttles updates to respect its platform's limits).
//
// Implementations must be safe for concurrent use by many runs.
type Surface interface {
	// Name matches store.Execution.Surface ("terminal", "slack", ...).
	Name() string
	// Update reports what happened. Errors are logged, never fatal to the
	// run: a flaky chat platform must not kill the work.
	Update(ctx context.Context, exec *store.Execution, ev Event) error
	// Ask shows a confirmation (with buttons where the platform has them).
	// The decision comes back later through Engine.Decide, possibly on
	// another replica or after a restart. The returned reference is stored
	// with the confirmation so the message can be updated once decided.
	Ask(ctx context.Context, exec *store.Execution, c *store.Confirmation) (ref string, err error)
}

// EventKind says what an Event reports.
type EventKind string

// Event kinds, in the order a run usually produces them.
const (
	EventStarted  EventKind = "started"  // the run was accepted; Text is a greeting
	EventStep     EventKind = "step"     // Step was recorded
	EventOutput   EventKind = "output"   // Text is live (redacted) command output
	EventAsked    EventKind = "asked"    // Confirmation is pending and was shown; observers only (Config.Observe): a surface is asked through Ask
	EventDecided  EventKind = "decided"  // Confirmation was decided or expired
	EventFinished EventKind = "finished" // Outcome is set; nothing follows
)

// Event is one neutral progress message; adapters render it.
type Event struct {
	Kind EventKind
	Text string
	// Resumed (EventStarted): the run continues after a restart rather
	// than starting; Text says so.
	Resumed      bool
	Step         *store.Step
	Confirmation *store.Confirmation
	Outcome      *Outcome
}

// Outcome is how a run ended, for the closing message.
type Outcome struct {
	Status    string // a store.Status* value
	Summary   string
	Error     string
	Steps     int
	TokensIn  int64
	TokensOut int64
	CostUSD   float64
	CostKnown bool // false: the model is not in the price table
	// PullRequestURL is set when the run opened one.
	PullRequestURL string
	// DiffStat summarises the files the run changed (git diff --stat),
	// when the workspace can tell.
	DiffStat string
}
