package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// Column types of the schema, spelled once and rendered per dialect.
const (
	tID       = "id"       // auto-increment primary key
	tBigint   = "bigint"   // int64
	tInt      = "int"      // int
	tBool     = "bool"     // bool
	tFloat    = "float"    // float64
	tStr      = "str"      // short string: names, ids, statuses (indexable)
	tText     = "text"     // up to 64 KiB
	tLongText = "longtext" // up to 16 MiB (conversations)
	tBlob     = "blob"     // up to 64 KiB of bytes
	tLongBlob = "longblob" // webhook payloads
	tTime     = "time"     // microsecond timestamp, UTC
)

type column struct {
	name, typ string
	null      bool // NULL allowed (pointer fields); everything else NOT NULL
}

type foreignKey struct {
	column, refTable, refColumn string
}

type table struct {
	name    string
	cols    []column
	pk      []string // composite primary key; empty when a column is tID
	uniques [][]string
	indexes [][]string
	fks     []foreignKey // all ON DELETE CASCADE
}

func col(name, typ string) column  { return column{name: name, typ: typ} }
func ncol(name, typ string) column { return column{name: name, typ: typ, null: true} }

func sqlType(dialect, typ string) string {
	mysql := dialect == DialectMySQL
	switch typ {
	case tID:
		if mysql {
			return "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"
		}
		return "INTEGER PRIMARY KEY AUTOINCREMENT"
	case tBigint:
		return "BIGINT"
	case tInt:
		return "INTEGER"
	case tBool:
		return "BOOLEAN"
	case tFloat:
		return "DOUBLE PRECISION"
	case tStr:
		return "VARCHAR(255)"
	case tText:
		return "TEXT"
	case tLongText:
		if mysql {
			return "MEDIUMTEXT"
		}
		return "TEXT"
	case tBlob:
		return "BLOB"
	case tLongBlob:
		if mysql {
			return "LONGBLOB"
		}
		return "BLOB"
	case tTime:
		if mysql {
			return "DATETIME(6)"
		}
		return "TIMESTAMP"
	}
	panic("store: unknown column type " + typ)
}

func ident(dialect, name string) string {
	if dialect == DialectMySQL {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

func idents(dialect string, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = ident(dialect, n)
	}
	return strings.Join(q, ", ")
}

// statements renders CREATE TABLE (and, for SQLite, CREATE INDEX)
// statements that are safe to run again: a migration interrupted half way
// on MySQL, where DDL is not transactional, can simply be retried.
func (t table) statements(dialect string) []string {
	var defs []string
	for _, c := range t.cols {
		d := ident(dialect, c.name) + " " + sqlType(dialect, c.typ)
		if c.typ != tID && !c.null {
			d += " NOT NULL"
		}
		defs = append(defs, d)
	}
	if len(t.pk) > 0 {
		defs = append(defs, "PRIMARY KEY ("+idents(dialect, t.pk)+")")
	}
	for _, u := range t.uniques {
		defs = append(defs, fmt.Sprintf("CONSTRAINT %s UNIQUE (%s)",
			ident(dialect, "uq_"+t.name+"_"+strings.Join(u, "_")), idents(dialect, u)))
	}
	for _, fk := range t.fks {
		defs = append(defs, fmt.Sprintf("CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s) ON DELETE CASCADE",
			ident(dialect, "fk_"+t.name+"_"+fk.column), ident(dialect, fk.column),
			ident(dialect, fk.refTable), ident(dialect, fk.refColumn)))
	}
	var out []string
	if dialect == DialectMySQL {
		// MySQL 8 lacks CREATE INDEX IF NOT EXISTS: declare indexes inline.
		for _, ix := range t.indexes {
			defs = append(defs, fmt.Sprintf("KEY %s (%s)", ident(dialect, "ix_"+t.name+"_"+strings.Join(ix, "_")), idents(dialect, ix)))
		}
		// utf8mb4_bin: identifiers (delivery ids, secret names) compare
		// exactly, as they do on SQLite.
		out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  %s\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
			ident(dialect, t.name), strings.Join(defs, ",\n  ")))
		return out
	}
	out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  %s\n)", ident(dialect, t.name), strings.Join(defs, ",\n  ")))
	for _, ix := range t.indexes {
		out = append(out, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)",
			ident(dialect, "ix_"+t.name+"_"+strings.Join(ix, "_")), ident(dialect, t.name), idents(dialect, ix)))
	}
	return out
}

