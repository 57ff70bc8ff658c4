// Package store keeps hero's state in SQLite (embedded, the default) or
// MySQL/MariaDB (several replicas sharing one database): the bun models,
// versioned migrations, repository methods, the durable delivery inbox and,
// through store/vault, encrypted project secrets.
//
// Every method takes a context first and returns errors wrapped with what it
// was doing. Missing rows are ErrNotFound and unique-key violations are
// ErrConflict, on both dialects, so callers use errors.Is. Anything several
// replicas may race on (claiming a run or a delivery, deciding a
// confirmation, consuming inputs) is a conditional UPDATE or a row-locking
// transaction, never a read-then-write that assumes one process.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/hero-dev/hero/store/vault"
)

// Dialect names returned by (*DB).Dialect.
const (
	DialectSQLite = "sqlite"
	DialectMySQL  = "mysql"
)

// ErrNotFound is returned (wrapped) when the row asked for does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned (wrapped) when a write would violate a unique key,
// such as a second project with the same name.
var ErrConflict = errors.New("store: already exists")

// DB is hero's database handle. It is safe for concurrent use.
type DB struct {
	bun     *bun.DB
	dialect string
	log     *slog.Logger
	keyring *vault.Keyring
	path    string // SQLite database file; "" for MySQL and :memory:

	checkpointEvery time.Duration
	ckpt            *checkpointer // background WAL checkpoints of a SQLite file
}

// Option configures Open.
type Option func(*DB)

// WithKeyring gives the store the vault keyring that encrypts project
// secrets. Without it the secret methods return an error.
func WithKeyring(k *vault.Keyring) Option {
	return func(db *DB) { db.keyring = k }
}

// Open connects to the database named by databaseURL:
//
//	""                                SQLite file <dataDir>/hero.db
//	sqlite:///abs/path/hero.db        SQLite file
//	sqlite://:memory:                 private in-memory SQLite (tests)
//	mysql://user:pass@host:3306/db    MySQL or MariaDB over TCP
//	mysql://user:pass@/db?socket=/run/mysqld/mysqld.sock
//	                                  … over a unix socket
//
// MySQL URLs also accept tls=true|skip-verify|preferred. SQLite runs in WAL
// mode with foreign keys, synchronous=FULL (a commit is on disk when it
// returns), immediate transactions and one connection per process, so
// writers queue in the process instead of failing with SQLITE_BUSY; a
// busy timeout covers other processes on the same file. The WAL of a
// SQLite file is checkpointed by a second connection in the background
// (see checkpoint.go), so no commit waits for one. Open does not
// migrate; call Migrate.
func Open(ctx context.Context, databaseURL, dataDir string, log *slog.Logger, opts ...Option) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := &DB{log: log.With("component", "store"), checkpointEvery: checkpointEvery}
	for _, o := range opts {
		o(db)
	}
	var err error
	switch {
	case databaseURL == "":
		if dataDir == "" {
			return nil, errors.New("open database: DATABASE_URL and the data directory are both empty")
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("open database: create data directory: %w", err)
		}
		err = db.openSQLite(ctx, filepath.Join(dataDir, "hero.db"))
	case strings.HasPrefix(databaseURL, "sqlite://"):
		path, _, _ := strings.Cut(strings.TrimPrefix(databaseURL, "sqlite://"), "?")
		if path == "" {
			return nil, fmt.Errorf("open database: %q has no path (want sqlite:///abs/path or sqlite://:memory:)", databaseURL)
		}
		if path != ":memory:" {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, fmt.Errorf("open database: create directory for %s: %w", path, err)
			}
		}
		err = db.openSQLite(ctx, path)
	case strings.HasPrefix(databaseURL, "mysql://"):
		err = db.openMySQL(ctx, databaseURL)
	default:
		scheme, _, _ := strings.Cut(databaseURL, ":")
		return nil, fmt.Errorf("open database: unsupported DATABASE_URL scheme %q (want mysql://user:pass@host:3306/db or sqlite:///path)", scheme)
	}
	if err != nil {
		return nil, err
	}
	return db, nil
}

func (db *DB) openSQLite(ctx context.Context, path string) error {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	if path != ":memory:" {
		dsn += "&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
			fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", backstopCheckpointPages)
	}
	sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and queueing in the
	// pool is cheaper and more predictable than SQLITE_BUSY retries. It
	// also keeps an in-memory database alive and shared.
	sqldb.SetMaxOpenConns(1)
	sqldb.SetMaxIdleConns(1)
	sqldb.SetConnMaxLifetime(0)
	sqldb.SetConnMaxIdleTime(0)
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if path != ":memory:" {
		if db.ckpt, err = startCheckpointer(ctx, path, db.checkpointEvery, db.log); err != nil {
			sqldb.Close()
			return err
		}
		db.path = path
	}
	db.bun = bun.NewDB(sqldb, sqlitedialect.New())
	db.dialect = DialectSQLite
	return nil
}

func (db *DB) openMySQL(ctx context.Context, databaseURL string) error {
	cfg, err := mysqlConfig(databaseURL)
	if err != nil {
		return err
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("open mysql: %w", err)
	}
	sqldb := sql.OpenDB(connector)
	sqldb.SetMaxOpenConns(32)
	sqldb.SetMaxIdleConns(8)
	sqldb.SetConnMaxLifetime(5 * time.Minute)
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return fmt.Errorf("open mysql %s@%s/%s: %w", cfg.User, cfg.Addr, cfg.DBName, err)
	}
	db.bun = bun.NewDB(sqldb, mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
	db.dialect = DialectMySQL
	return nil
}

