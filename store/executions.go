package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// CreateExecution inserts e. It generates a short id ("r" + 7 base32
// characters) when e.ID is empty, sets Status to queued when empty, and
// sets CreatedAt and UpdatedAt. ErrConflict if a given ID is taken.
func (db *DB) CreateExecution(ctx context.Context, e *Execution) error {
	if e.Status == "" {
		e.Status = StatusQueued
	}
	e.CreatedAt = now()
	e.UpdatedAt = e.CreatedAt
	if err := db.insertWithID(ctx, e, &e.ID, "r", 7); err != nil {
		return wrap(err, "create execution")
	}
	return nil
}

// Execution returns a run by id; ErrNotFound if there is none.
func (db *DB) Execution(ctx context.Context, id string) (*Execution, error) {
	e := new(Execution)
	if err := db.bun.NewSelect().Model(e).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, wrap(err, "execution %q", id)
	}
	return e, nil
}

// UpdateExecution saves the named columns of e (all of them when none are
// named) and always updated_at, which it sets. ErrNotFound if e.ID does not
// exist.
func (db *DB) UpdateExecution(ctx context.Context, e *Execution, columns ...string) error {
	e.UpdatedAt = now()
	q := db.bun.NewUpdate().Model(e).WherePK()
	if len(columns) > 0 {
		q = q.Column(append(columns, "updated_at")...)
	} else {
		q = q.ExcludeColumn("id", "created_at")
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return wrap(err, "update execution %q", e.ID)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(ErrNotFound, "update execution %q", e.ID)
	}
	return nil
}

// ExecutionFilter selects executions for ListExecutions. Zero fields do not
// filter.
type ExecutionFilter struct {
	ProjectID int64
	Statuses  []string
	Limit     int // default 50, at most 1000
}

// ListExecutions returns executions, newest first.
func (db *DB) ListExecutions(ctx context.Context, f ExecutionFilter) ([]Execution, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	var es []Execution
	q := db.bun.NewSelect().Model(&es).Order("created_at DESC", "id DESC").Limit(int64(limit))
	if f.ProjectID != 0 {
		q = q.Where("project_id = ?", f.ProjectID)
	}
	if len(f.Statuses) > 0 {
		q = q.Where("status IN (?)", bun.In(f.Statuses))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, wrap(err, "list executions")
	}
	return es, nil
}

// ExecutionsByStatus returns every execution in one of the statuses,
// oldest first: at startup, the runs to resume or close.
func (db *DB) ExecutionsByStatus(ctx context.Context, statuses ...string) ([]Execution, error) {
	if len(statuses) == 0 {
		return nil, nil
	}
	var es []Execution
	err := db.bun.NewSelect().Model(&es).Where("status IN (?)", bun.In(statuses)).
		Order("created_at", "id").Scan(ctx)
	if err != nil {
		return nil, wrap(err, "executions by status")
	}
	return es, nil
}

// ClaimExecution makes owner the replica driving a run until until. It
// wins (true) only if the run is unowned, already owned by owner (renewal),
// or its lease has lapsed; a single conditional UPDATE, so of several
// replicas at most one wins. ErrNotFound if the run does not exist.
func (db *DB) ClaimExecution(ctx context.Context, id, owner string, until time.Time) (bool, error) {
	if owner == "" {
		return false, errors.New("claim execution: owner is empty")
	}
	t := now()
	res, err := db.bun.NewUpdate().Model((*Execution)(nil)).
		Set("owner = ?", owner).Set("lease_until = ?", until.UTC()).Set("updated_at = ?", t).
		Where("id = ?", id).
		Where("(owner = '' OR owner = ? OR lease_until < ?)", owner, t).
		Exec(ctx)
	if err != nil {
		return false, wrap(err, "claim execution %q", id)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	if _, err := db.Execution(ctx, id); err != nil {
		return false, fmt.Errorf("claim: %w", err)
	}
	return false, nil
}

// ReleaseExecution gives up owner's claim on a run (when it finishes or the
// replica shuts down), so another replica may take it over at once. It is
// a no-op if owner does not hold the claim.
func (db *DB) ReleaseExecution(ctx context.Context, id, owner string) error {
	_, err := db.bun.NewUpdate().Model((*Execution)(nil)).
		Set("owner = ''").Set("lease_until = ?", time.Time{}).Set("updated_at = ?", now()).
		Where("id = ? AND owner = ?", id, owner).Exec(ctx)
	return wrap(err, "release execution %q", id)
}

// ProjectSpendSince sums the cost of a project's runs created since then,
// for the daily budget.
func (db *DB) ProjectSpendSince(ctx context.Context, projectID int64, since time.Time) (float64, error) {
	var total sql.NullFloat64
	err := db.bun.NewSelect().Model((*Execution)(nil)).ColumnExpr("SUM(cost_usd)").
		Where("project_id = ? AND created_at >= ?", projectID, since.UTC()).Scan(ctx, &total)
	if err != nil {
		return 0, wrap(err, "spend of project %d", projectID)
	}
	return total.Float64, nil
}

// AppendStep stores a step of an execution, assigning the next Ordinal
// (1, 2, …) atomically: the execution row is locked while the ordinal is
// chosen, so concurrent appends never collide. Sets ID and CreatedAt.
// ErrNotFound if the execution does not exist.
func (db *DB) AppendStep(ctx context.Context, s *Step) error {
	s.CreatedAt = now()
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var id string
		if err := db.forUpdate(tx.NewSelect().Model((*Execution)(nil)).Column("id").
			Where("id = ?", s.ExecutionID)).Scan(ctx, &id); err != nil {
			return err
		}
		var last sql.NullInt64
		if err := tx.NewSelect().Model((*Step)(nil)).ColumnExpr("MAX(ordinal)").
			Where("execution_id = ?", s.ExecutionID).Scan(ctx, &last); err != nil {
			return err
		}
		s.Ordinal = int(last.Int64) + 1
		s.ID = 0
		_, err := tx.NewInsert().Model(s).Exec(ctx)
		return err
	})
	return wrap(err, "append step to execution %q", s.ExecutionID)
}