// schemaV1 is the first version of the schema. It is frozen: later changes
// go into new migrations, never into this list.
var schemaV1 = []table{
	{
		name: "users",
		cols: []column{
			col("id", tID), col("email", tStr), col("name", tStr), col("is_admin", tBool), col("created_at", tTime),
		},
		uniques: [][]string{{"email"}},
	},
	{
		name: "projects",
		cols: []column{
			col("id", tID), col("name", tStr), col("repo_url", tText), col("default_branch", tStr),
			col("sandbox_provider", tStr), col("sandbox_template", tStr), col("sandbox_network_allowed", tBool),
			col("sandbox_cpu_seconds", tInt), col("sandbox_memory_mb", tInt), col("sandbox_max_processes", tInt),
			col("sandbox_idle_timeout_s", tInt),
			col("gov_budget_per_run_usd", tFloat), col("gov_budget_per_day_usd", tFloat), col("gov_max_steps", tInt),
			col("gov_wall_clock_s", tInt), col("gov_uncertainty_threshold", tFloat), col("gov_confirmation_ttl_s", tInt),
			col("policy_rules", tText), col("created_at", tTime), col("updated_at", tTime),
		},
		uniques: [][]string{{"name"}},
	},
	{
		name: "project_members",
		cols: []column{
			col("project_id", tBigint), col("user_id", tBigint), col("role", tStr), col("created_at", tTime),
		},
		pk:      []string{"project_id", "user_id"},
		indexes: [][]string{{"user_id"}},
		fks:     []foreignKey{{"project_id", "projects", "id"}, {"user_id", "users", "id"}},
	},
	{
		name: "identities",
		cols: []column{
			col("provider", tStr), col("external_id", tStr), col("user_id", tBigint), col("created_at", tTime),
		},
		pk:      []string{"provider", "external_id"},
		indexes: [][]string{{"user_id"}},
		fks:     []foreignKey{{"user_id", "users", "id"}},
	},
	{
		name: "project_secrets",
		cols: []column{
			col("id", tID), col("project_id", tBigint), col("name", tStr), col("ciphertext", tBlob),
			col("key_version", tInt), col("updated_by", tStr), col("created_at", tTime), col("updated_at", tTime),
		},
		uniques: [][]string{{"project_id", "name"}},
		fks:     []foreignKey{{"project_id", "projects", "id"}},
	},
	{
		name: "agent_executions",
		cols: []column{
			col("id", tStr), col("project_id", tBigint), col("status", tStr), col("surface", tStr),
			col("thread_ref", tText), col("requester", tStr), col("requester_user_id", tBigint),
			col("task", tText), col("model", tStr), col("tokens_in", tBigint), col("tokens_out", tBigint),
			col("cost_usd", tFloat), col("cost_known", tBool), col("steps", tInt),
			col("extra_budget_usd", tFloat), col("extra_steps", tInt), col("extra_wall_s", tInt),
			col("conversation", tLongText), col("summary", tText), col("error", tText),
			col("owner", tStr), col("lease_until", tTime), col("created_at", tTime),
			ncol("started_at", tTime), ncol("finished_at", tTime), col("updated_at", tTime),
		},
		pk:      []string{"id"},
		indexes: [][]string{{"status"}, {"project_id", "created_at"}},
	},
	{
		name: "execution_steps",
		cols: []column{
			col("id", tID), col("execution_id", tStr), col("ordinal", tInt), col("kind", tStr), col("tool", tStr),
			col("arguments", tText), col("output", tText), col("is_error", tBool), col("duration_ms", tBigint),
			col("tokens_in", tBigint), col("tokens_out", tBigint), col("cost_usd", tFloat), col("created_at", tTime),
		},
		uniques: [][]string{{"execution_id", "ordinal"}},
		fks:     []foreignKey{{"execution_id", "agent_executions", "id"}},
	},
	{
		name: "confirmations",
		cols: []column{
			col("id", tStr), col("execution_id", tStr), col("project_id", tBigint), col("kind", tStr),
			col("tool", tStr), col("action", tText), col("action_hash", tStr), col("risk", tStr),
			col("reason", tText), col("status", tStr), col("answer", tText), col("decided_by", tStr),
			ncol("decided_at", tTime), col("expires_at", tTime), col("surface_ref", tText), col("created_at", tTime),
		},
		pk:      []string{"id"},
		indexes: [][]string{{"execution_id"}, {"status", "expires_at"}},
		fks:     []foreignKey{{"execution_id", "agent_executions", "id"}},
	},
	{
		name: "execution_inputs",
		cols: []column{
			col("id", tID), col("execution_id", tStr), col("author", tStr), col("body", tText),
			col("created_at", tTime), ncol("consumed_at", tTime),
		},
		indexes: [][]string{{"execution_id", "consumed_at"}},
		fks:     []foreignKey{{"execution_id", "agent_executions", "id"}},
	},
	{
		name: "deliveries",
		cols: []column{
			col("id", tID), col("source", tStr), col("delivery_id", tStr), col("event", tStr),
			col("payload", tLongBlob), col("status", tStr), col("attempts", tInt), col("last_error", tText),
			col("received_at", tTime), col("next_attempt_at", tTime), col("claimed_by", tStr),
			ncol("claimed_until", tTime), ncol("processed_at", tTime),
		},
		uniques: [][]string{{"source", "delivery_id"}},
		indexes: [][]string{{"status", "next_attempt_at"}},
	},
	{
		name: "sandbox_leases",
		cols: []column{
			col("sandbox_id", tStr), col("provider", tStr), col("template", tStr), col("project_id", tBigint),
			col("execution_id", tStr), col("owner", tStr), col("state", tStr),
			col("created_at", tTime), col("last_used_at", tTime),
		},
		pk:      []string{"sandbox_id"},
		indexes: [][]string{{"owner"}},
	},
}

