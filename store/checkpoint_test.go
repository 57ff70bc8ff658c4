package store_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
)

// TestCheckpointOffTheCommitPath: no commit copies the WAL into the
// database file (every write queued behind it would wait); the background
// checkpointer does.
func TestCheckpointOffTheCommitPath(t *testing.T) {
	t.Parallel()
	const written = 8 << 20 // twice SQLite's default checkpoint threshold
	fill := func(every time.Duration) (dbFile string, db *store.DB) {
		dir := t.TempDir()
		db, err := store.Open(t.Context(), "", dir, nil, store.WithCheckpointInterval(every))
		must(t, err)
		t.Cleanup(func() { db.Close() })
		must(t, db.Migrate(t.Context()))
		payload := bytes.Repeat([]byte("p"), 64<<10)
		for i := range written / len(payload) {
			if _, err := db.Enqueue(t.Context(), "github", fmt.Sprint(i), "push", payload); err != nil {
				t.Fatal(err)
			}
		}
		return filepath.Join(dir, "hero.db"), db
	}
	size := func(path string) int64 {
		fi, err := os.Stat(path)
		must(t, err)
		return fi.Size()
	}

	// With the checkpointer held back, everything is still in the WAL.
	path, _ := fill(time.Hour)
	if n := size(path); n > written/4 {
		t.Errorf("database file is %d bytes after %d bytes of commits: a commit checkpointed the WAL", n, written)
	}
	if n := size(path + "-wal"); n < written {
		t.Errorf("WAL is %d bytes, want all %d bytes written still in it", n, written)
	}

	// With it running, the data reaches the database file on its own.
	path, _ = fill(10 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for size(path) < written {
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes 10 s after %d bytes of commits: no background checkpoint", size(path), written)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
