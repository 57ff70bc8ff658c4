package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// maxLastError bounds the error text kept on a delivery.
const maxLastError = 4000

// maxBackoff caps the delay between attempts of a failing delivery.
const maxBackoff = time.Hour

func validateDelivery(source, deliveryID, event string) error {
	switch {
	case source == "" || deliveryID == "":
		return fmt.Errorf("enqueue: source and delivery id are required (got %q, %q)", source, deliveryID)
	case len(source) > 255 || len(deliveryID) > 255 || len(event) > 255:
		return fmt.Errorf("enqueue %s delivery: source, delivery id and event must be at most 255 bytes", source)
	}
	return nil
}

func newDelivery(source, deliveryID, event string, payload []byte, t time.Time) *Delivery {
	if payload == nil {
		payload = []byte{}
	}
	return &Delivery{Source: source, DeliveryID: deliveryID, Event: event, Payload: payload,
		Status: DeliveryPending, ReceivedAt: t, NextAttemptAt: t}
}

// Enqueue stores a platform delivery before the platform is acknowledged:
// when it returns nil the delivery is committed. A delivery already stored
// under the same (source, deliveryID) — a platform retry — is not stored
// again and inserted is false. Under load prefer an InboxWriter, which
// commits many concurrent deliveries in one transaction.
func (db *DB) Enqueue(ctx context.Context, source, deliveryID, event string, payload []byte) (inserted bool, err error) {
	if err := validateDelivery(source, deliveryID, event); err != nil {
		return false, err
	}
	// In a retried transaction: on MySQL an insert can be the victim of a
	// deadlock with a concurrent claim, and the platform is still waiting.
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(newDelivery(source, deliveryID, event, payload, now())).Exec(ctx)
		return err
	})
	if err != nil {
		if isUniqueViolation(err) {
			return false, nil
		}
		return false, wrap(err, "enqueue %s delivery %q", source, deliveryID)
	}
	return true, nil
}

// Delivery returns one delivery; ErrNotFound if there is none.
func (db *DB) Delivery(ctx context.Context, id int64) (*Delivery, error) {
	d := new(Delivery)
	if err := db.bun.NewSelect().Model(d).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, wrap(err, "delivery %d", id)
	}
	return d, nil
}

