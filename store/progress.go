package store

import (
	"context"
	"time"

	"github.com/uptrace/bun"
)

// ProgressMessage remembers where a surface shows a run's progress (a
// Slack message's team/channel/ts), so the same message keeps being
// edited after a restart or on another replica.
type ProgressMessage struct {
	bun.BaseModel `bun:"table:progress_messages"`

	ExecutionID string    `bun:"execution_id,pk"`
	Surface     string    `bun:"surface,pk"`
	Ref         string    `bun:"ref,notnull"`
	UpdatedAt   time.Time `bun:"updated_at,notnull"`
}

var schemaProgress = []table{{
	name: "progress_messages",
	cols: []column{col("execution_id", tStr), col("surface", tStr), col("ref", tStr), col("updated_at", tTime)},
	pk:   []string{"execution_id", "surface"},
	fks:  []foreignKey{{"execution_id", "agent_executions", "id"}},
}}

// SetProgressMessage records where surface shows run executionID's
// progress, replacing an earlier record.
func (db *DB) SetProgressMessage(ctx context.Context, executionID, surface, ref string) error {
	row := &ProgressMessage{ExecutionID: executionID, Surface: surface, Ref: ref, UpdatedAt: now()}
	err := db.upsert(ctx, db.bun, row, []string{"execution_id", "surface"}, []string{"ref", "updated_at"})
	return wrap(err, "record the %s progress message of run %s", surface, executionID)
}

// ProgressMessage returns where surface shows run executionID's
// progress; ErrNotFound if it has not shown it yet.
func (db *DB) ProgressMessage(ctx context.Context, executionID, surface string) (string, error) {
	row := new(ProgressMessage)
	if err := db.bun.NewSelect().Model(row).Where("execution_id = ? AND surface = ?", executionID, surface).Scan(ctx); err != nil {
		return "", wrap(err, "the %s progress message of run %s", surface, executionID)
	}
	return row.Ref, nil
}
