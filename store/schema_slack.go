package store

import (
	"time"

	"github.com/uptrace/bun"
)

// Tables of the chat surfaces (migration 20260301000001): which project a
// chat channel works on, which run a chat thread belongs to, and the bot
// tokens of Slack workspaces installed through "Add to Slack". They are
// keyed by surface ("slack", "discord") so every chat adapter and the
// settings page share them.
var schemaSlack = []table{
	{
		name: "chat_bindings",
		cols: []column{
			col("surface", tStr), col("channel_id", tStr), col("project_id", tBigint),
			col("bound_by", tStr), col("created_at", tTime), col("updated_at", tTime),
		},
		pk:      []string{"surface", "channel_id"},
		indexes: [][]string{{"project_id"}},
		fks:     []foreignKey{{"project_id", "projects", "id"}},
	},
	{
		name: "chat_threads",
		cols: []column{
			col("surface", tStr), col("thread_ref", tStr), col("execution_id", tStr),
			col("created_at", tTime),
		},
		pk:      []string{"surface", "thread_ref"},
		indexes: [][]string{{"execution_id"}},
		fks:     []foreignKey{{"execution_id", "agent_executions", "id"}},
	},
	{
		name: "slack_teams",
		cols: []column{
			col("team_id", tStr), col("team_name", tStr), col("bot_user_id", tStr),
			col("token_ciphertext", tBlob), col("key_version", tInt), col("installed_by", tStr),
			col("created_at", tTime), col("updated_at", tTime),
		},
		pk: []string{"team_id"},
	},
}

// ChannelBinding says which project a chat channel works on: runs started
// there without naming a project run in it.
type ChannelBinding struct {
	bun.BaseModel `bun:"table:chat_bindings"`

	Surface   string    `bun:"surface,pk"`    // "slack", "discord"
	ChannelID string    `bun:"channel_id,pk"` // the surface's channel id ("T1/C2" for Slack)
	ProjectID int64     `bun:"project_id,notnull"`
	BoundBy   string    `bun:"bound_by,notnull"` // platform identity ("slack:T1/U2")
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

// ChatThread links a chat thread to the run it started, so replies and
// mentions in the thread reach that run.
type ChatThread struct {
	bun.BaseModel `bun:"table:chat_threads"`

	Surface     string    `bun:"surface,pk"`
	ThreadRef   string    `bun:"thread_ref,pk"`
	ExecutionID string    `bun:"execution_id,notnull"`
	CreatedAt   time.Time `bun:"created_at,notnull"`
}

// slackTeam is one Slack workspace's installation; the bot token is sealed
// with the vault and never leaves this package in clear except through
// SlackTeamToken.
type slackTeam struct {
	bun.BaseModel `bun:"table:slack_teams"`

	TeamID          string    `bun:"team_id,pk"`
	TeamName        string    `bun:"team_name,notnull"`
	BotUserID       string    `bun:"bot_user_id,notnull"`
	TokenCiphertext []byte    `bun:"token_ciphertext,notnull"`
	KeyVersion      int       `bun:"key_version,notnull"`
	InstalledBy     string    `bun:"installed_by,notnull"`
	ApprovedBy      string    `bun:"approved_by,notnull"` // added by migration 20261202000201
	CreatedAt       time.Time `bun:"created_at,notnull"`
	UpdatedAt       time.Time `bun:"updated_at,notnull"`
}
