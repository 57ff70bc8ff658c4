package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/store/storetest"
)

// TestSingletonLease: one holder at a time, on SQLite and MariaDB; the
// holder renews; another takes over once the lease ran out or was
// released; racing claimants never both win.
func TestSingletonLease(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		db := storetest.OpenURL(t, url)
		ctx := t.Context()
		name := uniq("gateway")
		claim := func(holder string, ttl time.Duration) bool {
			t.Helper()
			ok, err := db.ClaimSingleton(ctx, name, holder, ttl)
			must(t, err)
			return ok
		}
		if !claim("a", time.Minute) {
			t.Fatal("a could not claim a free lease")
		}
		if claim("b", time.Minute) {
			t.Fatal("b claimed a's live lease")
		}
		if !claim("a", time.Minute) {
			t.Fatal("a could not renew its lease")
		}
		must(t, db.ReleaseSingleton(ctx, name, "b")) // not b's: nothing happens
		if claim("b", time.Minute) {
			t.Fatal("b's release of a's lease freed it")
		}
		must(t, db.ReleaseSingleton(ctx, name, "a"))
		if !claim("b", 50*time.Millisecond) {
			t.Fatal("b could not claim a released lease")
		}
		time.Sleep(60 * time.Millisecond) // b dies: its lease runs out
		if !claim("a", time.Minute) {
			t.Fatal("a could not take over an expired lease")
		}
		if l, err := db.Singleton(ctx, name); err != nil || l.Holder != "a" {
			t.Fatalf("lease = %+v, %v; want held by a", l, err)
		}
		if _, err := db.ClaimSingleton(ctx, "", "a", time.Minute); err == nil {
			t.Fatal("a claim without a name was accepted")
		}

		race := uniq("race")
		var wg sync.WaitGroup
		wins := make(chan string, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := string(rune('a' + i))
				if ok, err := db.ClaimSingleton(ctx, race, h, time.Minute); err == nil && ok {
					wins <- h
				}
			}()
		}
		wg.Wait()
		close(wins)
		if n := len(wins); n != 1 {
			t.Fatalf("%d racing claimants won, want exactly 1", n)
		}
	})
}
