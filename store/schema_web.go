package store

import (
	"time"

	"github.com/uptrace/bun"
)

// Tables of the settings page (migration 20260401000001): browser
// sessions, one-time admin login tokens, OAuth login attempts and the
// secret audit log. Tokens of every kind are stored only as SHA-256
// hashes, so a copy of the database does not log anyone in.
var schemaWeb = []table{
	{
		name: "web_sessions",
		cols: []column{
			col("id_hash", tStr), col("user_id", tBigint), col("csrf_token", tStr),
			col("created_at", tTime), col("last_seen_at", tTime), col("user_agent", tStr),
		},
		pk:      []string{"id_hash"},
		indexes: [][]string{{"user_id"}},
		fks:     []foreignKey{{"user_id", "users", "id"}},
	},
	{
		name: "web_login_tokens",
		cols: []column{
			col("token_hash", tStr), col("user_id", tBigint), col("created_at", tTime),
			col("expires_at", tTime), ncol("used_at", tTime),
		},
		pk:  []string{"token_hash"},
		fks: []foreignKey{{"user_id", "users", "id"}},
	},
	{
		name: "web_oauth_states",
		cols: []column{
			col("state_hash", tStr), col("provider", tStr), col("binding_hash", tStr),
			col("verifier", tStr), col("nonce", tStr), col("next", tText),
			col("created_at", tTime), col("expires_at", tTime),
		},
		pk:      []string{"state_hash"},
		indexes: [][]string{{"expires_at"}},
	},
	{
		name: "secret_audit",
		cols: []column{
			col("id", tID), col("project_id", tBigint), col("secret_name", tStr),
			col("action", tStr), col("actor", tStr), col("at", tTime),
		},
		indexes: [][]string{{"project_id", "at"}},
	},
}

// WebSession is a logged-in browser. IDHash is the SHA-256 (hex) of the
// cookie value; the cookie value itself is never stored.
type WebSession struct {
	bun.BaseModel `bun:"table:web_sessions"`

	IDHash     string    `bun:"id_hash,pk"`
	UserID     int64     `bun:"user_id,notnull"`
	CSRFToken  string    `bun:"csrf_token,notnull"`
	CreatedAt  time.Time `bun:"created_at,notnull"`
	LastSeenAt time.Time `bun:"last_seen_at,notnull"`
	UserAgent  string    `bun:"user_agent,notnull"`
}

// LoginToken is a one-time login link (the first-run admin link).
type LoginToken struct {
	bun.BaseModel `bun:"table:web_login_tokens"`

	TokenHash string     `bun:"token_hash,pk"`
	UserID    int64      `bun:"user_id,notnull"`
	CreatedAt time.Time  `bun:"created_at,notnull"`
	ExpiresAt time.Time  `bun:"expires_at,notnull"`
	UsedAt    *time.Time `bun:"used_at"`
	// Issuer names the replica that printed an admin login link
	// (migration 20261203000101); "" for chat-account link codes and
	// links from before it.
	Issuer string `bun:"issuer,notnull"`
}

// OAuthState is one login attempt in flight: the state sent to the
// provider (hashed), the hash of the browser cookie it is bound to, the
// PKCE verifier, the OIDC nonce and where to go afterwards.
type OAuthState struct {
	bun.BaseModel `bun:"table:web_oauth_states"`

	StateHash   string    `bun:"state_hash,pk"`
	Provider    string    `bun:"provider,notnull"`
	BindingHash string    `bun:"binding_hash,notnull"`
	Verifier    string    `bun:"verifier,notnull"`
	Nonce       string    `bun:"nonce,notnull"`
	Next        string    `bun:"next,type:text,notnull"`
	CreatedAt   time.Time `bun:"created_at,notnull"`
	ExpiresAt   time.Time `bun:"expires_at,notnull"`
}

// Secret audit actions.
const (
	SecretAdded    = "added"
	SecretReplaced = "replaced"
	SecretDeleted  = "deleted"
)

// SecretAudit is one change to a project's secrets: which name, what
// happened, who did it and when. It never holds a value.
type SecretAudit struct {
	bun.BaseModel `bun:"table:secret_audit"`

	ID         int64     `bun:"id,pk,autoincrement"`
	ProjectID  int64     `bun:"project_id,notnull"`
	SecretName string    `bun:"secret_name,notnull"`
	Action     string    `bun:"action,notnull"`
	Actor      string    `bun:"actor,notnull"`
	At         time.Time `bun:"at,notnull"`
}