// ClaimDeliveries hands owner up to n pending deliveries that are due and
// not held by another live claim, oldest first, optionally only from the
// given sources, and holds them for lease. Each claim counts as an attempt.
// Replicas never receive the same delivery while a claim is live: on MySQL
// the rows are picked with SELECT … FOR UPDATE SKIP LOCKED (MySQL 8.0+,
// MariaDB 10.6+) and claimed in the same transaction; on SQLite the
// transaction is exclusive. A worker that dies loses its claim when the
// lease runs out, and the delivery is handed out again.
func (db *DB) ClaimDeliveries(ctx context.Context, owner string, lease time.Duration, n int, sources ...string) ([]Delivery, error) {
	if owner == "" || n <= 0 || lease <= 0 {
		return nil, fmt.Errorf("claim deliveries: need an owner, n > 0 and lease > 0 (got %q, %d, %s)", owner, n, lease)
	}
	var claimed []Delivery
	// READ COMMITTED on MySQL: under REPEATABLE READ the locking scan also
	// takes next-key locks on rows past its range (another source's), and
	// SKIP LOCKED in a concurrent claim then passes over them.
	var opts *sql.TxOptions
	if db.dialect == DialectMySQL {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	err := db.inTxOpts(ctx, opts, func(ctx context.Context, tx bun.Tx) error {
		claimed = nil
		t := now()
		var ds []Delivery
		q := tx.NewSelect().Model(&ds).
			Where("status = ? AND next_attempt_at <= ?", DeliveryPending, t).
			Where("(claimed_until IS NULL OR claimed_until < ?)", t).
			Order("next_attempt_at", "id").Limit(int64(n))
		if len(sources) > 0 {
			q = q.Where("source IN (?)", bun.In(sources))
		}
		if db.dialect == DialectMySQL {
			q = q.For("UPDATE SKIP LOCKED")
		}
		if err := q.Scan(ctx); err != nil {
			return err
		}
		if len(ds) == 0 {
			return nil
		}
		ids := make([]int64, len(ds))
		for i := range ds {
			ids[i] = ds[i].ID
		}
		until := t.Add(lease)
		res, err := tx.NewUpdate().Model((*Delivery)(nil)).
			Set("claimed_by = ?", owner).Set("claimed_until = ?", until).Set("attempts = attempts + 1").
			Where("id IN (?)", bun.In(ids)).Exec(ctx)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k != int64(len(ds)) {
			return fmt.Errorf("claimed %d of %d rows", k, len(ds))
		}
		for i := range ds {
			ds[i].ClaimedBy, ds[i].ClaimedUntil = owner, &until
			ds[i].Attempts++
		}
		claimed = ds
		return nil
	})
	if err != nil {
		return nil, wrap(err, "claim deliveries for %s", owner)
	}
	return claimed, nil
}

// CompleteDelivery marks a delivery processed. ErrNotFound if it does not
// exist.
// CompleteDeliveries marks several handled deliveries done in one
// transaction (the inbox worker batches completions, so that on SQLite
// they do not queue one commit each behind the intake's writes).
func (db *DB) CompleteDeliveries(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := db.bun.NewUpdate().Model((*Delivery)(nil)).
		Set("status = ?", DeliveryDone).Set("processed_at = ?", now()).Set("claimed_until = NULL").
		Where("id IN (?)", bun.In(ids)).Exec(ctx)
	return wrap(err, "complete %d deliveries", len(ids))
}

func (db *DB) CompleteDelivery(ctx context.Context, id int64) error {
	res, err := db.bun.NewUpdate().Model((*Delivery)(nil)).
		Set("status = ?", DeliveryDone).Set("processed_at = ?", now()).Set("claimed_until = NULL").
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return wrap(err, "complete delivery %d", id)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return wrap(ErrNotFound, "complete delivery %d", id)
	}
	return nil
}

// FailDelivery records a failed attempt. Once the delivery has been tried
// maxAttempts times it is parked as failed (kept for inspection, counted in
// /metrics); otherwise it is released and becomes due again after backoff
// doubled per earlier attempt (backoff, 2×, 4×, …, at most an hour).
// ErrNotFound if it does not exist.
func (db *DB) FailDelivery(ctx context.Context, id int64, errText string, maxAttempts int, backoff time.Duration) error {
	if len(errText) > maxLastError {
		errText = errText[:maxLastError]
	}
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		d := new(Delivery)
		if err := db.forUpdate(tx.NewSelect().Model(d).Column("id", "attempts").Where("id = ?", id)).Scan(ctx); err != nil {
			return err
		}
		t := now()
		q := tx.NewUpdate().Model((*Delivery)(nil)).
			Set("last_error = ?", errText).Set("claimed_until = NULL").Set("claimed_by = ''").Where("id = ?", id)
		if d.Attempts >= maxAttempts {
			q = q.Set("status = ?", DeliveryFailed).Set("processed_at = ?", t)
		} else {
			delay := backoff
			for i := 1; i < d.Attempts && delay < maxBackoff; i++ {
				delay *= 2
			}
			q = q.Set("status = ?", DeliveryPending).Set("next_attempt_at = ?", t.Add(min(delay, maxBackoff)))
		}
		_, err := q.Exec(ctx)
		return err
	})
	return wrap(err, "fail delivery %d", id)
}

