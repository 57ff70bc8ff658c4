package store

import (
	"context"

	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Singleton leases (migration 20261202000901) let one replica of several
// sharing a database run a job that must run once: the Discord gateway
// session, the GitHub redelivery reconciler, E2B's orphan killer. A lease
// is a row per job name saying who holds it until when; the holder renews
// it well before it runs out, and when the holder dies another replica
// claims it after it expired.
var schemaSingleton = []table{{
	name: "singleton_leases",
	cols: []column{col("name", tStr), col("holder", tStr), col("held_until", tTime), col("updated_at", tTime)},
	pk:   []string{"name"},
}}

// SingletonLease is one job's lease.
type SingletonLease struct {
	bun.BaseModel `bun:"table:singleton_leases"`

	Name      string    `bun:"name,pk"`
	Holder    string    `bun:"holder,notnull"`
	Until     time.Time `bun:"held_until,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

// ClaimSingleton takes or renews the lease on name for holder, for ttl
// from now. It returns true when holder holds the lease afterwards: it
// was free, expired, or already holder's (then it is extended). It
// returns false, without error, while another holder's lease is live.
// The claim is one conditional UPDATE (or an INSERT racing on the
// primary key), so two replicas never both win.
func (db *DB) ClaimSingleton(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return false, fmt.Errorf("claim singleton: need a name, a holder and ttl > 0 (got %q, %q, %s)", name, holder, ttl)
	}
	t := now()
	until := t.Add(ttl)
	res, err := db.bun.NewUpdate().Model((*SingletonLease)(nil)).
		Set("holder = ?", holder).Set("held_until = ?", until).Set("updated_at = ?", t).
		Where("name = ?", name).Where("(holder = ? OR held_until < ?)", holder, t).Exec(ctx)
	if err != nil {
		return false, wrap(err, "claim singleton %q", name)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	_, err = db.bun.NewInsert().Model(&SingletonLease{Name: name, Holder: holder, Until: until, UpdatedAt: t}).Exec(ctx)
	if err == nil {
		return true, nil
	}
	if !isUniqueViolation(err) {
		return false, wrap(err, "claim singleton %q", name)
	}
	// The row exists: someone else's live lease, or ours renewed with
	// identical values (MySQL then reports no changed row).
	l, err := db.Singleton(ctx, name)
	if err != nil {
		return false, err
	}
	return l.Holder == holder && !l.Until.Before(t), nil
}

// ReleaseSingleton gives the lease up at once (a clean shutdown), so
// another replica need not wait for it to expire. Releasing a lease held
// by someone else, or none, does nothing.
func (db *DB) ReleaseSingleton(ctx context.Context, name, holder string) error {
	_, err := db.bun.NewDelete().Model((*SingletonLease)(nil)).Where("name = ? AND holder = ?", name, holder).Exec(ctx)
	return wrap(err, "release singleton %q", name)
}

// Singleton returns name's lease (live or expired); ErrNotFound if it was
// never claimed or was released.
func (db *DB) Singleton(ctx context.Context, name string) (*SingletonLease, error) {
	l := new(SingletonLease)
	err := db.bun.NewSelect().Model(l).Where("name = ?", name).Scan(ctx)
	if err != nil {
		return nil, wrap(err, "singleton %q", name)
	}
	return l, nil
}
