package store_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// TestLimits covers once keys and counted attempts on SQLite and (with
// HERO_TEST_MYSQL_URL) MariaDB: they are what keeps courtesy replies,
// replayed webhooks and link-code guesses limited across replicas.
func TestLimits(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		db := storetest.OpenURL(t, url)
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
		// Released by someone else, the claim stays; released by its
		// owner, the next claim takes it (a failed post is tried again).
		must(t, db.ReleaseClaim(ctx, kind, "o/r#1/stranger/2026-12-01", "d2"))
		if first, _ = db.ClaimOnce(ctx, kind, "o/r#1/stranger/2026-12-01", "d3", now); first != "d1" {
			t.Fatalf("after a stranger's release: %q, want d1", first)
		}
		must(t, db.ReleaseClaim(ctx, kind, "o/r#1/stranger/2026-12-01", "d1"))
		if first, _ = db.ClaimOnce(ctx, kind, "o/r#1/stranger/2026-12-01", "d3", now); first != "d3" {
			t.Fatalf("after the owner's release: %q, want d3", first)
		}
		must(t, db.ReleaseClaim(ctx, kind, "o/r#1/stranger/2026-12-01", "d3"))
		must(t, db.ReleaseClaim(ctx, kind, "o/r#1/stranger/2026-12-01", "d3"))
		must2(db.ClaimOnce(ctx, kind, "o/r#1/stranger/2026-12-01", "d1", now))
		must2(db.ClaimOnce(ctx, kind, "old", "d3", now.Add(-2*time.Hour)))
		if n, err := db.OnceRank(ctx, kind, "o/r#1/stranger/2026-12-01", now.Add(-time.Hour)); err != nil || n != 1 {
			t.Fatalf("OnceRank in the last hour = %d, %v; want 1", n, err)
		}
		if n, err := db.OnceRank(ctx, kind, "old", now.Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("OnceRank of a claim older than the window = %d, %v; want 0", n, err)
		}
		// Claims made at the same moment rank one after the other, so a
		// cap of N lets exactly N of them through.
		for _, k := range []string{"same-b", "same-a", "same-c"} {
			must2(db.ClaimOnce(ctx, kind, k, "d", now.Add(time.Minute)))
		}
		for want, k := range []string{"same-a", "same-b", "same-c"} {
			if n, err := db.OnceRank(ctx, kind, k, now.Add(-time.Hour)); err != nil || n != want+2 {
				t.Fatalf("OnceRank(%s) = %d, %v; want %d", k, n, err, want+2)
			}
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

// TestTakeOverClaim: a claim older than the grace period (its claimer
// died mid-work) is taken over by exactly one of racing replicas; a fresh
// one is not, and the new owner's claim is fresh again.
func TestTakeOverClaim(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		db := storetest.OpenURL(t, url)
		ctx := t.Context()
		kind := uniq("take")
		now := time.Now()
		if _, err := db.ClaimOnce(ctx, kind, "card@C1", "dead/1", now.Add(-10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ClaimOnce(ctx, kind, "card@C2", "busy/1", now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if ok, err := db.TakeOverClaim(ctx, kind, "card@C2", "r1", now.Add(-5*time.Minute), now); err != nil || ok {
			t.Fatalf("took over a claim within its grace period: %v, %v", ok, err)
		}
		if ok, err := db.TakeOverClaim(ctx, kind, "card@none", "r1", now.Add(-5*time.Minute), now); err != nil || ok {
			t.Fatalf("took over a claim that does not exist: %v, %v", ok, err)
		}
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				ok, err := db.TakeOverClaim(ctx, kind, "card@C1", fmt.Sprintf("r%d", i), now.Add(-5*time.Minute), now)
				if err != nil {
					t.Error(err)
				}
				if ok {
					won.Add(1)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d replicas took over the stale claim, want 1", won.Load())
		}
		first, err := db.ClaimOnce(ctx, kind, "card@C1", "late", now)
		if err != nil || !strings.HasPrefix(first, "r") {
			t.Fatalf("owner after the take-over %q, %v", first, err)
		}
		if ok, _ := db.TakeOverClaim(ctx, kind, "card@C1", "r9", now.Add(-5*time.Minute), now); ok {
			t.Fatal("a claim just taken over was taken over again")
		}
	})
}

// TestAccountAudit: unlinking removes only one's own account, is audited,
// and keeps the account from being matched by email again.
func TestAccountAudit(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		db := storetest.OpenURL(t, url)
		ctx := t.Context()
		a, err := db.UpsertUser(ctx, uniq("a")+"@example.com", "A")
		must(t, err)
		b, err := db.UpsertUser(ctx, uniq("b")+"@example.com", "B")
		must(t, err)
		ext := uniq("T1/U")
		must(t, db.LinkIdentity(ctx, "slack", ext, a.ID))
		must(t, db.AuditAccount(ctx, a.ID, "slack", ext, store.AccountMatched, "slack:"+ext))
		if gone, err := db.IdentityUnlinked(ctx, "slack", ext); err != nil || gone {
			t.Fatalf("IdentityUnlinked before = %v, %v", gone, err)
		}
		if err := db.UnlinkIdentity(ctx, b.ID, "slack", ext, "web:"+b.Email); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unlink someone else's account: %v", err)
		}
		must(t, db.UnlinkIdentity(ctx, a.ID, "slack", ext, "web:"+a.Email))
		if _, err := db.UserByIdentity(ctx, "slack", ext); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("still linked: %v", err)
		}
		if gone, err := db.IdentityUnlinked(ctx, "slack", ext); err != nil || !gone {
			t.Fatalf("IdentityUnlinked after = %v, %v", gone, err)
		}
		log, err := db.ListAccountAudit(ctx, a.ID, 10)
		must(t, err)
		if len(log) != 2 || log[0].Action != store.AccountUnlinked || log[0].Actor != "web:"+a.Email || log[1].Action != store.AccountMatched {
			t.Fatalf("audit %+v", log)
		}
		// Linked again with a code: matched normally from then on.
		must(t, db.LinkIdentity(ctx, "slack", ext, a.ID))
		must(t, db.AuditAccount(ctx, a.ID, "slack", ext, store.AccountLinked, "slack:"+ext))
		if gone, _ := db.IdentityUnlinked(ctx, "slack", ext); gone {
			t.Fatal("relinked account still counts as unlinked")
		}
	})
}