// DeliveryCounts returns how many deliveries are in each status, for
// /metrics. Statuses with no rows are present with 0.
func (db *DB) DeliveryCounts(ctx context.Context) (map[string]int, error) {
	var rows []struct {
		Status string `bun:"status"`
		N      int    `bun:"n"`
	}
	err := db.bun.NewSelect().Model((*Delivery)(nil)).ColumnExpr("status, COUNT(*) AS n").
		Group("status").Scan(ctx, &rows)
	if err != nil {
		return nil, wrap(err, "count deliveries")
	}
	out := map[string]int{DeliveryPending: 0, DeliveryDone: 0, DeliveryFailed: 0}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}

// InboxWriter group-commits deliveries: concurrent Write calls are gathered
// into one transaction, so a burst of webhooks costs one commit (one fsync
// on SQLite) instead of one each, and every caller still returns only after
// its delivery is committed. While one batch commits, the next one fills;
// its first caller commits it as soon as the previous commit is done (after
// waiting up to maxWait for the batch to fill). It starts no goroutines and
// needs no Close.
type InboxWriter struct {
	db       *DB
	maxBatch int
	maxWait  time.Duration

	mu       sync.Mutex
	open     *inboxBatch   // the batch callers join; nil when none
	flushing chan struct{} // held by the batch being committed
}

type inboxItem struct {
	d        *Delivery
	inserted bool
	err      error
}

type inboxBatch struct {
	items []*inboxItem
	full  chan struct{} // closed when the batch reached maxBatch
	done  chan struct{} // closed when the batch is committed (or failed)
}

// NewInboxWriter returns a group-committing writer for db. maxBatch bounds
// the deliveries per transaction (default 256); maxWait is how long a batch
// may wait to fill once it could be committed (0: commit at once — batches
// still form while the previous commit runs, which is what matters).
func NewInboxWriter(db *DB, maxBatch int, maxWait time.Duration) *InboxWriter {
	if maxBatch <= 0 {
		maxBatch = 256
	}
	return &InboxWriter{db: db, maxBatch: maxBatch, maxWait: max(maxWait, 0), flushing: make(chan struct{}, 1)}
}

// Write stores one delivery like (*DB).Enqueue, committed with whatever
// other deliveries arrive at the same time. If ctx ends first Write returns
// ctx's error, but the delivery may still be committed with its batch (a
// platform retry then finds it as a duplicate).
func (w *InboxWriter) Write(ctx context.Context, source, deliveryID, event string, payload []byte) (inserted bool, err error) {
	if err := validateDelivery(source, deliveryID, event); err != nil {
		return false, err
	}
	it := &inboxItem{d: newDelivery(source, deliveryID, event, payload, time.Time{})}

	w.mu.Lock()
	b, leader := w.open, false
	if b == nil {
		b = &inboxBatch{full: make(chan struct{}), done: make(chan struct{})}
		w.open, leader = b, true
	}
	b.items = append(b.items, it)
	if len(b.items) >= w.maxBatch {
		w.open = nil
		close(b.full)
	}
	w.mu.Unlock()

	if leader {
		// The leader commits for everyone in its batch, so its own
		// cancellation must not abort their writes.
		w.commit(context.WithoutCancel(ctx), b)
	}
	select {
	case <-b.done:
		return it.inserted, it.err
	case <-ctx.Done():
		return false, fmt.Errorf("enqueue %s delivery %q: %w", source, deliveryID, ctx.Err())
	}
}

func (w *InboxWriter) commit(ctx context.Context, b *inboxBatch) {
	defer close(b.done)
	w.flushing <- struct{}{} // wait for the previous batch; ours keeps filling
	defer func() { <-w.flushing }()
	if w.maxWait > 0 {
		t := time.NewTimer(w.maxWait)
		select {
		case <-b.full:
		case <-t.C:
		}
		t.Stop()
	}
	w.mu.Lock()
	if w.open == b {
		w.open = nil
	}
	w.mu.Unlock() // from here on nobody appends to b.items

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := w.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		t := now()
		for _, it := range b.items {
			it.d.ID, it.d.ReceivedAt, it.d.NextAttemptAt, it.inserted = 0, t, t, false
		}
		if w.db.dialect == DialectSQLite {
			return insertBatchSQLite(ctx, tx, b.items)
		}
		return insertBatchMySQL(ctx, tx, b.items)
	})
	if err == nil {
		return
	}
	// One bad row must not fail its neighbours: store them one by one.
	w.db.log.Warn("inbox batch failed, writing its deliveries one by one", "size", len(b.items), "err", err)
	for _, it := range b.items {
		it.inserted, it.err = w.db.Enqueue(ctx, it.d.Source, it.d.DeliveryID, it.d.Event, it.d.Payload)
	}
}

