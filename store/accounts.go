package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"
)

// Account audit actions.
const (
	AccountLinked   = "linked"   // with a link code
	AccountMatched  = "matched"  // by the chat account's confirmed email
	AccountUnlinked = "unlinked" // on the settings page
)

// schemaAccounts is created by migration 20261202000201.
var schemaAccounts = []table{
	{
		name: "account_audit",
		cols: []column{
			col("id", tID), col("user_id", tBigint), col("provider", tStr), col("external_id", tStr),
			col("action", tStr), col("actor", tStr), col("at", tTime),
		},
		indexes: [][]string{{"user_id", "at"}, {"provider", "external_id"}},
	},
}

// AccountAudit is one change to which chat accounts act as a hero user.
type AccountAudit struct {
	bun.BaseModel `bun:"table:account_audit"`

	ID         int64     `bun:"id,pk,autoincrement"`
	UserID     int64     `bun:"user_id,notnull"`
	Provider   string    `bun:"provider,notnull"`
	ExternalID string    `bun:"external_id,notnull"`
	Action     string    `bun:"action,notnull"`
	Actor      string    `bun:"actor,notnull"` // who did it: "web:<email>", the chat identity, …
	At         time.Time `bun:"at,notnull"`
}

// AuditAccount records a link or an email match of a chat account.
func (db *DB) AuditAccount(ctx context.Context, userID int64, provider, externalID, action, actor string) error {
	a := &AccountAudit{UserID: userID, Provider: provider, ExternalID: externalID, Action: action, Actor: actor, At: now()}
	_, err := db.bun.NewInsert().Model(a).Exec(ctx)
	return wrap(err, "audit %s %s:%s", action, provider, externalID)
}

// UnlinkIdentity removes a chat account from the user it acts as, and
// audits it; ErrNotFound when that account is not linked to userID (a
// person can unlink only their own accounts). After it, the account is
// not matched by email again (see IdentityUnlinked): only a link code
// links it again.
func (db *DB) UnlinkIdentity(ctx context.Context, userID int64, provider, externalID, actor string) error {
	if provider == "" || externalID == "" {
		return errors.New("unlink identity: provider and external id are required")
	}
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*Identity)(nil)).
			Where("provider = ? AND external_id = ? AND user_id = ?", provider, externalID, userID).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = tx.NewInsert().Model(&AccountAudit{UserID: userID, Provider: provider, ExternalID: externalID,
			Action: AccountUnlinked, Actor: actor, At: now()}).Exec(ctx)
		return err
	})
	return wrap(err, "unlink %s:%s from user %d", provider, externalID, userID)
}

// IdentityUnlinked says whether a chat account's latest audited change
// is an unlink: such an account is not matched by email again.
func (db *DB) IdentityUnlinked(ctx context.Context, provider, externalID string) (bool, error) {
	var last AccountAudit
	err := db.bun.NewSelect().Model(&last).Where("provider = ? AND external_id = ?", provider, externalID).
		OrderExpr("id DESC").Limit(1).Scan(ctx)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return false, wrap(err, "account audit of %s:%s", provider, externalID)
	}
	return last.Action == AccountUnlinked, nil
}

// ListAccountAudit returns the changes to a user's chat accounts, newest
// first, at most limit.
func (db *DB) ListAccountAudit(ctx context.Context, userID int64, limit int) ([]AccountAudit, error) {
	var out []AccountAudit
	err := db.bun.NewSelect().Model(&out).Where("user_id = ?", userID).OrderExpr("id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, wrap(err, "account audit of user %d", userID)
	}
	return out, nil
}
