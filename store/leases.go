package store

import (
	"context"
	"time"
)

// PutLease records a live sandbox, or replaces the record of that sandbox
// id (pooled → leased to an execution and back). Sets CreatedAt (first
// time) and LastUsedAt when they are zero.
func (db *DB) PutLease(ctx context.Context, l *SandboxLease) error {
	t := now()
	if l.CreatedAt.IsZero() {
		l.CreatedAt = t
	}
	if l.LastUsedAt.IsZero() {
		l.LastUsedAt = t
	}
	err := db.upsert(ctx, db.bun, l, []string{"sandbox_id"},
		[]string{"provider", "template", "project_id", "execution_id", "owner", "state", "last_used_at", "host", "process", "heartbeat_at"})
	return wrap(err, "put sandbox lease %q", l.SandboxID)
}

// TouchLease records that a sandbox was used at the given time (for the
// idle timeout). ErrNotFound if there is no such lease.
func (db *DB) TouchLease(ctx context.Context, sandboxID string, at time.Time) error {
	res, err := db.bun.NewUpdate().Model((*SandboxLease)(nil)).
		Set("last_used_at = ?", at.UTC().Truncate(time.Microsecond)).
		Where("sandbox_id = ?", sandboxID).Exec(ctx)
	if err != nil {
		return wrap(err, "touch sandbox lease %q", sandboxID)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(ErrNotFound, "touch sandbox lease %q", sandboxID)
	}
	return nil
}

// HeartbeatLeases records that owner is alive, on every lease it holds.
func (db *DB) HeartbeatLeases(ctx context.Context, owner string, at time.Time) error {
	_, err := db.bun.NewUpdate().Model((*SandboxLease)(nil)).
		Set("heartbeat_at = ?", at.UTC().Truncate(time.Microsecond)).
		Where("owner = ?", owner).Exec(ctx)
	return wrap(err, "heartbeat sandbox leases of %q", owner)
}

// DeleteLease forgets a sandbox. Deleting a lease that is already gone is
// not an error: reapers on several replicas may race to remove the same one.
func (db *DB) DeleteLease(ctx context.Context, sandboxID string) error {
	_, err := db.bun.NewDelete().Model((*SandboxLease)(nil)).Where("sandbox_id = ?", sandboxID).Exec(ctx)
	return wrap(err, "delete sandbox lease %q", sandboxID)
}

// ListLeases returns every recorded sandbox, least recently used first.
func (db *DB) ListLeases(ctx context.Context) ([]SandboxLease, error) {
	var ls []SandboxLease
	if err := db.bun.NewSelect().Model(&ls).Order("last_used_at", "sandbox_id").Scan(ctx); err != nil {
		return nil, wrap(err, "list sandbox leases")
	}
	return ls, nil
}
