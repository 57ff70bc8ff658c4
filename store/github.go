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
//
// Deprecated: a mark made before a request that then fails loses the
// delivery; use QueueRedelivery, ClaimRedeliveries and
// SetRedeliveryStatus, which retry until GitHub accepts.
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

// QueueRedelivery records a failed delivery to ask GitHub for again
// (status pending, due at r.NextAttemptAt, or now when zero). It returns false when the delivery was
// already queued (by this or another replica): it is never asked twice
// concurrently and never forgotten.
func (db *DB) QueueRedelivery(ctx context.Context, r *GitHubRedeliveryRequest) (bool, error) {
	t := now()
	if r.NextAttemptAt.IsZero() {
		r.NextAttemptAt = t
	}
	r.NextAttemptAt = r.NextAttemptAt.UTC().Truncate(time.Microsecond)
	r.Status, r.Attempts, r.CreatedAt, r.UpdatedAt = RedeliveryPending, 0, t, t
	if _, err := db.bun.NewInsert().Model(r).Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return false, nil
		}
		return false, wrap(err, "queue redelivery of %s", r.GUID)
	}
	return true, nil
}

// ClaimRedeliveries returns up to limit pending requests that are due at
// t, each claimed for this caller: its attempt count is raised and its
// next attempt moved to retryAt(attempts), so another replica (or this
// one after a crash) asks again only after that.
func (db *DB) ClaimRedeliveries(ctx context.Context, t time.Time, limit int, retryAt func(attempts int) time.Time) ([]GitHubRedeliveryRequest, error) {
	var due []GitHubRedeliveryRequest
	err := db.bun.NewSelect().Model(&due).
		Where("status = ? AND next_attempt_at <= ?", RedeliveryPending, t.UTC()).
		Order("next_attempt_at").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, wrap(err, "list due redeliveries")
	}
	var out []GitHubRedeliveryRequest
	for _, r := range due {
		next := retryAt(r.Attempts + 1).UTC().Truncate(time.Microsecond)
		res, err := db.bun.NewUpdate().Model((*GitHubRedeliveryRequest)(nil)).
			Set("attempts = attempts + 1").Set("next_attempt_at = ?", next).Set("updated_at = ?", now()).
			Where("guid = ? AND status = ? AND attempts = ?", r.GUID, RedeliveryPending, r.Attempts).
			Exec(ctx)
		if err != nil {
			return out, wrap(err, "claim redelivery of %s", r.GUID)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			continue // another replica took it
		}
		r.Attempts++
		r.NextAttemptAt = next
		out = append(out, r)
	}
	return out, nil
}

// SetRedeliveryStatus records the outcome of a request: status is one of
// the Redelivery* states, lastError what GitHub (or the network) said.
func (db *DB) SetRedeliveryStatus(ctx context.Context, guid, status, lastError string) error {
	_, err := db.bun.NewUpdate().Model((*GitHubRedeliveryRequest)(nil)).
		Set("status = ?", status).Set("last_error = ?", lastError).Set("updated_at = ?", now()).
		Where("guid = ?", guid).Exec(ctx)
	return wrap(err, "record redelivery of %s", guid)
}

// RedeliveryRequest returns the request for guid; ErrNotFound if none.
func (db *DB) RedeliveryRequest(ctx context.Context, guid string) (*GitHubRedeliveryRequest, error) {
	r := new(GitHubRedeliveryRequest)
	if err := db.bun.NewSelect().Model(r).Where("guid = ?", guid).Scan(ctx); err != nil {
		return nil, wrap(err, "redelivery request %s", guid)
	}
	return r, nil
}

// RearmRedelivery puts a request GitHub accepted back in the queue when
// the redelivery itself failed too (hero was still down): deliveryID is
// that newer failed attempt, made at attemptAt. Only a request marked
// requested before attemptAt is re-armed, so each failed attempt re-arms
// it once; the attempt count keeps growing, so it ends in gave_up.
func (db *DB) RearmRedelivery(ctx context.Context, guid string, deliveryID int64, attemptAt time.Time) (bool, error) {
	res, err := db.bun.NewUpdate().Model((*GitHubRedeliveryRequest)(nil)).
		Set("status = ?", RedeliveryPending).Set("delivery_id = ?", deliveryID).
		Set("next_attempt_at = ?", now()).Set("updated_at = ?", now()).
		Where("guid = ? AND status = ? AND updated_at < ?", guid, RedeliveryRequested, attemptAt.UTC()).
		Exec(ctx)
	if err != nil {
		return false, wrap(err, "re-arm redelivery of %s", guid)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
