package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Tables that make limits and "only once" hold across restarts and
// replicas (migration 20261201000001): once_keys remembers that
// something happened (a courtesy reply given, a webhook acted on) under a
// key that is unique per kind; limit_events counts attempts (failed link
// codes) per subject over a sliding window.
var schemaLimits = []table{
	{
		name: "once_keys",
		cols: []column{
			col("kind", tStr), col("key_text", tStr), col("owner", tStr), col("created_at", tTime),
		},
		pk:      []string{"kind", "key_text"},
		indexes: [][]string{{"kind", "created_at"}},
	},
	{
		name: "limit_events",
		cols: []column{
			col("id", tID), col("kind", tStr), col("subject", tStr), col("created_at", tTime),
		},
		indexes: [][]string{{"kind", "subject", "created_at"}, {"kind", "created_at"}},
	},
}

// onceKey is one row of once_keys.
type onceKey struct {
	bun.BaseModel `bun:"table:once_keys"`

	Kind      string    `bun:"kind,pk"`
	Key       string    `bun:"key_text,pk"`
	Owner     string    `bun:"owner,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// limitEvent is one row of limit_events.
type limitEvent struct {
	bun.BaseModel `bun:"table:limit_events"`

	ID        int64     `bun:"id,pk,autoincrement"`
	Kind      string    `bun:"kind,notnull"`
	Subject   string    `bun:"subject,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// maxKeyLen bounds once keys and limit subjects (the columns are indexed
// short strings).
const maxKeyLen = 255

// ClaimOnce records that key (of kind) happened, on behalf of owner (a
// delivery id, say). It returns the owner of the first claim: owner
// itself when this call made it, or when owner made it before (a retry of
// the same work); someone else's when the key was already claimed, in
// which case the caller does nothing. Keys longer than 255 bytes are an
// error: hash them first.
func (db *DB) ClaimOnce(ctx context.Context, kind, key, owner string, at time.Time) (first string, err error) {
	if kind == "" || key == "" || len(kind) > maxKeyLen || len(key) > maxKeyLen || len(owner) > maxKeyLen {
		return "", fmt.Errorf("claim once: kind and key are required and at most %d bytes (got %q, %d bytes)", maxKeyLen, kind, len(key))
	}
	row := &onceKey{Kind: kind, Key: key, Owner: owner, CreatedAt: at.UTC().Truncate(time.Microsecond)}
	_, err = db.bun.NewInsert().Model(row).Exec(ctx)
	if err == nil {
		return owner, nil
	}
	if !isUniqueViolation(err) {
		return "", wrap(err, "claim %s %q", kind, key)
	}
	var prev onceKey
	if err := db.bun.NewSelect().Model(&prev).Where("kind = ? AND key_text = ?", kind, key).Scan(ctx); err != nil {
		return "", wrap(err, "read claim %s %q", kind, key)
	}
	return prev.Owner, nil
}

// ReleaseClaim gives up owner's claim of key (of kind), so that a later
// ClaimOnce can take it: work that failed after claiming (a chat post
// refused by a passing outage) is tried again. A claim held by someone
// else is left alone; releasing a claim that is gone is no error.
func (db *DB) ReleaseClaim(ctx context.Context, kind, key, owner string) error {
	_, err := db.bun.NewDelete().Model((*onceKey)(nil)).
		Where("kind = ? AND key_text = ? AND owner = ?", kind, key, owner).Exec(ctx)
	return wrap(err, "release claim %s %q", kind, key)
}

// TakeOverClaim moves a claim of key (of kind) made before staleBefore
// to owner, stamped at, and reports whether this call did so: work whose
// claimer died between claiming and finishing (a replica that crashed
// mid-post) is picked up again. The update is one compare-and-swap on
// the claim's age: the first of racing replicas stamps it anew, after
// which it is no longer stale to the others. The caller decides first
// that the work is unfinished.
func (db *DB) TakeOverClaim(ctx context.Context, kind, key, owner string, staleBefore, at time.Time) (bool, error) {
	if len(owner) > maxKeyLen {
		return false, fmt.Errorf("take over claim %s %q: owner is at most %d bytes", kind, key, maxKeyLen)
	}
	res, err := db.bun.NewUpdate().Model((*onceKey)(nil)).
		Set("owner = ?", owner).Set("created_at = ?", at.UTC().Truncate(time.Microsecond)).
		Where("kind = ? AND key_text = ? AND created_at < ?", kind, key, staleBefore.UTC()).
		Exec(ctx)
	if err != nil {
		return false, wrap(err, "take over claim %s %q", kind, key)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err, "take over claim %s %q", kind, key)
	}
	return n == 1, nil
}

// OnceRank is key's place among the keys of kind claimed at or after
// since, counting from 1 in claim order (ties broken by key). A global cap
// ("at most N courtesy replies per hour") lets a claim through when its
// rank is at most N: unlike counting all claims after claiming, claims
// made at the same moment cannot push each other over the cap and all be
// refused. 0 when key was not claimed since then.
func (db *DB) OnceRank(ctx context.Context, kind, key string, since time.Time) (int, error) {
	var mine onceKey
	err := db.bun.NewSelect().Model(&mine).Where("kind = ? AND key_text = ?", kind, key).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap(err, "read claim %s %q", kind, key)
	}
	if mine.CreatedAt.Before(since.UTC()) {
		return 0, nil
	}
	n, err := db.bun.NewSelect().Model((*onceKey)(nil)).
		Where("kind = ? AND created_at >= ?", kind, since.UTC()).
		Where("created_at < ? OR (created_at = ? AND key_text <= ?)", mine.CreatedAt, mine.CreatedAt, key).
		Count(ctx)
	if err != nil {
		return 0, wrap(err, "rank %s claim", kind)
	}
	return int(n), nil
}

// RecordLimitEvent counts one attempt of kind by subject (a chat account)
// at time at.
func (db *DB) RecordLimitEvent(ctx context.Context, kind, subject string, at time.Time) error {
	if kind == "" || len(kind) > maxKeyLen || len(subject) > maxKeyLen {
		return errors.New("record limit event: kind is required; kind and subject are at most 255 bytes")
	}
	_, err := db.bun.NewInsert().Model(&limitEvent{Kind: kind, Subject: subject, CreatedAt: at.UTC().Truncate(time.Microsecond)}).Exec(ctx)
	return wrap(err, "record %s for %s", kind, subject)
}

// CountLimitEvents counts the attempts of kind since a time: by subject,
// or of everyone when subject is "".
func (db *DB) CountLimitEvents(ctx context.Context, kind, subject string, since time.Time) (int, error) {
	q := db.bun.NewSelect().Model((*limitEvent)(nil)).Where("kind = ? AND created_at >= ?", kind, since.UTC())
	if subject != "" {
		q = q.Where("subject = ?", subject)
	}
	n, err := q.Count(ctx)
	if err != nil {
		return 0, wrap(err, "count %s", kind)
	}
	return int(n), nil
}

// PruneLimits deletes once keys and limit events of kind older than
// before; the caller picks how long each kind must be remembered.
func (db *DB) PruneLimits(ctx context.Context, kind string, before time.Time) (int64, error) {
	var total int64
	for _, m := range []any{(*onceKey)(nil), (*limitEvent)(nil)} {
		res, err := db.bun.NewDelete().Model(m).Where("kind = ? AND created_at < ?", kind, before.UTC()).Exec(ctx)
		if err != nil {
			return total, wrap(err, "prune %s", kind)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
