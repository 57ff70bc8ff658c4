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