// mysqlConfig turns a mysql:// URL into a driver config. Errors never echo
// the password.
func mysqlConfig(databaseURL string) (*mysql.Config, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, errors.New("open mysql: DATABASE_URL is not a valid URL (want mysql://user:pass@host:3306/db)")
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return nil, fmt.Errorf("open mysql: DATABASE_URL needs one database name in its path (mysql://user:pass@host:3306/db), got %q", u.Path)
	}
	q := u.Query()
	if sock := q.Get("socket"); sock != "" {
		cfg.Net, cfg.Addr = "unix", sock
	} else {
		if u.Hostname() == "" {
			return nil, errors.New("open mysql: DATABASE_URL needs a host (mysql://user:pass@host:3306/db) or ?socket=/path")
		}
		port := u.Port()
		if port == "" {
			port = "3306"
		}
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(u.Hostname(), port)
	}
	for name := range q {
		switch name {
		case "socket":
		case "tls":
			cfg.TLSConfig = q.Get("tls")
		default:
			return nil, fmt.Errorf("open mysql: unsupported DATABASE_URL parameter %q (supported: socket, tls)", name)
		}
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Collation = "utf8mb4_unicode_ci"
	// Rows "matched" rather than "changed": a conditional UPDATE that
	// writes the values a row already has still counts as a win.
	cfg.ClientFoundRows = true
	cfg.Timeout = 10 * time.Second
	if err := cfg.Apply(); err != nil {
		return nil, fmt.Errorf("open mysql: %w", err)
	}
	return cfg, nil
}

// Bun is the underlying bun handle, for queries the repository methods do
// not cover. Inside RunInTx use the tx it passes, never this handle: SQLite
// has one connection, so a nested call on the handle would wait forever.
func (db *DB) Bun() *bun.DB { return db.bun }

// Dialect is "sqlite" or "mysql".
func (db *DB) Dialect() string { return db.dialect }

// Close closes the database.
func (db *DB) Close() error {
	if db.ckpt != nil {
		if err := db.ckpt.close(); err != nil {
			db.bun.Close()
			return fmt.Errorf("close database: checkpointer: %w", err)
		}
	}
	if err := db.bun.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// now is the store's clock: UTC at microsecond precision, which both
// dialects store exactly, so a value read back equals the value written.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// wrap adds context to err and maps driver errors to ErrNotFound and
// ErrConflict.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict):
		return fmt.Errorf("%s: %w", msg, err)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", msg, ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("%s: %w: %w", msg, ErrConflict, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// isUniqueViolation recognises duplicate-key errors of both drivers.
func isUniqueViolation(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062 // ER_DUP_ENTRY
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() {
		case 2067, 1555: // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
			return true
		}
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isRetryable recognises MySQL deadlocks and lock wait timeouts, after which
// the transaction can simply be run again.
func isRetryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// inTx runs fn in a transaction, retrying a few times on MySQL deadlocks.
func (db *DB) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return db.inTxOpts(ctx, nil, fn)
}

// inTxOpts is inTx with transaction options (isolation level).
func (db *DB) inTxOpts(ctx context.Context, opts *sql.TxOptions, fn func(ctx context.Context, tx bun.Tx) error) error {
	var err error
	for attempt := range 5 {
		err = db.bun.RunInTx(ctx, opts, fn)
		if err == nil || !isRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
	return err
}

// forUpdate is the row-locking suffix of a SELECT inside a transaction:
// MySQL needs it; an SQLite transaction is already exclusive (immediate).
func (db *DB) forUpdate(q *bun.SelectQuery) *bun.SelectQuery {
	if db.dialect == DialectMySQL {
		return q.For("UPDATE")
	}
	return q
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// newID returns prefix + n random lowercase base32 characters: short enough
// for people to type ("r7f3a2c9q").
func newID(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[b[i]&31]
	}
	return prefix + string(b)
}

// insertWithID inserts a row whose short id may be generated, drawing a
// new id if a generated one collides.
func (db *DB) insertWithID(ctx context.Context, model any, id *string, prefix string, n int) error {
	generated := *id == ""
	for attempt := 0; ; attempt++ {
		if generated {
			*id = newID(prefix, n)
		}
		_, err := db.bun.NewInsert().Model(model).Exec(ctx)
		if err == nil {
			return nil
		}
		if !generated || !isUniqueViolation(err) || attempt == 4 {
			if generated {
				*id = ""
			}
			return err
		}
	}
}

// upsert inserts model or, when a row with the same conflict columns
// exists, updates the given columns from it.
func (db *DB) upsert(ctx context.Context, idb bun.IDB, model any, conflict []string, update []string) error {
	q := idb.NewInsert().Model(model)
	switch db.dialect {
	case DialectMySQL:
		q = q.On("DUPLICATE KEY UPDATE")
		for _, c := range update {
			q = q.Set("? = VALUES(?)", bun.Ident(c), bun.Ident(c))
		}
	default:
		q = q.On("CONFLICT (?) DO UPDATE", bun.Safe(strings.Join(conflict, ", ")))
		for _, c := range update {
			q = q.Set("? = EXCLUDED.?", bun.Ident(c), bun.Ident(c))
		}
	}
	_, err := q.Exec(ctx)
	return err
}