// migrations lists every schema version in order. Names sort by version.
func (db *DB) migrations() *migrate.Migrations {
	ms := migrate.NewMigrations()
	for _, m := range []struct {
		name, comment string
		up            func(ctx context.Context) error
	}{
		{"20260101000001", "initial schema", db.tables(schemaV1)},
		{"20260102000001", "inbox: claims scan only their own source", func(ctx context.Context) error {
			// Without source leading the index, a worker's FOR UPDATE scan
			// locked other sources' rows, and their workers skipped them.
			_, err := db.bun.ExecContext(ctx, "CREATE INDEX "+ident(db.dialect, "ix_deliveries_source_status_next")+" ON "+ident(db.dialect, "deliveries")+" (source, status, next_attempt_at)")
			return err
		}},
		{"20260201000001", "github: oauth tokens, progress comments, requested redeliveries", db.tables(schemaGitHub)},
		{"20260201000002", "github: redelivery requests retried until GitHub accepts them", db.tables(schemaGitHubRedelivery)},
		{"20260301000001", "chat surfaces: channel bindings, thread index, slack workspaces", db.tables(schemaSlack)},
		{"20260401000001", "settings page: sessions, login tokens, oauth states, secret audit", db.tables(schemaWeb)},
		{"20260601000001", "inputs: a redelivered message is added once", func(ctx context.Context) error {
			for _, q := range []string{
				"ALTER TABLE " + ident(db.dialect, "execution_inputs") + " ADD COLUMN " + ident(db.dialect, "dedupe_key") + " " + sqlType(db.dialect, tStr) + " NULL",
				"CREATE UNIQUE INDEX " + ident(db.dialect, "uq_execution_inputs_dedupe") + " ON " + ident(db.dialect, "execution_inputs") + " (execution_id, dedupe_key)",
			} {
				if _, err := db.bun.ExecContext(ctx, q); err != nil {
					return err
				}
			}
			return nil
		}},
		{"20261201000001", "limits: once keys (courtesy replies, replayed webhooks) and counted attempts (link codes)", db.tables(schemaLimits)},
		{"20261202000001", "runs: limits set for one run (hero run --max-steps, --budget, --timeout)", func(ctx context.Context) error {
			for _, c := range [][2]string{{"limit_steps", tInt}, {"limit_budget_usd", tFloat}, {"limit_wall_s", tInt}} {
				q := "ALTER TABLE " + ident(db.dialect, "agent_executions") + " ADD COLUMN " + ident(db.dialect, c[0]) + " " + sqlType(db.dialect, c[1]) + " NOT NULL DEFAULT 0"
				if _, err := db.bun.ExecContext(ctx, q); err != nil {
					return err
				}
			}
			return nil
		}},
		{"20261202000101", "projects: a disk limit for sandboxes", db.addColumns("projects",
			"sandbox_disk_mb "+sqlType(db.dialect, tInt)+" NOT NULL DEFAULT 0")},
		{"20261202000201", "chat accounts: slack workspaces allowed by a site administrator, link and unlink audit", func(ctx context.Context) error {
			// Existing installs start unapproved: anyone could install
			// before, so a site administrator allows them on the settings page.
			if _, err := db.bun.ExecContext(ctx, "ALTER TABLE "+ident(db.dialect, "slack_teams")+" ADD COLUMN "+ident(db.dialect, "approved_by")+" "+sqlType(db.dialect, tStr)+" NOT NULL DEFAULT ''"); err != nil {
				return err
			}
			return db.createTables(ctx, schemaAccounts)
		}},
		{"20261202000301", "project audit log: member and settings changes from the page and the command line", db.tables(schemaAudit)},
		{"20261202000401", "sandbox leases: the owner's host, process and heartbeat, for reclaiming orphans", db.addColumns("sandbox_leases",
			"host "+sqlType(db.dialect, tStr)+" NOT NULL DEFAULT ''",
			"process "+sqlType(db.dialect, tStr)+" NOT NULL DEFAULT ''",
			"heartbeat_at "+sqlType(db.dialect, tTime)+" NULL")},
		{"20261202000501", "kanban: boards, columns, cards, card history, card threads and runs", db.tables(schemaKanban)},
		{"20261202000601", "projects: dependency installs get the project's secrets only when asked", db.addColumns("projects",
			"sandbox_install_secrets "+sqlType(db.dialect, tBool)+" NOT NULL DEFAULT 0")},
		{"20261202000901", "singleton leases: jobs one replica runs (the Discord gateway, reconcilers)", db.tables(schemaSingleton)},
		{"20261203000101", "login tokens: the replica that issued an admin link, so a start revokes only its own", db.addColumns("web_login_tokens",
			"issuer "+sqlType(db.dialect, tStr)+" NOT NULL DEFAULT ''")},
		{"20261203000201", "schedules: recurring runs, digests, reminders and their claimed slots", db.tables(schemaSchedules)},
		{"20261203000901", "progress messages: where each chat surface shows a run's progress, kept across restarts", db.tables(schemaProgress)},
		{"20261204000101", "schedules: a claimed slot holds a lease; another replica claims it again when it lapses unfired", db.addSlotLeases},
		{"20261204000201", "projects: every issue a trusted author opens can become a card", db.addColumns("projects",
			"issues_become_cards "+sqlType(db.dialect, tBool)+" NOT NULL DEFAULT 0")},
		{"20261205000101", "kanban: one card per issue (deliveries handled at the same moment made two)", db.oneCardPerIssue},
	} {
		ms.Add(migrate.Migration{
			Name:    m.name,
			Comment: m.comment,
			Up:      func(ctx context.Context, _ *migrate.Migrator, _ *migrate.Migration) error { return m.up(ctx) },
		})
	}
	return ms
}

