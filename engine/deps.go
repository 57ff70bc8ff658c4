package engine

import (
	"context"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
)

// Store is the part of the database the engine uses; *store.DB implements
// it. Declared here so the engine's tests can count calls and inject
// failures without a fake database.
type Store interface {
	ProjectByID(ctx context.Context, id int64) (*store.Project, error)
	UserByID(ctx context.Context, id int64) (*store.User, error)
	MemberRole(ctx context.Context, projectID, userID int64) (store.Role, error)
	SecretValues(ctx context.Context, projectID int64) (map[string]string, error)

	CreateExecution(ctx context.Context, e *store.Execution) error
	Execution(ctx context.Context, id string) (*store.Execution, error)
	UpdateExecution(ctx context.Context, e *store.Execution, columns ...string) error
	ExecutionsByStatus(ctx context.Context, statuses ...string) ([]store.Execution, error)
	ClaimExecution(ctx context.Context, id, owner string, until time.Time) (bool, error)
	ProjectSpendSince(ctx context.Context, projectID int64, since time.Time) (float64, error)

	AppendStep(ctx context.Context, s *store.Step) error

	CreateConfirmation(ctx context.Context, c *store.Confirmation) error
	Confirmation(ctx context.Context, id string) (*store.Confirmation, error)
	DecideConfirmation(ctx context.Context, id, status, decidedBy, answer string, now time.Time) (bool, error)
	SetConfirmationRef(ctx context.Context, id, ref string) error
	PendingConfirmations(ctx context.Context, executionID string) ([]store.Confirmation, error)
	ConfirmationsOf(ctx context.Context, executionID string) ([]store.Confirmation, error)
	ExpireConfirmations(ctx context.Context, now time.Time) ([]store.Confirmation, error)

	AddInput(ctx context.Context, executionID, author, body string) (*store.Input, error)
	AddInputOnce(ctx context.Context, executionID, author, body, key string) (*store.Input, bool, error)
	TakeInputs(ctx context.Context, executionID string) ([]store.Input, error)
}

// Workspaces gives a run its sandbox, hydrated with the project's
// repository and secrets. cmd/hero implements it with sandbox.Manager and
// sandbox hydration.
type Workspaces interface {
	// Open returns a ready sandbox for the run. env holds the project's
	// secrets to inject. Errors are shown to the requester, so they must
	// say what failed (and never contain a secret).
	Open(ctx context.Context, p *store.Project, exec *store.Execution, env map[string]string) (sandbox.Sandbox, error)
	// Close releases the run's sandbox; it is called exactly once per
	// successful Open.
	Close(ctx context.Context, exec *store.Execution, sb sandbox.Sandbox) error
}

// DiffStater is implemented by Workspaces that can summarise what a run
// changed in its workspace, for the closing message.
type DiffStater interface {
	DiffStat(ctx context.Context, exec *store.Execution, sb sandbox.Sandbox) (string, error)
}

// ForgeFunc returns where a run publishes its work, or nil when it has no
// remote (a plain terminal run).
type ForgeFunc func(ctx context.Context, p *store.Project, exec *store.Execution) (Forge, error)
