// Package inbox processes platform deliveries after they were persisted:
// every webhook or event is stored (store.Enqueue / store.InboxWriter)
// before the platform gets its acknowledgement, and a Worker then claims it
// with a lease, hands it to the surface's handler, and retries with backoff
// or parks it as failed. Several replicas can run workers on one database:
// a claim is a row lease, so no delivery is handled twice at once.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hero-dev/hero/store"
)

// Handler processes one delivery. Returning nil completes it; an error
// schedules a retry, unless it wraps ErrPermanent, which parks it at once.
type Handler func(ctx context.Context, d *store.Delivery) error

// ErrPermanent marks a delivery that no retry can fix (a payload that does
// not parse, an event for an unknown installation).
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so the worker parks the delivery without retrying.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Queue is the part of the store a Worker uses; *store.DB implements it.
type Queue interface {
	ClaimDeliveries(ctx context.Context, owner string, lease time.Duration, n int, sources ...string) ([]store.Delivery, error)
	CompleteDeliveries(ctx context.Context, ids ...int64) error
	FailDelivery(ctx context.Context, id int64, errText string, maxAttempts int, backoff time.Duration) error
}

// Config tunes a Worker; zero values take the defaults noted.
type Config struct {
	Owner       string        // this replica, recorded on claims (required)
	Lease       time.Duration // how long a claim lasts (default 2 min)
	Batch       int           // deliveries claimed per poll (default 16)
	Concurrency int           // handlers running at once (default 8)
	MaxAttempts int           // then the delivery is parked as failed (default 5)
	Backoff     time.Duration // first retry delay, doubled per attempt (default 5 s)
	Poll        time.Duration // idle poll interval (default 1 s); Kick wakes it sooner
}

// kickDelay is how long a kicked worker waits before claiming, so that a
// burst is claimed in a few batches instead of one claim per delivery.
const kickDelay = 25 * time.Millisecond

// Worker drains one source's deliveries.
type Worker struct {
	q       Queue
	source  string
	handle  Handler
	cfg     Config
	log     *slog.Logger
	kick    chan struct{}
	handled func(d *store.Delivery, err error) // test and metrics hook
}

// NewWorker returns a worker for deliveries of source ("github", "slack").
func NewWorker(q Queue, source string, h Handler, cfg Config, log *slog.Logger) (*Worker, error) {
	if q == nil || h == nil || source == "" || cfg.Owner == "" {
		return nil, errors.New("inbox: queue, source, handler and owner are required")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 16
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 5 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{q: q, source: source, handle: h, cfg: cfg, log: log.With("source", source), kick: make(chan struct{}, 1)}, nil
}

// OnHandled sets a hook called after each delivery with the handler's
// result (for metrics and tests). Call it before Run.
func (w *Worker) OnHandled(f func(d *store.Delivery, err error)) { w.handled = f }

// Kick wakes the worker now (call it after enqueuing), instead of at the
// next poll.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run claims and handles deliveries until ctx ends, then waits for the
// handlers in flight and records their completions.
func (w *Worker) Run(ctx context.Context) error {
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	completed := make(chan *store.Delivery, 2*w.cfg.Concurrency)
	flushed := make(chan struct{})
	go func() { w.complete(ctx, completed); close(flushed) }()
	defer func() { wg.Wait(); close(completed); <-flushed }()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kick:
			// Let a burst of deliveries land first: claiming after each
			// one would compete with the intake's commits for the writer
			// (SQLite has one), which is what the platform's ack waits on.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(kickDelay):
			}
		case <-timer.C:
		}
		free := w.cfg.Concurrency - len(sem)
		n := min(w.cfg.Batch, free)
		var ds []store.Delivery
		if n > 0 {
			var err error
			ds, err = w.q.ClaimDeliveries(ctx, w.cfg.Owner, w.cfg.Lease, n, w.source)
			if err != nil && ctx.Err() == nil {
				w.log.Error("claim deliveries", "err", err)
			}
		}
		for i := range ds {
			d := ds[i]
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				w.process(ctx, &d, completed)
			}()
		}
		next := w.cfg.Poll
		if len(ds) == n && n > 0 {
			next = 0 // a full batch: there may be more waiting
		}
		timer.Reset(next)
	}
}

func (w *Worker) process(ctx context.Context, d *store.Delivery, completed chan<- *store.Delivery) {
	hctx, cancel := context.WithTimeout(ctx, w.cfg.Lease)
	err := w.safeHandle(hctx, d)
	cancel()
	if err == nil {
		completed <- d // recorded in a batch by complete
		return
	}
	// Record the failure even when shutting down.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer rcancel()
	attempts := w.cfg.MaxAttempts
	if errors.Is(err, ErrPermanent) {
		attempts = 0 // parks now
	}
	w.log.Warn("delivery failed", "delivery", d.DeliveryID, "event", d.Event, "attempt", d.Attempts, "err", err)
	if ferr := w.q.FailDelivery(rctx, d.ID, err.Error(), attempts, w.cfg.Backoff); ferr != nil {
		w.log.Error("record delivery failure", "delivery", d.DeliveryID, "err", ferr)
	}
	if w.handled != nil {
		w.handled(d, err)
	}
}

// complete records handled deliveries as done, as many per transaction
// as have finished meanwhile. A crash before the write means the delivery
// is handled again once its lease lapses: handlers are idempotent.
func (w *Worker) complete(ctx context.Context, completed <-chan *store.Delivery) {
	for d := range completed {
		batch := []*store.Delivery{d}
	more:
		for len(batch) < 256 {
			select {
			case d, ok := <-completed:
				if !ok {
					break more
				}
				batch = append(batch, d)
			default:
				break more
			}
		}
		ids := make([]int64, len(batch))
		for i, d := range batch {
			ids[i] = d.ID
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := w.q.CompleteDeliveries(rctx, ids...)
		cancel()
		if err != nil {
			w.log.Error("complete deliveries", "count", len(ids), "err", err)
		}
		if w.handled != nil {
			for _, d := range batch {
				w.handled(d, nil)
			}
		}
	}
}

// safeHandle turns a handler panic into a permanent failure: one bad
// payload must not take the server down.
func (w *Worker) safeHandle(ctx context.Context, d *store.Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(fmt.Errorf("handler panicked: %v", r))
		}
	}()
	return w.handle(ctx, d)
}
