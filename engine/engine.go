// Package engine runs the agent: it drives a language model through a tool
// loop inside a project's sandbox, asks people before anything
// destructive, enforces budgets, and persists every step so a run survives
// a restart. It talks to people only through the Surface interface.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hero-dev/hero/store"
)

// Errors returned to the surfaces, which turn them into clear messages.
var (
	// ErrNotAllowed: the person may not do this (start, decide, cancel,
	// steer).
	ErrNotAllowed = errors.New("not allowed")
	// ErrAlreadyDecided: the confirmation was decided (or expired) before.
	ErrAlreadyDecided = errors.New("already decided")
	// ErrFinished: the run is over; it cannot be steered or cancelled.
	ErrFinished = errors.New("run has finished")
	// ErrDraining: the server is shutting down and takes no new runs.
	ErrDraining = errors.New("hero is shutting down; try again in a minute")
)

// Config holds the engine's dependencies and settings.
type Config struct {
	Store      Store
	Workspaces Workspaces
	Model      Model
	// ModelName is sent with every request and recorded on each run.
	ModelName string
	// Tools offered to the model besides ask_human and finish (see
	// engine/tools.All).
	Tools []Tool
	// Forge returns where a run publishes; nil means never.
	Forge  ForgeFunc
	Prices PriceTable
	// Defaults apply where a project leaves governance at zero.
	Defaults Limits
	// Owner identifies this replica in execution leases.
	Owner string
	// Redact returns a scrubber for a project's secret values plus any
	// global ones (tokens). Output is passed through it before it reaches
	// the model, the database or a surface.
	Redact func(secrets map[string]string) func(string) string
	Log    *slog.Logger
	// Observe, when set, sees every event of every run (metrics), and
	// EventAsked, which surfaces do not get.
	Observe func(ex *store.Execution, ev Event)
	// MaxToolOutput bounds a tool result shown to the model (bytes).
	MaxToolOutput int
	// PollInterval is how often a waiting run re-reads its confirmation
	// (decisions taken on another replica arrive this way).
	PollInterval time.Duration
	// LeaseTTL is how long a replica owns a run without renewing (it
	// renews every third of it). Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	Now      func() time.Time
}

// Engine starts, drives, resumes and cancels runs.
type Engine struct {
	cfg      Config
	surfaces map[string]Surface
	tools    map[string]Tool
	schemas  []ToolSchema

	mu       sync.Mutex
	running  map[string]*runHandle // by execution id
	waiters  map[string]chan struct{}
	draining bool
	wg       sync.WaitGroup
}

type runHandle struct {
	cancel context.CancelCauseFunc
	wake   chan struct{} // steering input arrived
}

// DefaultLeaseTTL is the run lease: with a takeover check every 10 s, a
// run whose replica died resumes elsewhere within about 40 s.
const DefaultLeaseTTL = 30 * time.Second