// addColumns is a migration step that adds columns (name and SQL type
// each) to a table.
func (db *DB) addColumns(table string, cols ...string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		for _, c := range cols {
			name, typ, _ := strings.Cut(c, " ")
			q := "ALTER TABLE " + ident(db.dialect, table) + " ADD COLUMN " + ident(db.dialect, name) + " " + typ
			if _, err := db.bun.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("add column %s.%s: %w", table, name, err)
			}
		}
		return nil
	}
}

// tables is a migration step that creates tables.
func (db *DB) tables(ts []table) func(ctx context.Context) error {
	return func(ctx context.Context) error { return db.createTables(ctx, ts) }
}

func (db *DB) createTables(ctx context.Context, tables []table) error {
	var stmts []string
	for _, t := range tables {
		stmts = append(stmts, t.statements(db.dialect)...)
	}
	exec := func(ctx context.Context, idb bun.IDB) error {
		for _, s := range stmts {
			if _, err := idb.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", firstLine(s), err)
			}
		}
		return nil
	}
	if db.dialect == DialectSQLite {
		// SQLite DDL is transactional: all tables or none.
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return exec(ctx, tx) })
	}
	return exec(ctx, db.bun)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSuffix(l, " (")
}

// migrateLockName is the MySQL named lock that serialises replicas running
// migrations at the same time; named locks are server-wide, so the database
// name is appended to leave other databases on the server alone.
const migrateLockName = "hero_migrate:"

// Migrate brings the schema to the latest version. It is idempotent and is
// run by `hero migrate` and at every `hero serve` start. On MySQL, replicas
// that start together take turns through a named lock (GET_LOCK), which the
// server releases by itself if a replica dies while holding it; the ones
// that come later find nothing left to do. It waits for the lock as long as
// ctx allows (at most 5 minutes). On SQLite, processes sharing the file
// take turns through an flock on <file>.migrate-lock.
func (db *DB) Migrate(ctx context.Context) error {
	if db.path != "" {
		unlock, err := lockFile(ctx, db.path+".migrate-lock")
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer unlock()
	}
	if db.dialect == DialectMySQL {
		conn, err := db.bun.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer conn.Close()
		wait := 5 * time.Minute
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT(?, DATABASE()), ?)", migrateLockName, int(wait.Seconds())).Scan(&got); err != nil {
			return fmt.Errorf("migrate: take lock %s: %w", migrateLockName, err)
		}
		if !got.Valid || got.Int64 != 1 {
			return fmt.Errorf("migrate: another replica held lock %s for more than %s", migrateLockName, wait.Round(time.Second))
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(CONCAT(?, DATABASE()))", migrateLockName)
	}

	m := migrate.NewMigrator(db.bun, db.migrations(), migrate.WithTableName("hero_migrations"),
		migrate.WithLocksTableName("hero_migration_locks"), migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("migrate: init: %w", err)
	}
	group, err := m.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if !group.IsZero() {
		db.log.Info("database migrated", "group", group.ID, "migrations", group.Migrations.String())
	}
	return nil
}

// lockFile takes an exclusive flock on path, polling so that ctx can end
// the wait. The kernel drops the lock if the process dies.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}