// ListSteps returns an execution's steps in order.
func (db *DB) ListSteps(ctx context.Context, executionID string) ([]Step, error) {
	var ss []Step
	if err := db.bun.NewSelect().Model(&ss).Where("execution_id = ?", executionID).Order("ordinal").Scan(ctx); err != nil {
		return nil, wrap(err, "list steps of %q", executionID)
	}
	return ss, nil
}

// AddInput queues a person's message for a running execution.
// ErrNotFound if the execution does not exist.
// AddInputOnce is AddInput keyed by the delivery the message came from:
// adding the same key twice to one execution stores it once and reports
// added=false the second time.
func (db *DB) AddInputOnce(ctx context.Context, executionID, author, body, key string) (*Input, bool, error) {
	if key == "" {
		in, err := db.AddInput(ctx, executionID, author, body)
		return in, err == nil, err
	}
	if _, err := db.Execution(ctx, executionID); err != nil {
		return nil, false, fmt.Errorf("add input: %w", err)
	}
	in := &Input{ExecutionID: executionID, Author: author, Body: body, CreatedAt: now(), DedupeKey: &key}
	if _, err := db.bun.NewInsert().Model(in).Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return nil, false, nil
		}
		return nil, false, wrap(err, "add input to %q", executionID)
	}
	return in, true, nil
}

func (db *DB) AddInput(ctx context.Context, executionID, author, body string) (*Input, error) {
	in := &Input{ExecutionID: executionID, Author: author, Body: body, CreatedAt: now()}
	if _, err := db.Execution(ctx, executionID); err != nil {
		return nil, fmt.Errorf("add input: %w", err)
	}
	if _, err := db.bun.NewInsert().Model(in).Exec(ctx); err != nil {
		return nil, wrap(err, "add input to %q", executionID)
	}
	return in, nil
}

// TakeInputs returns the execution's unconsumed inputs in the order they
// arrived and marks them consumed, in one transaction: two takers never
// get the same input.
func (db *DB) TakeInputs(ctx context.Context, executionID string) ([]Input, error) {
	// The engine asks before every model call and usually there is nothing:
	// answer that with a plain read, without taking the write lock.
	waiting, err := db.bun.NewSelect().Model((*Input)(nil)).
		Where("execution_id = ? AND consumed_at IS NULL", executionID).Exists(ctx)
	if err != nil {
		return nil, wrap(err, "take inputs of %q", executionID)
	}
	if !waiting {
		return nil, nil
	}
	var taken []Input
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		taken = nil
		var ins []Input
		if err := db.forUpdate(tx.NewSelect().Model(&ins).
			Where("execution_id = ? AND consumed_at IS NULL", executionID).Order("id")).Scan(ctx); err != nil {
			return err
		}
		if len(ins) == 0 {
			return nil
		}
		ids := make([]int64, len(ins))
		for i := range ins {
			ids[i] = ins[i].ID
		}
		t := now()
		res, err := tx.NewUpdate().Model((*Input)(nil)).Set("consumed_at = ?", t).
			Where("id IN (?) AND consumed_at IS NULL", bun.In(ids)).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != int64(len(ins)) {
			return fmt.Errorf("consumed %d of %d inputs: concurrent taker", n, len(ins))
		}
		for i := range ins {
			ins[i].ConsumedAt = &t
		}
		taken = ins
		return nil
	})
	if err != nil {
		return nil, wrap(err, "take inputs of %q", executionID)
	}
	return taken, nil
}