// New checks cfg and returns an engine with no surfaces registered.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("engine: Store is required")
	case cfg.Workspaces == nil:
		return nil, errors.New("engine: Workspaces is required")
	case cfg.Model == nil:
		return nil, errors.New("engine: Model is required")
	case cfg.ModelName == "":
		return nil, errors.New("engine: ModelName is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Prices == nil {
		cfg.Prices = DefaultPrices()
	}
	if cfg.Defaults == (Limits{}) {
		cfg.Defaults = DefaultLimits()
	}
	if cfg.Owner == "" {
		cfg.Owner = "hero"
	}
	if cfg.Redact == nil {
		cfg.Redact = func(map[string]string) func(string) string { return func(s string) string { return s } }
	}
	if cfg.MaxToolOutput <= 0 {
		cfg.MaxToolOutput = 16 << 10
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{
		cfg:      cfg,
		surfaces: map[string]Surface{},
		tools:    map[string]Tool{},
		running:  map[string]*runHandle{},
		waiters:  map[string]chan struct{}{},
	}
	for _, t := range append(cfg.Tools, controlTools()...) {
		if _, dup := e.tools[t.Name]; dup {
			return nil, fmt.Errorf("engine: tool %q registered twice", t.Name)
		}
		e.tools[t.Name] = t
		e.schemas = append(e.schemas, ToolSchema{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
	}
	return e, nil
}

// AddSurface registers a surface under its Name.
func (e *Engine) AddSurface(s Surface) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.surfaces[s.Name()] = s
}

// Schemas lists the tools as the model sees them.
func (e *Engine) Schemas() []ToolSchema { return e.schemas }

// StartRequest asks for a new run.
type StartRequest struct {
	Project   *store.Project
	Task      string
	Surface   string
	ThreadRef string
	// By is who asks; they need the member role in Project (see Role).
	By Principal
	// Untrusted: the task quotes text written by people outside the
	// project (a GitHub issue's title and body). The run then counts as
	// exposed from its start (see Exposure).
	Untrusted bool
	// Limits set for this run alone, over the project's (zero fields keep
	// the project's). They are recorded with the run, so a resumed run
	// keeps them.
	Limits RunLimits
	// ID is the run's id when the caller derives it from what the run is
	// for (a schedule's slot), so that asking twice cannot start two
	// runs: Start then fails with store.ErrConflict. Empty: a new id.
	ID string
}

// RunLimits are governance limits for one run.
type RunLimits struct {
	MaxSteps  int
	BudgetUSD float64
	WallClock time.Duration
}

// Start records a new run and drives it in the background until it ends
// or ctx (the server's lifetime) is cancelled. It returns once the run is
// durably recorded, so the surface can answer at once with its id.
// req.By needs the member role in the project (ErrNotAllowed).
func (e *Engine) Start(ctx context.Context, req StartRequest) (*store.Execution, error) {
	if req.Project == nil {
		return nil, errors.New("start run: no project")
	}
	if err := e.authorize(ctx, req.Project.ID, nil, req.By, store.RoleMember); err != nil {
		return nil, fmt.Errorf("start run in project %s: %w", req.Project.Name, err)
	}
	if strings.TrimSpace(req.Task) == "" {
		return nil, errors.New("start run: the task is empty; say what hero should do")
	}
	if l := req.Limits; l.MaxSteps < 0 || l.BudgetUSD < 0 || l.WallClock < 0 || (l.WallClock > 0 && l.WallClock < time.Second) {
		return nil, fmt.Errorf("start run: limits must be positive (steps %d, budget $%g, wall clock %s)", l.MaxSteps, l.BudgetUSD, l.WallClock)
	}
	if _, ok := e.surface(req.Surface); !ok {
		return nil, fmt.Errorf("start run: unknown surface %q", req.Surface)
	}
	e.mu.Lock()
	draining := e.draining
	e.mu.Unlock()
	if draining {
		return nil, ErrDraining
	}
	now := e.cfg.Now()
	ex := &store.Execution{
		ID:              req.ID,
		ProjectID:       req.Project.ID,
		Status:          store.StatusQueued,
		Surface:         req.Surface,
		ThreadRef:       req.ThreadRef,
		Requester:       req.By.ID,
		RequesterUserID: req.By.UserID,
		Task:            req.Task,
		LimitSteps:      req.Limits.MaxSteps,
		LimitBudgetUSD:  req.Limits.BudgetUSD,
		LimitWallS:      int(req.Limits.WallClock / time.Second),
		Model:           e.cfg.ModelName,
		CostKnown:       true,
		Owner:           e.cfg.Owner,
		LeaseUntil:      now.Add(e.cfg.LeaseTTL),
		CreatedAt:       now,
		UpdatedAt:       now,
	}
	if req.Untrusted {
		// Seed the conversation so the mark survives a restart; the run
		// scrubs it when it loads it.
		b, err := json.Marshal(firstConversation(req.Task, true))
		if err != nil {
			return nil, fmt.Errorf("start run: encode conversation: %w", err)
		}
		ex.Conversation = string(b)
	}
	if err := e.cfg.Store.CreateExecution(ctx, ex); err != nil {
		return nil, fmt.Errorf("start run: record execution: %w", err)
	}
	e.launch(ctx, ex.ID, false)
	return ex, nil
}

// launch drives a run in a goroutine tracked for draining.
func (e *Engine) launch(ctx context.Context, id string, resumed bool) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := e.drive(ctx, id, resumed); err != nil {
			e.cfg.Log.Error("run ended with an engine error", "execution", id, "err", err)
		}
	}()
}

