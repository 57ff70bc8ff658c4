package store

// The bun tags below drive queries. The tables themselves are created by
// the versioned migrations in migrate.go (hand-written per dialect), so a
// new field needs a new migration there too.

import (
	"time"

	"github.com/uptrace/bun"
)

// Execution statuses. A run is never left "running" after a restart: it is
// resumed or closed as "interrupted".
const (
	StatusQueued      = "queued"
	StatusRunning     = "running"
	StatusWaiting     = "waiting" // paused on a confirmation
	StatusSucceeded   = "succeeded"
	StatusFailed      = "failed"
	StatusCancelled   = "cancelled"
	StatusInterrupted = "interrupted"
)

// Final reports whether a run status is an end: the one notion of "final"
// of the engine, every surface and the settings page.
func Final(status string) bool {
	switch status {
	case StatusSucceeded, StatusFailed, StatusCancelled, StatusInterrupted:
		return true
	}
	return false
}

// Confirmation statuses.
const (
	ConfirmPending  = "pending"
	ConfirmApproved = "approved"
	ConfirmDenied   = "denied"
	ConfirmExpired  = "expired"
)

// Delivery statuses in the inbox.
const (
	DeliveryPending = "pending"
	DeliveryDone    = "done"
	DeliveryFailed  = "failed" // parked after too many attempts
)

