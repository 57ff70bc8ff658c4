package inbox_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hero-dev/hero/inbox"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

func TestWorkerHandlesRetriesAndParks(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t)
	ctx := t.Context()
	for _, id := range []string{"ok", "flaky", "broken", "bad"} {
		if _, err := db.Enqueue(ctx, "github", id, "issue_comment", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	var flaky atomic.Int32
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{}, 16)
	w, err := inbox.NewWorker(db, "github", func(ctx context.Context, d *store.Delivery) error {
		mu.Lock()
		seen[d.DeliveryID]++
		mu.Unlock()
		switch d.DeliveryID {
		case "flaky":
			if flaky.Add(1) == 1 {
				return errors.New("temporary")
			}
		case "broken":
			return errors.New("always down")
		case "bad":
			panic("bad payload")
		}
		return nil
	}, inbox.Config{Owner: "a", MaxAttempts: 3, Backoff: time.Millisecond, Poll: 5 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.OnHandled(func(*store.Delivery, error) { done <- struct{}{} })
	runCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- w.Run(runCtx) }()
	// ok 1 + flaky 2 + broken 3 + bad 1 = 7 handler calls.
	for i := 0; i < 7; i++ {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d deliveries handled: %v", i, seen)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	counts, err := db.DeliveryCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[store.DeliveryDone] != 2 || counts[store.DeliveryFailed] != 2 {
		t.Fatalf("counts = %v, seen = %v", counts, seen)
	}
	if seen["broken"] != 3 || seen["bad"] != 1 {
		t.Errorf("attempts = %v; want broken 3 (max attempts), bad 1 (a panic is permanent)", seen)
	}
	d, err := db.Delivery(ctx, 4)
	if err != nil || d.Status != store.DeliveryFailed || d.LastError == "" {
		t.Errorf("parked delivery = %+v, %v", d, err)
	}
}