// Wait blocks until every run driven by this engine has returned.
func (e *Engine) Wait() { e.wg.Wait() }

// Drain refuses new runs and waits for running ones to finish or ctx to
// end; runs still going then are left to be resumed by the next start
// (their state is in the database).
func (e *Engine) Drain(ctx context.Context) error {
	e.mu.Lock()
	e.draining = true
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain: %d runs still going: %w", e.Running(), ctx.Err())
	}
}

// Running counts the runs this replica is driving.
func (e *Engine) Running() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.running)
}

// Surface returns the surface registered under name, for a surface that
// reports to others (kanban passes a card's run on to its threads).
func (e *Engine) Surface(name string) (Surface, bool) { return e.surface(name) }

func (e *Engine) surface(name string) (Surface, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.surfaces[name]
	return s, ok
}

// Decision is a person's answer to a confirmation.
type Decision struct {
	Approve bool
	// By is who decides.
	By Principal
	// Answer is the reply to an ask_human question.
	Answer string
}

// Decide records a decision. Only the run's requester or a project owner,
// admin or approver may decide (ErrNotAllowed); a confirmation decides
// once (ErrAlreadyDecided) and not after it expired.
func (e *Engine) Decide(ctx context.Context, confirmationID string, d Decision) (*store.Confirmation, error) {
	c, err := e.cfg.Store.Confirmation(ctx, confirmationID)
	if err != nil {
		return nil, fmt.Errorf("decide %s: %w", confirmationID, err)
	}
	ex, err := e.cfg.Store.Execution(ctx, c.ExecutionID)
	if err != nil {
		return nil, fmt.Errorf("decide %s: load run: %w", confirmationID, err)
	}
	if err := e.authorize(ctx, ex.ProjectID, ex, d.By, store.RoleApprover); err != nil {
		return c, err
	}
	if c.Status != store.ConfirmPending {
		return c, fmt.Errorf("confirmation %s was already %s: %w", c.ID, c.Status, ErrAlreadyDecided)
	}
	now := e.cfg.Now()
	if !now.Before(c.ExpiresAt) {
		e.expire(ctx, c)
		return c, fmt.Errorf("confirmation %s expired at %s: %w", c.ID, c.ExpiresAt.UTC().Format(time.RFC3339), ErrAlreadyDecided)
	}
	status := store.ConfirmDenied
	if d.Approve {
		status = store.ConfirmApproved
	}
	won, err := e.cfg.Store.DecideConfirmation(ctx, c.ID, status, d.By.ID, d.Answer, now)
	if err != nil {
		return c, fmt.Errorf("decide %s: %w", c.ID, err)
	}
	if !won {
		latest, lerr := e.cfg.Store.Confirmation(ctx, c.ID)
		if lerr == nil {
			c = latest
		}
		return c, fmt.Errorf("confirmation %s was already %s: %w", c.ID, c.Status, ErrAlreadyDecided)
	}
	c.Status, c.DecidedBy, c.Answer, c.DecidedAt = status, d.By.ID, d.Answer, &now
	e.notify(c.ID)
	return c, nil
}

// Principal is who acts on a run: the person behind a request, as their
// surface knows them.
type Principal struct {
	// ID is the platform identity ("slack:T1/U2", "github:octocat",
	// "local:ana"), recorded as the requester or decider.
	ID string
	// UserID is the hero user the identity is linked to (0: none).
	UserID int64
	// Granted is the role the person's platform vouches for when they
	// are not linked to a hero user (a GitHub repository permission,
	// mapped by bot's table). A linked person holds their hero role.
	Granted store.Role
	// Operator is the local user running hero on this machine (hero run
	// and the other subcommands): they own every project.
	Operator bool
}

// Operator is the principal of the local user named name ("local:ana").
func Operator(name string) Principal { return Principal{ID: name, Operator: true} }

