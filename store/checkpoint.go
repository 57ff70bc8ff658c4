package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/uptrace/bun/driver/sqliteshim"
)

// SQLite's automatic checkpoint runs inside the commit that takes the WAL
// past its threshold: that commit copies the log into the database file and
// syncs it, and every write queued behind the one connection waits for it
// (10–40 ms stalls in a burst of acknowledged webhooks). hero moves the
// work off the commit path: the writing connection checkpoints only as a
// backstop, far later than SQLite's default of 1,000 pages, and a second
// connection checkpoints in the background, which SQLite allows while
// the writer goes on (PASSIVE: it copies what no reader still needs and
// never waits for a lock).
const (
	// backstopCheckpointPages is the WAL size (4 KiB pages, so 64 MiB) at
	// which a commit checkpoints anyway: the background checkpointer has
	// stalled or a long reader keeps it from finishing.
	backstopCheckpointPages = 16384
	// checkpointEvery is the background checkpointer's period by default.
	checkpointEvery = time.Second
)

// WithCheckpointInterval sets how often the background checkpointer of a
// file-backed SQLite database runs (default one second); it does not apply
// to MySQL or to an in-memory database.
func WithCheckpointInterval(d time.Duration) Option {
	return func(db *DB) { db.checkpointEvery = d }
}

// checkpointer copies a SQLite database's WAL into its file in the
// background, from a connection of its own.
type checkpointer struct {
	conn *sql.DB
	stop context.CancelFunc
	done chan struct{}
}

// startCheckpointer opens a second connection to the database at path and
// checkpoints its WAL every interval until stopped.
func startCheckpointer(ctx context.Context, path string, every time.Duration, log *slog.Logger) (*checkpointer, error) {
	conn, err := sql.Open(sqliteshim.ShimName, "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s for checkpoints: %w", path, err)
	}
	conn.SetMaxOpenConns(1)
	conn.SetConnMaxLifetime(0)
	conn.SetConnMaxIdleTime(0)
	if err := conn.PingContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open sqlite %s for checkpoints: %w", path, err)
	}
	run, stop := context.WithCancel(context.Background())
	c := &checkpointer{conn: conn, stop: stop, done: make(chan struct{})}
	go c.loop(run, every, log)
	return c, nil
}

func (c *checkpointer) loop(ctx context.Context, every time.Duration, log *slog.Logger) {
	defer close(c.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// busy is 1 when another checkpoint was running; the frames
		// left for a reader are copied on a later tick.
		var busy, logFrames, copied int
		err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &copied)
		if err != nil && ctx.Err() == nil {
			log.Warn("background WAL checkpoint failed; commits checkpoint at the backstop size instead", "err", err)
		}
	}
}

// close stops the loop and closes its connection.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.conn.Close()
}