// User is a person known to hero (logged in on the web page, or mapped
// from a chat identity).
type User struct {
	bun.BaseModel `bun:"table:users"`

	ID        int64     `bun:"id,pk,autoincrement"`
	Email     string    `bun:"email,notnull,unique"`
	Name      string    `bun:"name,notnull"`
	IsAdmin   bool      `bun:"is_admin,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// SandboxConfig is how a project's sandboxes are made.
type SandboxConfig struct {
	Provider       string `bun:"provider,notnull"` // "local" or "e2b"; "" = server default
	Template       string `bun:"template,notnull"`
	NetworkAllowed bool   `bun:"network_allowed,notnull"`
	CPUSeconds     int    `bun:"cpu_seconds,notnull"`
	MemoryMB       int    `bun:"memory_mb,notnull"`
	MaxProcesses   int    `bun:"max_processes,notnull"`
	DiskMB         int    `bun:"disk_mb,notnull"` // workspace and HOME together; 0 = server default
	// InstallSecrets gives dependency installs (which have network when
	// NetworkAllowed) the project's secrets; off by default.
	InstallSecrets bool `bun:"install_secrets,notnull"`
	IdleTimeoutS   int  `bun:"idle_timeout_s,notnull"`
}

// Governance bounds what one run, and one project per day, may spend.
// Zero values mean the server defaults.
type Governance struct {
	BudgetPerRunUSD      float64 `bun:"budget_per_run_usd,notnull"`
	BudgetPerDayUSD      float64 `bun:"budget_per_day_usd,notnull"`
	MaxSteps             int     `bun:"max_steps,notnull"`
	WallClockS           int     `bun:"wall_clock_s,notnull"`
	UncertaintyThreshold float64 `bun:"uncertainty_threshold,notnull"`
	ConfirmationTTLS     int     `bun:"confirmation_ttl_s,notnull"`
}

// PolicyRule is one confirmation-policy rule: a tool (or "*"), an optional
// regular expression matched against the command or path, and the action
// "allow", "confirm" or "deny". Project rules are checked before defaults.
type PolicyRule struct {
	Tool    string `json:"tool"`
	Pattern string `json:"pattern,omitempty"`
	Action  string `json:"action"`
}

// Project is a repository hero works on, with its sandbox and governance
// settings.
type Project struct {
	bun.BaseModel `bun:"table:projects"`

	ID            int64         `bun:"id,pk,autoincrement"`
	Name          string        `bun:"name,notnull,unique"`
	RepoURL       string        `bun:"repo_url,notnull"`
	DefaultBranch string        `bun:"default_branch,notnull"`
	Sandbox       SandboxConfig `bun:"embed:sandbox_"`
	Governance    Governance    `bun:"embed:gov_"`
	PolicyRules   []PolicyRule  `bun:"policy_rules,type:text,notnull"`
	// IssuesBecomeCards: every issue a trusted author opens on the
	// project's GitHub repository becomes a card in the board's first
	// column, without the trigger label.
	IssuesBecomeCards bool      `bun:"issues_become_cards,notnull"`
	CreatedAt         time.Time `bun:"created_at,notnull"`
	UpdatedAt         time.Time `bun:"updated_at,notnull"`
}

// ProjectMember gives a user a role in a project.
type ProjectMember struct {
	bun.BaseModel `bun:"table:project_members"`

	ProjectID int64     `bun:"project_id,pk"`
	UserID    int64     `bun:"user_id,pk"`
	Role      Role      `bun:"role,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// Identity maps a chat or forge account ("slack:T1/U2", "github:octocat",
// "local:alice") to a hero user.
type Identity struct {
	bun.BaseModel `bun:"table:identities"`

	Provider   string    `bun:"provider,pk"`
	ExternalID string    `bun:"external_id,pk"`
	UserID     int64     `bun:"user_id,notnull"`
	CreatedAt  time.Time `bun:"created_at,notnull"`
}

// ProjectSecret is one encrypted secret. The plaintext never touches this
// struct; see the vault.
type ProjectSecret struct {
	bun.BaseModel `bun:"table:project_secrets"`

	ID         int64     `bun:"id,pk,autoincrement"`
	ProjectID  int64     `bun:"project_id,notnull,unique:project_secret_name"`
	Name       string    `bun:"name,notnull,unique:project_secret_name"`
	Ciphertext []byte    `bun:"ciphertext,notnull"`
	KeyVersion int       `bun:"key_version,notnull"`
	UpdatedBy  string    `bun:"updated_by,notnull"`
	CreatedAt  time.Time `bun:"created_at,notnull"`
	UpdatedAt  time.Time `bun:"updated_at,notnull"`
}

// Execution is one agent run.
type Execution struct {
	bun.BaseModel `bun:"table:agent_executions"`

	ID        string `bun:"id,pk"` // short, typed by people: "r7f3a2c9"
	ProjectID int64  `bun:"project_id,notnull"`
	Status    string `bun:"status,notnull"`
	// Surface is "terminal", "slack", "discord" or "github"; ThreadRef is
	// the surface's own opaque reference to the conversation.
	Surface   string `bun:"surface,notnull"`
	ThreadRef string `bun:"thread_ref,type:text,notnull"`
	// Requester is the platform identity that started the run
	// ("slack:T1/U2"); RequesterUserID the hero user it maps to, if any.
	Requester       string  `bun:"requester,notnull"`
	RequesterUserID int64   `bun:"requester_user_id,notnull"`
	Task            string  `bun:"task,type:text,notnull"`
	Model           string  `bun:"model,notnull"`
	TokensIn        int64   `bun:"tokens_in,notnull"`
	TokensOut       int64   `bun:"tokens_out,notnull"`
	CostUSD         float64 `bun:"cost_usd,notnull"`
	CostKnown       bool    `bun:"cost_known,notnull"` // false: model not in the price table
	Steps           int     `bun:"steps,notnull"`
	// Extra limits granted by people when a limit paused the run.
	ExtraBudgetUSD float64 `bun:"extra_budget_usd,notnull"`
	ExtraSteps     int     `bun:"extra_steps,notnull"`
	ExtraWallS     int     `bun:"extra_wall_s,notnull"`
	// Limits set for this run alone (`hero run --max-steps/--budget/
	// --timeout`), over the project's; 0 keeps the project's.
	LimitSteps     int     `bun:"limit_steps,notnull"`
	LimitBudgetUSD float64 `bun:"limit_budget_usd,notnull"`
	LimitWallS     int     `bun:"limit_wall_s,notnull"`
	// Conversation is the redacted model conversation as JSON, saved after
	// every step so a restart can resume the run.
	Conversation string `bun:"conversation,type:mediumtext,notnull"`
	Summary      string `bun:"summary,type:text,notnull"`
	Error        string `bun:"error,type:text,notnull"`
	// Owner and LeaseUntil say which replica drives the run; another
	// replica may take it over once the lease has lapsed.
	Owner      string     `bun:"owner,notnull"`
	LeaseUntil time.Time  `bun:"lease_until,notnull"`
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	StartedAt  *time.Time `bun:"started_at"`
	FinishedAt *time.Time `bun:"finished_at"`
	UpdatedAt  time.Time  `bun:"updated_at,notnull"`
}

// Step kinds.
const (
	StepModel        = "model"        // one model call
	StepTool         = "tool"         // one tool call and its result
	StepConfirmation = "confirmation" // a confirmation asked or decided
	StepMessage      = "message"      // a steering message from a person
	StepLimit        = "limit"        // a governance limit was hit
	StepError        = "error"
)

// Step is one persisted step of an execution. Arguments and Output are
// redacted before they are stored; Output is truncated.
type Step struct {
	bun.BaseModel `bun:"table:execution_steps"`

	ID          int64     `bun:"id,pk,autoincrement"`
	ExecutionID string    `bun:"execution_id,notnull,unique:execution_step_ordinal"`
	Ordinal     int       `bun:"ordinal,notnull,unique:execution_step_ordinal"`
	Kind        string    `bun:"kind,notnull"`
	Tool        string    `bun:"tool,notnull"`
	Arguments   string    `bun:"arguments,type:text,notnull"`
	Output      string    `bun:"output,type:text,notnull"`
	IsError     bool      `bun:"is_error,notnull"`
	DurationMS  int64     `bun:"duration_ms,notnull"`
	TokensIn    int64     `bun:"tokens_in,notnull"`
	TokensOut   int64     `bun:"tokens_out,notnull"`
	CostUSD     float64   `bun:"cost_usd,notnull"`
	CreatedAt   time.Time `bun:"created_at,notnull"`
}

// Confirmation kinds.
const (
	ConfirmKindTool        = "tool"        // a tool call the policy wants confirmed
	ConfirmKindUncertainty = "uncertainty" // the model was not confident enough
	ConfirmKindLimit       = "limit"       // a budget/step/time limit: extend or stop
	ConfirmKindQuestion    = "question"    // ask_human: Answer holds the reply
)

// Confirmation is a decision a person must take before the run goes on.
// Approval is bound to ActionHash, the hash of the exact tool call.
type Confirmation struct {
	bun.BaseModel `bun:"table:confirmations"`

	ID          string     `bun:"id,pk"` // short, typed by people: "c4k9x2"
	ExecutionID string     `bun:"execution_id,notnull"`
	ProjectID   int64      `bun:"project_id,notnull"`
	Kind        string     `bun:"kind,notnull"`
	Tool        string     `bun:"tool,notnull"`
	Action      string     `bun:"action,type:text,notnull"` // what will happen, exactly (redacted)
	ActionHash  string     `bun:"action_hash,notnull"`
	Risk        string     `bun:"risk,notnull"` // low, medium, high
	Reason      string     `bun:"reason,type:text,notnull"`
	Status      string     `bun:"status,notnull"`
	Answer      string     `bun:"answer,type:text,notnull"`
	DecidedBy   string     `bun:"decided_by,notnull"`
	DecidedAt   *time.Time `bun:"decided_at"`
	ExpiresAt   time.Time  `bun:"expires_at,notnull"`
	// SurfaceRef is the surface's reference to the message that shows the
	// buttons, so it can be updated when the confirmation is decided.
	SurfaceRef string    `bun:"surface_ref,type:text,notnull"`
	CreatedAt  time.Time `bun:"created_at,notnull"`
}

// Input is a message a person added to a running execution (steering, or
// the answer to a question); the engine hands it to the model before its
// next call and marks it consumed.
type Input struct {
	bun.BaseModel `bun:"table:execution_inputs"`

	ID          int64      `bun:"id,pk,autoincrement"`
	ExecutionID string     `bun:"execution_id,notnull"`
	Author      string     `bun:"author,notnull"`
	Body        string     `bun:"body,type:text,notnull"`
	CreatedAt   time.Time  `bun:"created_at,notnull"`
	ConsumedAt  *time.Time `bun:"consumed_at"`
	// DedupeKey, when set, is unique per execution: the platform delivery
	// the input came from, so a redelivered message is not added twice.
	DedupeKey *string `bun:"dedupe_key"`
}

// Delivery is one webhook or event from a platform, persisted before the
// platform gets its acknowledgement and deduplicated by (Source,
// DeliveryID).
type Delivery struct {
	bun.BaseModel `bun:"table:deliveries"`

	ID            int64      `bun:"id,pk,autoincrement"`
	Source        string     `bun:"source,notnull,unique:delivery_source_id"`      // "github", "slack", "discord"
	DeliveryID    string     `bun:"delivery_id,notnull,unique:delivery_source_id"` // the platform's id
	Event         string     `bun:"event,notnull"`
	Payload       []byte     `bun:"payload,type:longblob,notnull"`
	Status        string     `bun:"status,notnull"`
	Attempts      int        `bun:"attempts,notnull"`
	LastError     string     `bun:"last_error,type:text,notnull"`
	ReceivedAt    time.Time  `bun:"received_at,notnull"`
	NextAttemptAt time.Time  `bun:"next_attempt_at,notnull"`
	ClaimedBy     string     `bun:"claimed_by,notnull"`
	ClaimedUntil  *time.Time `bun:"claimed_until"`
	ProcessedAt   *time.Time `bun:"processed_at"`
}

// SandboxLease records a live sandbox so a restarted process can find and
// remove the ones it no longer drives.
type SandboxLease struct {
	bun.BaseModel `bun:"table:sandbox_leases"`

	SandboxID   string    `bun:"sandbox_id,pk"`
	Provider    string    `bun:"provider,notnull"`
	Template    string    `bun:"template,notnull"`
	ProjectID   int64     `bun:"project_id,notnull"`
	ExecutionID string    `bun:"execution_id,notnull"` // "" while pooled
	Owner       string    `bun:"owner,notnull"`        // the replica that created it
	State       string    `bun:"state,notnull"`        // "pooled" or "leased"
	CreatedAt   time.Time `bun:"created_at,notnull"`
	LastUsedAt  time.Time `bun:"last_used_at,notnull"`
	// Host and Process ("bootid/pid/start") identify the creating process,
	// so the reaper on that host can tell whether it is gone.
	Host        string     `bun:"host,notnull"`
	Process     string     `bun:"process,notnull"`
	HeartbeatAt *time.Time `bun:"heartbeat_at"` // the owner's last sign of life
}