// Role is p's role in a project: owner for the local operator and for
// site administrators, a linked user's membership, else what the
// platform granted. "" is no role. Every surface authorises through it.
func (e *Engine) Role(ctx context.Context, projectID int64, p Principal) (store.Role, error) {
	if p.Operator {
		return store.RoleOwner, nil
	}
	if p.UserID == 0 {
		return p.Granted, nil
	}
	u, err := e.cfg.Store.UserByID(ctx, p.UserID)
	if err != nil {
		return "", fmt.Errorf("look up user %d: %w", p.UserID, err)
	}
	if u.IsAdmin {
		return store.RoleOwner, nil // site administrators act as owners everywhere
	}
	role, err := e.cfg.Store.MemberRole(ctx, projectID, p.UserID)
	if err != nil {
		return "", fmt.Errorf("look up role: %w", err)
	}
	return role, nil
}

// authorize checks that p may act in a project, on ex when it is set:
// the run's requester always, anyone else with at least need (approvers
// decide, members start, steer and cancel).
func (e *Engine) authorize(ctx context.Context, projectID int64, ex *store.Execution, p Principal, need store.Role) error {
	if ex != nil && ((p.ID != "" && p.ID == ex.Requester) || (p.UserID != 0 && p.UserID == ex.RequesterUserID)) {
		return nil
	}
	role, err := e.Role(ctx, projectID, p)
	if err != nil {
		return err
	}
	if role.AtLeast(need) {
		return nil
	}
	switch {
	case ex == nil:
		return fmt.Errorf("starting a run needs the %s role in the project: %w", need, ErrNotAllowed)
	case need == store.RoleApprover:
		return fmt.Errorf("only the person who started run %s or a project approver can decide: %w", ex.ID, ErrNotAllowed)
	}
	return fmt.Errorf("only the person who started run %s or a project member can do that: %w", ex.ID, ErrNotAllowed)
}

// Cancel stops a run: its running command is killed and it ends as
// cancelled. A run driven by another replica notices within PollInterval.
func (e *Engine) Cancel(ctx context.Context, executionID string, by Principal) error {
	ex, err := e.cfg.Store.Execution(ctx, executionID)
	if err != nil {
		return fmt.Errorf("cancel %s: %w", executionID, err)
	}
	if err := e.authorize(ctx, ex.ProjectID, ex, by, store.RoleMember); err != nil {
		return err
	}
	if store.Final(ex.Status) {
		return fmt.Errorf("run %s is already %s: %w", ex.ID, ex.Status, ErrFinished)
	}
	// The driving loop owns the final write; here we only ask it to stop.
	// Recording the request in the database reaches other replicas too.
	if _, err := e.cfg.Store.AddInput(ctx, ex.ID, by.ID, cancelMarker); err != nil {
		return fmt.Errorf("cancel %s: %w", ex.ID, err)
	}
	e.mu.Lock()
	h := e.running[ex.ID]
	e.mu.Unlock()
	if h != nil {
		h.cancel(errCancelled{by: by.ID})
		return nil
	}
	// Another replica drives the run: close its open questions so it wakes
	// up within PollInterval and finds the cancellation.
	pending, err := e.cfg.Store.PendingConfirmations(ctx, ex.ID)
	if err != nil {
		return fmt.Errorf("cancel %s: %w", ex.ID, err)
	}
	for _, c := range pending {
		if _, err := e.cfg.Store.DecideConfirmation(ctx, c.ID, store.ConfirmDenied, by.ID+" (cancelled the run)", "", e.cfg.Now()); err != nil {
			return fmt.Errorf("cancel %s: close confirmation %s: %w", ex.ID, c.ID, err)
		}
	}
	return nil
}

type deliveryKey struct{}

// WithDelivery marks ctx as handling one platform delivery (its source and
// id). Surfaces set it while processing an inbox delivery, so that a
// delivery handled twice (inboxes deliver at least once) steers a run only
// once.
func WithDelivery(ctx context.Context, source, id string) context.Context {
	return context.WithValue(ctx, deliveryKey{}, source+":"+id)
}

func deliveryOf(ctx context.Context) string {
	k, _ := ctx.Value(deliveryKey{}).(string)
	return k
}

