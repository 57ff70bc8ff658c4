package store_test

import (
	"strings"
	"testing"
	"time"
)

// TestLimits covers once keys and counted attempts on SQLite and (with
// HERO_TEST_MYSQL_URL) MariaDB: they are what keeps courtesy replies,
// replayed webhooks and link-code guesses limited across replicas.
func TestLimits(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ctx := t.Context()
		kind := uniq("kind")
		now := time.Now()

		first, err := db.ClaimOnce(ctx, kind, "o/r#1/stranger/2026-12-01", "d1", now)
		must(t, err)
		if first != "d1" {
			t.Fatalf("first claim owner %q, want d1", first)
		}
		// The same owner again (a retried delivery) still owns it; another
		// owner learns who was first.
		if first, _ = db.ClaimOnce(ctx, kind, "o/r#1/stranger/2026-12-01", "d1", now); first != "d1" {
			t.Fatalf("retry by the owner: %q", first)
		}
		if first, _ = db.ClaimOnce(ctx, kind, "o/r#1/stranger/2026-12-01", "d2", now); first != "d1" {
			t.Fatalf("second owner: %q, want d1", first)
		}
		// The same key of another kind is independent.
		if first, _ = db.ClaimOnce(ctx, kind+"x", "o/r#1/stranger/2026-12-01", "d2", now); first != "d2" {
			t.Fatalf("other kind: %q", first)
		}
		must2 := func(s string, _ error) string { return s }
		must2(db.ClaimOnce(ctx, kind, "old", "d3", now.Add(-2*time.Hour)))
		if n, err := db.CountOnce(ctx, kind, now.Add(-time.Hour)); err != nil || n != 1 {
			t.Fatalf("CountOnce last hour = %d, %v; want 1", n, err)
		}
		if _, err := db.ClaimOnce(ctx, kind, strings.Repeat("k", 300), "d", now); err == nil {
			t.Fatal("a 300-byte key was accepted")
		}

		ev := uniq("fail")
		for i := range 3 {
			must(t, db.RecordLimitEvent(ctx, ev, "slack:T1/U1", now.Add(-time.Duration(i)*10*time.Minute)))
		}
		must(t, db.RecordLimitEvent(ctx, ev, "slack:T1/U2", now))
		if n, _ := db.CountLimitEvents(ctx, ev, "slack:T1/U1", now.Add(-15*time.Minute)); n != 2 {
			t.Fatalf("U1 in 15 min = %d, want 2", n)
		}
		if n, _ := db.CountLimitEvents(ctx, ev, "", now.Add(-time.Hour)); n != 4 {
			t.Fatalf("everyone in an hour = %d, want 4", n)
		}
		n, err := db.PruneLimits(ctx, ev, now.Add(-15*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("prune = %d, %v; want 1", n, err)
		}
		if n, _ := db.PruneLimits(ctx, kind, now.Add(-time.Hour)); n != 1 {
			t.Fatalf("prune once keys = %d, want 1", n)
		}
	})
}
