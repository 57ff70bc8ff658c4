package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CreateConfirmation inserts c. It generates a short id ("c" + 6 base32
// characters) when c.ID is empty, sets Status to pending when empty, and
// sets CreatedAt. ExpiresAt is required: a confirmation nobody answers must
// end. ErrConflict if a given ID is taken.
func (db *DB) CreateConfirmation(ctx context.Context, c *Confirmation) error {
	if c.ExpiresAt.IsZero() {
		return errors.New("create confirmation: ExpiresAt is not set")
	}
	if c.Status == "" {
		c.Status = ConfirmPending
	}
	c.ExpiresAt = c.ExpiresAt.UTC().Truncate(time.Microsecond)
	c.CreatedAt = now()
	if err := db.insertWithID(ctx, c, &c.ID, "c", 6); err != nil {
		return wrap(err, "create confirmation for %q", c.ExecutionID)
	}
	return nil
}

// Confirmation returns a confirmation; ErrNotFound if there is none.
func (db *DB) Confirmation(ctx context.Context, id string) (*Confirmation, error) {
	c := new(Confirmation)
	if err := db.bun.NewSelect().Model(c).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, wrap(err, "confirmation %q", id)
	}
	return c, nil
}

// PendingConfirmations returns the pending confirmations of an execution,
// oldest first; with executionID "" those of every execution (to re-offer
// buttons after a restart).
func (db *DB) PendingConfirmations(ctx context.Context, executionID string) ([]Confirmation, error) {
	var cs []Confirmation
	q := db.bun.NewSelect().Model(&cs).Where("status = ?", ConfirmPending).Order("created_at", "id")
	if executionID != "" {
		q = q.Where("execution_id = ?", executionID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, wrap(err, "pending confirmations of %q", executionID)
	}
	return cs, nil
}

// DecideConfirmation records a decision (approved or denied; for questions
// the answer text) made by decidedBy at now. It wins (true) only if the
// confirmation is still pending and not expired at now — one conditional
// UPDATE, so of two replicas or two clicks exactly one wins; the loser
// should tell its user it was already decided. ErrNotFound if there is no
// such confirmation.
func (db *DB) DecideConfirmation(ctx context.Context, id, status, decidedBy, answer string, now time.Time) (bool, error) {
	if status != ConfirmApproved && status != ConfirmDenied {
		return false, fmt.Errorf("decide confirmation %q: status must be %q or %q, got %q", id, ConfirmApproved, ConfirmDenied, status)
	}
	now = now.UTC().Truncate(time.Microsecond)
	res, err := db.bun.NewUpdate().Model((*Confirmation)(nil)).
		Set("status = ?", status).Set("decided_by = ?", decidedBy).Set("answer = ?", answer).Set("decided_at = ?", now).
		Where("id = ? AND status = ? AND expires_at > ?", id, ConfirmPending, now).
		Exec(ctx)
	if err != nil {
		return false, wrap(err, "decide confirmation %q", id)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	if _, err := db.Confirmation(ctx, id); err != nil {
		return false, fmt.Errorf("decide: %w", err)
	}
	return false, nil
}

// ExpireConfirmations marks every pending confirmation whose expiry is at or
// before now as expired and returns those this call expired (each row is
// flipped conditionally, so with several replicas each confirmation is
// returned to exactly one of them, which then tells the run and the chat).
func (db *DB) ExpireConfirmations(ctx context.Context, now time.Time) ([]Confirmation, error) {
	now = now.UTC().Truncate(time.Microsecond)
	var due []Confirmation
	err := db.bun.NewSelect().Model(&due).
		Where("status = ? AND expires_at <= ?", ConfirmPending, now).Order("expires_at", "id").Scan(ctx)
	if err != nil {
		return nil, wrap(err, "expire confirmations")
	}
	var expired []Confirmation
	for _, c := range due {
		res, err := db.bun.NewUpdate().Model((*Confirmation)(nil)).
			Set("status = ?", ConfirmExpired).Set("decided_at = ?", now).
			Where("id = ? AND status = ?", c.ID, ConfirmPending).Exec(ctx)
		if err != nil {
			return expired, wrap(err, "expire confirmation %q", c.ID)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			c.Status, c.DecidedAt = ConfirmExpired, &now
			expired = append(expired, c)
		}
	}
	return expired, nil
}

// SetConfirmationRef stores the surface's reference to the message showing
// the confirmation's buttons. ErrNotFound if there is no such confirmation.
func (db *DB) SetConfirmationRef(ctx context.Context, id, ref string) error {
	res, err := db.bun.NewUpdate().Model((*Confirmation)(nil)).Set("surface_ref = ?", ref).
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return wrap(err, "set confirmation ref %q", id)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(ErrNotFound, "set confirmation ref %q", id)
	}
	return nil
}

// ConfirmationsOf returns every confirmation of an execution, oldest
// first, decided or not: the run page shows who decided what, and a
// resumed run finds the decision on the exact call it is about to repeat.
func (db *DB) ConfirmationsOf(ctx context.Context, executionID string) ([]Confirmation, error) {
	var out []Confirmation
	err := db.bun.NewSelect().Model(&out).Where("execution_id = ?", executionID).
		Order("created_at", "id").Scan(ctx)
	if err != nil {
		return nil, wrap(err, "confirmations of %s", executionID)
	}
	return out, nil
}