// Steer adds a message from a person to a running run; the model reads it
// before its next call. Within WithDelivery, the same delivery adds it once.
func (e *Engine) Steer(ctx context.Context, executionID string, by Principal, body string) error {
	ex, err := e.cfg.Store.Execution(ctx, executionID)
	if err != nil {
		return fmt.Errorf("steer %s: %w", executionID, err)
	}
	if err := e.authorize(ctx, ex.ProjectID, ex, by, store.RoleMember); err != nil {
		return err
	}
	if store.Final(ex.Status) {
		return fmt.Errorf("run %s is already %s: %w", ex.ID, ex.Status, ErrFinished)
	}
	if _, added, err := e.cfg.Store.AddInputOnce(ctx, ex.ID, by.ID, body, deliveryOf(ctx)); err != nil {
		return fmt.Errorf("steer %s: %w", ex.ID, err)
	} else if !added {
		return nil // this delivery already steered the run
	}
	e.mu.Lock()
	h := e.running[ex.ID]
	e.mu.Unlock()
	if h != nil {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// cancelMarker is the input body that asks a run to stop; it never reaches
// the model.
const cancelMarker = "[hero:cancel]"

type errCancelled struct{ by string }

func (e errCancelled) Error() string {
	if e.by == "" {
		return "cancelled"
	}
	return "cancelled by " + e.by
}

// notify wakes a run waiting on confirmation id in this process.
func (e *Engine) notify(id string) {
	e.mu.Lock()
	ch := e.waiters[id]
	e.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// expire marks every pending confirmation past its expiry as expired and
// wakes the runs waiting on them.
func (e *Engine) expire(ctx context.Context, c *store.Confirmation) {
	expired, err := e.cfg.Store.ExpireConfirmations(ctx, e.cfg.Now())
	if err != nil {
		e.cfg.Log.Warn("expire confirmations", "err", err)
		return
	}
	for _, x := range expired {
		if c != nil && x.ID == c.ID {
			c.Status = store.ConfirmExpired
		}
		e.notify(x.ID)
	}
}

// ExpireDue expires every overdue confirmation; cron calls it so that runs
// on replicas that died still see their questions close.
func (e *Engine) ExpireDue(ctx context.Context) { e.expire(ctx, nil) }

// Resume picks up runs left queued, running or waiting by a process that
// stopped (their lease has lapsed): they are resumed from their saved
// conversation, or closed as interrupted when their surface cannot be
// reached from here (a terminal run has nobody left to talk to). Call it
// at start and then periodically: a lease of a process that just died
// lapses only after LeaseTTL, and another replica's runs are taken over
// the same way.
func (e *Engine) Resume(ctx context.Context) (resumed, closed int, err error) {
	exs, err := e.cfg.Store.ExecutionsByStatus(ctx, store.StatusQueued, store.StatusRunning, store.StatusWaiting)
	if err != nil {
		return 0, 0, fmt.Errorf("resume: list unfinished runs: %w", err)
	}
	now := e.cfg.Now()
	for i := range exs {
		ex := &exs[i]
		if ex.Owner != "" && ex.Owner != e.cfg.Owner && now.Before(ex.LeaseUntil) {
			continue // another live replica drives it
		}
		e.mu.Lock()
		_, driving := e.running[ex.ID]
		e.mu.Unlock()
		if driving {
			continue
		}
		// A run whose surface is not registered here (a terminal run
		// of a `hero run` that ended) has nobody left to talk to.
		s, ok := e.surface(ex.Surface)
		if ok {
			e.launch(ctx, ex.ID, true)
			resumed++
			continue
		}
		won, err := e.cfg.Store.ClaimExecution(ctx, ex.ID, e.cfg.Owner, now.Add(e.cfg.LeaseTTL))
		if err != nil || !won {
			continue
		}
		r := &run{e: e, ex: ex, surface: s, scrub: func(s string) string { return s }}
		if err := r.end(ctx, store.StatusInterrupted, "", "hero stopped while this run was in progress; start it again to continue"); err != nil {
			return resumed, closed, err
		}
		closed++
	}
	return resumed, closed, nil
}
