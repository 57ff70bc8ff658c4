// Package storetest opens real databases for tests: SQLite in the
// test's temporary directory, and MariaDB or MySQL when
// HERO_TEST_MYSQL_URL is set (scripts/with-mariadb.sh sets it), both
// migrated and with a keyring, closed when the test ends.
package storetest

import (
	"log/slog"
	"os"
	"path/filepath"
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
		url := os.Getenv("HERO_TEST_MYSQL_URL")
		if url == "" {
			if os.Getenv("CI") != "" {
				t.Fatal("HERO_TEST_MYSQL_URL is not set but CI is: run the tests through scripts/with-mariadb.sh")
			}
			t.Skip("HERO_TEST_MYSQL_URL not set; run the test through scripts/with-mariadb.sh for the MariaDB variant")
		}
		t.Parallel()
		fn(t, url)
	})
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
