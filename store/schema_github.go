package store

import (
	"time"

	"github.com/uptrace/bun"
)

// GitHubOAuthToken is a user OAuth token for the GitHub API. Both tokens
// are sealed with the vault (bound to the account name), so a database dump
// reveals neither.
type GitHubOAuthToken struct {
	bun.BaseModel `bun:"table:github_oauth_tokens"`

	Account      string    `bun:"account,pk"` // the GitHub login the token acts as
	AccessToken  []byte    `bun:"access_token,notnull"`
	RefreshToken []byte    `bun:"refresh_token,notnull"`
	Expiry       time.Time `bun:"expiry,notnull"` // zero: never expires
	UpdatedAt    time.Time `bun:"updated_at,notnull"`
}

// GitHubProgress remembers the progress comment of a run, so the same
// comment keeps being edited after a restart or on another replica.
type GitHubProgress struct {
	bun.BaseModel `bun:"table:github_progress"`

	ExecutionID string    `bun:"execution_id,pk"`
	CommentID   int64     `bun:"comment_id,notnull"`
	UpdatedAt   time.Time `bun:"updated_at,notnull"`
}

// GitHubRedelivery records a failed webhook delivery hero asked GitHub to
// send again, so it is asked once.
type GitHubRedelivery struct {
	bun.BaseModel `bun:"table:github_redeliveries"`

	GUID        string    `bun:"guid,pk"`
	RequestedAt time.Time `bun:"requested_at,notnull"`
}

// schemaGitHub is created by migration 20260201000001.
var schemaGitHub = []table{
	{
		name: "github_oauth_tokens",
		cols: []column{
			col("account", tStr), col("access_token", tBlob), col("refresh_token", tBlob),
			col("expiry", tTime), col("updated_at", tTime),
		},
		pk: []string{"account"},
	},
	{
		name: "github_progress",
		cols: []column{col("execution_id", tStr), col("comment_id", tBigint), col("updated_at", tTime)},
		pk:   []string{"execution_id"},
		fks:  []foreignKey{{"execution_id", "agent_executions", "id"}},
	},
	{
		name: "github_redeliveries",
		cols: []column{col("guid", tStr), col("requested_at", tTime)},
		pk:   []string{"guid"},
	},
}

// Redelivery request states.
const (
	RedeliveryPending   = "pending"   // to ask GitHub (again, after a failed request)
	RedeliveryRequested = "requested" // GitHub accepted the request
	RedeliveryGaveUp    = "gave_up"   // asked too often without success; LastError says why
)

// GitHubRedeliveryRequest is a failed webhook delivery hero wants GitHub
// to send again. It is recorded before the request, and only marked
// requested once GitHub accepted it, so a request that fails (or a crash
// in between) is retried later, never lost; replicas claim a row before
// asking, so it is asked once at a time.
type GitHubRedeliveryRequest struct {
	bun.BaseModel `bun:"table:github_redelivery_requests"`

	GUID string `bun:"guid,pk"` // X-GitHub-Delivery of the failed delivery
	// Hook names the delivery log: "app", or "repo:<owner>/<name>:<hook id>".
	Hook          string    `bun:"hook,notnull"`
	DeliveryID    int64     `bun:"delivery_id,notnull"` // id of the attempt in that log
	Event         string    `bun:"event,notnull"`
	Status        string    `bun:"status,notnull"`
	Attempts      int       `bun:"attempts,notnull"`
	LastError     string    `bun:"last_error,notnull"`
	NextAttemptAt time.Time `bun:"next_attempt_at,notnull"`
	CreatedAt     time.Time `bun:"created_at,notnull"`
	UpdatedAt     time.Time `bun:"updated_at,notnull"`
}

// schemaGitHubRedelivery is created by migration 20260201000002.
var schemaGitHubRedelivery = []table{
	{
		name: "github_redelivery_requests",
		cols: []column{
			col("guid", tStr), col("hook", tStr), col("delivery_id", tBigint), col("event", tStr),
			col("status", tStr), col("attempts", tInt), col("last_error", tText),
			col("next_attempt_at", tTime), col("created_at", tTime), col("updated_at", tTime),
		},
		pk:      []string{"guid"},
		indexes: [][]string{{"status", "next_attempt_at"}},
	},
}
