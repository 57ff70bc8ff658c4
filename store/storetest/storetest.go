// Package storetest opens real databases for tests: SQLite in the
// test's temporary directory, and MariaDB or MySQL when
// HERO_TEST_MYSQL_URL is set (scripts/with-mariadb.sh sets it), both
// migrated and with a keyring, closed when the test ends; and fresh
// MariaDB databases of a test's own (FreshMySQL).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/vault"
)

// Open returns a migrated SQLite database in a fresh temporary
// directory, with a keyring of its own there.
func Open(t testing.TB) *store.DB {
	t.Helper()
	return OpenIn(t, t.TempDir())
}

// OpenIn is Open in dir: a second OpenIn of the same dir is the same
// database (a restart).
func OpenIn(t testing.TB, dir string) *store.DB {
	t.Helper()
	kr, err := vault.LoadOrCreate(dir, "", "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("storetest: keyring: %v", err)
	}
	return open(t, "", dir, kr)
}

// Each runs fn on a fresh SQLite database and, when HERO_TEST_MYSQL_URL
// is set, on that MariaDB (shared: fn must create what it reads); in CI
// a missing MariaDB fails the test.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	EachURL(t, func(t *testing.T, url string) { fn(t, OpenURL(t, url)) })
}

// EachURL is Each for tests that open the database themselves, more than
// once (replicas, restarts): fn gets its URL ("sqlite://…" or
// HERO_TEST_MYSQL_URL) to pass to OpenURL.
func EachURL(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, "sqlite://"+filepath.Join(t.TempDir(), "hero.db"))
	})
	t.Run("mysql", func(t *testing.T) {
		url := mysqlURL(t)
		t.Parallel()
		fn(t, url)
	})
}

// mysqlURL is HERO_TEST_MYSQL_URL. Without it the test is skipped, or
// fails when CI is set (CI must not pass by skipping MariaDB).
func mysqlURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("HERO_TEST_MYSQL_URL")
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("HERO_TEST_MYSQL_URL is not set but CI is: run the tests through scripts/with-mariadb.sh")
		}
		t.Skip("HERO_TEST_MYSQL_URL not set; run the test through scripts/with-mariadb.sh for the MariaDB variant")
	}
	return url
}

// FreshMySQL returns the URL of an empty MariaDB database of the test's
// own, created next to HERO_TEST_MYSQL_URL's (scripts/with-mariadb.sh
// lets its user create hero_test_* databases) and dropped when the test
// ends; name goes into the database's name to tell it apart. It is for
// tests that need a whole database to themselves — several hero
// processes claiming every due schedule or every orphan in it — and
// open it themselves (OpenURL, DATABASE_URL). Like EachURL it skips the
// test without HERO_TEST_MYSQL_URL, and fails it when CI is set.
func FreshMySQL(t testing.TB, name string) string {
	t.Helper()
	base := mysqlURL(t)
	u, err := neturl.Parse(base)
	if err != nil {
		t.Fatalf("storetest: HERO_TEST_MYSQL_URL: %v", err)
	}
	db, err := store.Open(t.Context(), base, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("storetest: open HERO_TEST_MYSQL_URL: %v", err)
	}
	// Kept open to drop the database when the test ends.
	t.Cleanup(func() { db.Close() })
	var b [4]byte
	rand.Read(b[:])
	dbName := strings.TrimPrefix(u.Path, "/") + "_" + name + "_" + hex.EncodeToString(b[:])
	if _, err := db.Bun().ExecContext(t.Context(), "CREATE DATABASE `"+dbName+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("storetest: create a database for the test (scripts/with-mariadb.sh grants hero_test_*): %v", err)
	}
	t.Cleanup(func() { db.Bun().ExecContext(context.Background(), "DROP DATABASE `"+dbName+"`") })
	u.Path = "/" + dbName
	return u.String()
}

// OpenURL opens and migrates the database at url with a fixed test
// keyring, so that every OpenURL of one database reads the secrets
// another sealed.
func OpenURL(t testing.TB, url string) *store.DB {
	t.Helper()
	kr, err := vault.Parse("1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "00112233445566778899aabbccddeeff")
	if err != nil {
		t.Fatalf("storetest: keyring: %v", err)
	}
	return open(t, url, "", kr)
}

func open(t testing.TB, url, dir string, kr *vault.Keyring) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), url, dir, slog.New(slog.DiscardHandler), store.WithKeyring(kr))
	if err != nil {
		t.Fatalf("storetest: open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("storetest: migrate: %v", err)
	}
	return db
}