// sqliteTime formats t exactly as bun's SQLite dialect does, so values
// written here compare correctly with values written through bun.
func sqliteTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999-07:00") }

// insertBatchSQLite inserts items with one prepared INSERT … ON CONFLICT
// DO NOTHING, executed once per item with bound parameters. SQLite parses
// it once per batch; a multi-row VALUES list had to be parsed anew for
// every batch size and cost more to compile than the rows cost to insert.
// An item is new when its statement inserted a row; of two items with the
// same key in one batch the first one is.
func insertBatchSQLite(ctx context.Context, tx bun.Tx, items []*inboxItem) error {
	st, err := tx.Tx.PrepareContext(ctx, `INSERT INTO "deliveries" ("source", "delivery_id", "event", "payload", "status", "attempts", `+
		`"last_error", "received_at", "next_attempt_at", "claimed_by") VALUES (?, ?, ?, ?, ?, 0, '', ?, ?, '') `+
		`ON CONFLICT ("source", "delivery_id") DO NOTHING`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, it := range items {
		d := it.d
		res, err := st.ExecContext(ctx, d.Source, d.DeliveryID, d.Event, d.Payload, d.Status,
			sqliteTime(d.ReceivedAt), sqliteTime(d.NextAttemptAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		it.inserted = n == 1
	}
	return nil
}

// mysqlBatchBytes bounds the payload bytes of one multi-row INSERT on
// MySQL (bun writes them as hex, twice as long), well under the server's
// max_allowed_packet (16 MiB by default on MariaDB, 64 MiB on MySQL).
const mysqlBatchBytes = 2 << 20

// insertBatchMySQL stores items in a few round trips instead of one per
// item: one SELECT finds the keys already stored (platform retries), and
// multi-row INSERTs store the rest, the first of two items with one key
// only. A delivery another replica commits in between fails the INSERT
// with a duplicate key, and the caller then stores the batch one by one.
func insertBatchMySQL(ctx context.Context, tx bun.Tx, items []*inboxItem) error {
	stored := map[[2]string]bool{}
	bySource := map[string][]string{}
	for _, it := range items {
		bySource[it.d.Source] = append(bySource[it.d.Source], it.d.DeliveryID)
	}
	for source, ids := range bySource {
		var keys []struct {
			DeliveryID string `bun:"delivery_id"`
		}
		err := tx.NewSelect().Model((*Delivery)(nil)).Column("delivery_id").
			Where("source = ?", source).Where("delivery_id IN (?)", bun.In(ids)).Scan(ctx, &keys)
		if err != nil {
			return err
		}
		for _, k := range keys {
			stored[[2]string{source, k.DeliveryID}] = true
		}
	}
	var fresh []*inboxItem
	for _, it := range items {
		k := [2]string{it.d.Source, it.d.DeliveryID}
		if !stored[k] {
			stored[k] = true
			fresh = append(fresh, it)
		}
	}
	for len(fresh) > 0 {
		n, size := 0, 0
		for n < len(fresh) && (n == 0 || size+len(fresh[n].d.Payload) <= mysqlBatchBytes) {
			size += len(fresh[n].d.Payload)
			n++
		}
		rows := make([]*Delivery, n)
		for i, it := range fresh[:n] {
			rows[i] = it.d
		}
		if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return err
		}
		for _, it := range fresh[:n] {
			it.inserted = true
		}
		fresh = fresh[n:]
	}
	return nil
}
