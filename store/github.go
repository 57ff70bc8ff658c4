package store

import (
	"context"
	"fmt"
	"time"
)

// OAuthToken is a decrypted GitHub OAuth token.
type OAuthToken struct {
	AccessToken  string
	RefreshToken string
	Expiry       time.Time // zero: never expires
}

// oauthSealID is the vault's "project" for tokens that belong to no
// project; the name binding (below) keeps them apart from secrets.
const oauthSealID = 0

func oauthSealName(account, which string) string { return "github-oauth:" + account + ":" + which }

// SaveGitHubToken stores (or replaces) the OAuth token of a GitHub account,
// encrypted. It is called after the web login and after every refresh, so
// a rotated refresh token is never lost.
func (db *DB) SaveGitHubToken(ctx context.Context, account string, tok OAuthToken) error {
	if err := db.needKeyring("save github token"); err != nil {
		return err
	}
	if account == "" || len(account) > 255 {
		return fmt.Errorf("save github token: account must be 1 to 255 bytes, got %d", len(account))
	}
	access, err := db.keyring.Seal(oauthSealID, oauthSealName(account, "access"), []byte(tok.AccessToken))
	if err != nil {
		return fmt.Errorf("save github token for %s: %w", account, err)
	}
	refresh, err := db.keyring.Seal(oauthSealID, oauthSealName(account, "refresh"), []byte(tok.RefreshToken))
	if err != nil {
		return fmt.Errorf("save github token for %s: %w", account, err)
	}
	row := &GitHubOAuthToken{Account: account, AccessToken: access, RefreshToken: refresh,
		Expiry: tok.Expiry.UTC().Truncate(time.Microsecond), UpdatedAt: now()}
	err = db.upsert(ctx, db.bun, row, []string{"account"}, []string{"access_token", "refresh_token", "expiry", "updated_at"})
	return wrap(err, "save github token for %s", account)
}

// GitHubToken returns the decrypted OAuth token of account; ErrNotFound if
// none was saved.
func (db *DB) GitHubToken(ctx context.Context, account string) (OAuthToken, error) {
	if err := db.needKeyring("read github token"); err != nil {
		return OAuthToken{}, err
	}
	row := new(GitHubOAuthToken)
	if err := db.bun.NewSelect().Model(row).Where("account = ?", account).Scan(ctx); err != nil {
		return OAuthToken{}, wrap(err, "github token for %s", account)
	}
	access, err := db.keyring.Open(oauthSealID, oauthSealName(account, "access"), row.AccessToken)
	if err != nil {
		return OAuthToken{}, fmt.Errorf("github token for %s: %w", account, err)
	}
	refresh, err := db.keyring.Open(oauthSealID, oauthSealName(account, "refresh"), row.RefreshToken)
	if err != nil {
		return OAuthToken{}, fmt.Errorf("github token for %s: %w", account, err)
	}
	return OAuthToken{AccessToken: string(access), RefreshToken: string(refresh), Expiry: row.Expiry}, nil
}

// SetGitHubProgress records the progress comment of a run.
func (db *DB) SetGitHubProgress(ctx context.Context, executionID string, commentID int64) error {
	row := &GitHubProgress{ExecutionID: executionID, CommentID: commentID, UpdatedAt: now()}
	err := db.upsert(ctx, db.bun, row, []string{"execution_id"}, []string{"comment_id", "updated_at"})
	return wrap(err, "record progress comment of run %s", executionID)
}

// GitHubProgressComment returns the progress comment id of a run;
// ErrNotFound if it has none yet.
func (db *DB) GitHubProgressComment(ctx context.Context, executionID string) (int64, error) {
	row := new(GitHubProgress)
	if err := db.bun.NewSelect().Model(row).Where("execution_id = ?", executionID).Scan(ctx); err != nil {
		return 0, wrap(err, "progress comment of run %s", executionID)
	}
	return row.CommentID, nil
}

// MarkRedelivery records that hero asked for delivery guid again. It
// returns false when it had already been asked (by this or another
// replica), in which case the caller must not ask again.
func (db *DB) MarkRedelivery(ctx context.Context, guid string) (bool, error) {
	_, err := db.bun.NewInsert().Model(&GitHubRedelivery{GUID: guid, RequestedAt: now()}).Exec(ctx)
	if err != nil {
		if isUniqueViolation(err) {
			return false, nil
		}
		return false, wrap(err, "record redelivery of %s", guid)
	}
	return true, nil
}

// DeliveryReceived reports whether the inbox holds a delivery with this
// platform id.
func (db *DB) DeliveryReceived(ctx context.Context, source, deliveryID string) (bool, error) {
	n, err := db.bun.NewSelect().Model((*Delivery)(nil)).
		Where("source = ? AND delivery_id = ?", source, deliveryID).Count(ctx)
	if err != nil {
		return false, wrap(err, "look up %s delivery %s", source, deliveryID)
	}
	return n > 0, nil
}
