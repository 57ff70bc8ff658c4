package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// TestSingletons: of two replicas running the same singleton job, only the
// lease holder runs it; when the holder stops cleanly its lease is back
// in the database by the time wait returns, and the other replica runs
// the job at its next tick, before the old lease would have lapsed. On
// SQLite and MariaDB.
func TestSingletons(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const every = 300 * time.Millisecond
		name := fmt.Sprintf("test-job-%d", time.Now().UnixNano())
		var (
			mu   sync.Mutex
			runs []string // holder of each run, in order
		)
		ran := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), runs...) }
		type replica struct {
			s    *singletons
			stop context.CancelFunc
		}
		start := func(holder string) replica {
			s := newSingletons(db, slog.New(slog.DiscardHandler), holder, newLoops(slog.New(slog.DiscardHandler)))
			ctx, stop := context.WithCancel(t.Context())
			t.Cleanup(func() { stop(); s.work.wait(10 * time.Second) })
			s.start(ctx, name, every, func(context.Context) {
				mu.Lock()
				runs = append(runs, holder)
				mu.Unlock()
			})
			return replica{s, stop}
		}
		reps := map[string]replica{"a": start("a"), "b": start("b")}
		waitFor(t, 5*time.Second, "the job runs 3 times", func() bool { return len(ran()) >= 3 })
		first := ran()[0]
		for _, h := range ran() {
			if h != first {
				t.Fatalf("both replicas ran the job: %v", ran())
			}
		}
		other := map[string]string{"a": "b", "b": "a"}[first]
		l, err := db.Singleton(t.Context(), name)
		if err != nil || l.Holder != first {
			t.Fatalf("lease %+v (%v); %s runs the job", l, err, first)
		}

		// The holder stops: its lease is given back before wait returns.
		until := l.Until
		stopped := time.Now()
		reps[first].stop()
		reps[first].s.work.wait(10 * time.Second)
		if l, err := db.Singleton(t.Context(), name); err == nil && l.Holder == first {
			t.Fatalf("%s stopped still holding the lease until %s", first, l.Until.Format(time.RFC3339Nano))
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		n := len(ran())
		waitFor(t, 10*every, other+" runs the job", func() bool { return len(ran()) > n })
		tookOver := time.Since(stopped)
		if !stopped.Add(tookOver).Before(until) {
			t.Errorf("%s ran the job %s after %s stopped, not before its lease would have lapsed (%s)", other, tookOver, first, until.Sub(stopped))
		}
		for _, h := range ran()[n:] {
			if h != other {
				t.Fatalf("%s ran the job after it stopped: %v", first, ran())
			}
		}
	})
}

// TestSingletonTickFinishesAtShutdown: a tick under way when the replica
// shuts down is not cut off (an orphan kill already sent is finished and
// logged), the lease is given back only after it, and a tick that would
// not end by itself is cancelled tickGrace after shutdown.
func TestSingletonTickFinishesAtShutdown(t *testing.T) {
	db := storetest.Open(t)
	const every = 50 * time.Millisecond
	run := func(t *testing.T, name string, job func(ctx context.Context) error) (err error, waited time.Duration) {
		s := newSingletons(db, slog.New(slog.DiscardHandler), "a", newLoops(slog.New(slog.DiscardHandler)))
		ctx, stop := context.WithCancel(t.Context())
		defer stop()
		started, done := make(chan struct{}), make(chan error, 1)
		var once sync.Once
		s.start(ctx, name, every, func(ctx context.Context) {
			once.Do(func() { close(started); done <- job(ctx) })
		})
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("the job never ran")
		}
		stopped := time.Now()
		stop()
		s.work.wait(10 * time.Second)
		waited = time.Since(stopped)
		if l, lerr := db.Singleton(t.Context(), name); lerr == nil && l.Holder == "a" {
			t.Errorf("the lease is still held after shutdown (until %s)", l.Until.Format(time.RFC3339Nano))
		}
		return <-done, waited
	}

	t.Run("finishes", func(t *testing.T) {
		err, waited := run(t, "tick-finishes", func(ctx context.Context) error {
			select { // a request already sent, answered 300 ms later
			case <-time.After(300 * time.Millisecond):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil {
			t.Fatalf("the tick under way was cut off at shutdown: %v", err)
		}
		if waited < 200*time.Millisecond {
			t.Errorf("shutdown returned %s after it began, before the tick under way ended", waited)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		err, waited := run(t, "tick-bounded", func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a tick that does not end by itself returned %v", err)
		}
		if waited < tickGrace-100*time.Millisecond || waited > tickGrace+2*time.Second {
			t.Errorf("a tick that does not end by itself was cancelled %s after shutdown, want about %s", waited, tickGrace)
		}
	})
}
