package enginetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// Recorder stands in for the engine where the conversation layer calls
// it (bot.Engine; the GitHub surface's Engine is the same five methods)
// and records every call, for tests of what the dispatcher asks of the
// engine rather than of the run itself. It keeps the rows the dispatcher
// reads back: a start is a run in DB, decisions read the confirmation
// there, and roles are engine.Role's without site administrators.
type Recorder struct {
	// DB holds the runs, confirmations and memberships.
	DB *store.DB
	// RunStatus is the status started runs are recorded with:
	// store.StatusRunning (the default) for runs still going, which the
	// next message in their thread steers; store.StatusSucceeded for runs
	// that end at once, so that later work in the thread starts anew.
	RunStatus string
	// DecideWith, when set, decides in place of the default, which approves
	// the confirmation in DB (store.ErrNotFound when there is none).
	DecideWith func(id string, d engine.Decision) (*store.Confirmation, error)

	mu      sync.Mutex
	starts  []engine.StartRequest
	decides []Decided
	steers  []Steered
	cancels []string
}

// Decided is one call of Decide.
type Decided struct {
	ID       string // the confirmation's
	Decision engine.Decision
}

// Steered is one call of Steer.
type Steered struct {
	ID   string // the run's
	Body string
}

// Start records the request, then refuses with engine.ErrNotAllowed
// below the member role, as the engine does, or records the run in DB.
// A request is recorded even when refused: what tests check is what the
// dispatcher asked, and it should not ask for people it must refuse.
func (r *Recorder) Start(ctx context.Context, req engine.StartRequest) (*store.Execution, error) {
	r.mu.Lock()
	r.starts = append(r.starts, req)
	r.mu.Unlock()
	role, err := r.Role(ctx, req.Project.ID, req.By)
	if err != nil {
		return nil, err
	}
	if !role.AtLeast(store.RoleMember) {
		return nil, fmt.Errorf("starting a run needs the member role: %w", engine.ErrNotAllowed)
	}
	status := r.RunStatus
	if status == "" {
		status = store.StatusRunning
	}
	now := time.Now()
	ex := &store.Execution{ProjectID: req.Project.ID, Status: status, Surface: req.Surface, ThreadRef: req.ThreadRef,
		Requester: req.By.ID, RequesterUserID: req.By.UserID, Task: req.Task, Model: "m", CreatedAt: now, UpdatedAt: now, LeaseUntil: now}
	if err := r.DB.CreateExecution(ctx, ex); err != nil {
		return nil, err
	}
	return ex, nil
}

// Decide records the decision, then decides with r.DecideWith or approves
// the confirmation in DB.
func (r *Recorder) Decide(ctx context.Context, id string, d engine.Decision) (*store.Confirmation, error) {
	r.mu.Lock()
	r.decides = append(r.decides, Decided{ID: id, Decision: d})
	r.mu.Unlock()
	if r.DecideWith != nil {
		return r.DecideWith(id, d)
	}
	c, err := r.DB.Confirmation(ctx, id)
	if err != nil {
		return nil, err
	}
	c.Status, c.DecidedBy, c.Answer = store.ConfirmApproved, d.By.ID, d.Answer
	return c, nil
}

// Cancel records the run's id.
func (r *Recorder) Cancel(_ context.Context, id string, _ engine.Principal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancels = append(r.cancels, id)
	return nil
}

// Steer records the run's id and the message.
func (r *Recorder) Steer(_ context.Context, id string, _ engine.Principal, body string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steers = append(r.steers, Steered{ID: id, Body: body})
	return nil
}

// Role is engine.Role without site administrators: the role granted
// with the principal, or the linked user's membership in DB.
func (r *Recorder) Role(ctx context.Context, projectID int64, p engine.Principal) (store.Role, error) {
	if p.UserID == 0 {
		return p.Granted, nil
	}
	return r.DB.MemberRole(ctx, projectID, p.UserID)
}

// Starts are the start requests so far, refused ones included.
func (r *Recorder) Starts() []engine.StartRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.starts)
}

// Decides are the calls of Decide so far.
func (r *Recorder) Decides() []Decided {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.decides)
}

// Steers are the calls of Steer so far.
func (r *Recorder) Steers() []Steered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.steers)
}

// Cancels are the ids of the runs cancelled so far.
func (r *Recorder) Cancels() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cancels)
}
