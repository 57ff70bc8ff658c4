package store

import (
	"context"
	"time"

	"github.com/uptrace/bun"
)

// schemaAudit is the project audit log (migration 20261202000301): every
// change to a project's members and settings, whoever made it — a person
// on the settings page or the local operator on the command line.
var schemaAudit = []table{
	{
		name: "project_audit",
		cols: []column{
			col("id", tID), col("project_id", tBigint), col("action", tStr),
			col("subject", tStr), col("detail", tText), col("actor", tStr),
			col("via", tStr), col("at", tTime),
		},
		indexes: [][]string{{"project_id", "at"}},
	},
}

// Project audit actions.
const (
	AuditMemberSet     = "member.set"
	AuditMemberRemoved = "member.removed"
	AuditSettingsSaved = "settings.saved"
)

// ProjectAudit is one change to a project: what (Action, on Subject, with
// Detail such as "member → admin"), who (Actor: an email, or local:USER
// for the operator) and where (Via: "settings page" or "command line").
type ProjectAudit struct {
	bun.BaseModel `bun:"table:project_audit"`

	ID        int64     `bun:"id,pk,autoincrement"`
	ProjectID int64     `bun:"project_id,notnull"`
	Action    string    `bun:"action,notnull"`
	Subject   string    `bun:"subject,notnull"`
	Detail    string    `bun:"detail,type:text,notnull"`
	Actor     string    `bun:"actor,notnull"`
	Via       string    `bun:"via,notnull"`
	At        time.Time `bun:"at,notnull"`
}

// AddProjectAudit records a change; At is set to now when zero.
func (db *DB) AddProjectAudit(ctx context.Context, a *ProjectAudit) error {
	if a.At.IsZero() {
		a.At = now()
	}
	if _, err := db.bun.NewInsert().Model(a).Exec(ctx); err != nil {
		return wrap(err, "audit %s of project %d", a.Action, a.ProjectID)
	}
	return nil
}

// ListProjectAudit returns a project's changes, newest first, at most
// limit (default 100).
func (db *DB) ListProjectAudit(ctx context.Context, projectID int64, limit int) ([]ProjectAudit, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []ProjectAudit
	err := db.bun.NewSelect().Model(&out).Where("project_id = ?", projectID).
		Order("at DESC", "id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, wrap(err, "audit log of project %d", projectID)
	}
	return out, nil
}
