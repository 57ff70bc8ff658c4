package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/hero-dev/hero/store"
)

// singletons runs the periodic jobs that one replica of several runs (the
// GitHub redelivery job, E2B's orphan killer), each under its own
// singleton lease, and hands the leases back on a clean shutdown so
// another replica takes a job over at its next tick instead of waiting
// for the lease to lapse. The jobs run on work, whose wait covers the
// leases given back.
type singletons struct {
	db     *store.DB
	log    *slog.Logger
	holder string
	work   *loops
}

// newSingletons returns the singleton jobs of the replica named holder
// (host-pid, as in run leases), run on work.
func newSingletons(db *store.DB, log *slog.Logger, holder string, work *loops) *singletons {
	return &singletons{db: db, log: log, holder: holder, work: work}
}

// start runs job every period on the one replica holding the singleton
// lease name (3 periods long) until ctx ends. The lease is claimed at
// once and renewed at every tick just before the job runs, so the job
// runs only while this replica holds it; it first runs one period after
// start. A tick under way when ctx ends finishes (see tickGrace); then
// the lease is given back (work's wait waits for that).
func (s *singletons) start(ctx context.Context, name string, every time.Duration, job func(context.Context)) {
	s.work.start(ctx, "singleton job "+name, func(ctx context.Context) error {
		defer s.release(ctx, name)
		t := time.NewTicker(every)
		defer t.Stop()
		held := s.claim(ctx, name, every, false)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if held = s.claim(ctx, name, every, held); held {
					runTick(ctx, job)
				}
			}
		}
	})
}

// tickGrace is how long a job's tick under way at shutdown may go on
// after ctx ends, less than the 5 s `hero serve` waits for its loops. A
// sandbox kill or redelivery request already sent is then finished and
// logged, not cut off with its outcome unknown.
const tickGrace = 3 * time.Second

// runTick runs job with a context that ends tickGrace after ctx does.
func runTick(ctx context.Context, job func(context.Context)) {
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		select {
		case <-time.After(tickGrace):
			cancel()
		case <-jctx.Done():
		}
	})
	defer stop()
	job(jctx)
}

// claim takes or renews the lease on name; held says whether this replica
// held it until now (to log only when it starts holding it).
func (s *singletons) claim(ctx context.Context, name string, every time.Duration, held bool) bool {
	ok, err := s.db.ClaimSingleton(ctx, name, s.holder, 3*every)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.log.Warn("claim singleton job", "job", name, "err", err)
		}
		return false
	case ok && !held:
		s.log.Info("this replica runs the singleton job", "job", name, "holder", s.holder)
	}
	return ok
}

// release gives the lease on name back if this replica holds it (whether
// or not the last claim said so: it may have won a claim whose answer was
// lost).
func (s *singletons) release(ctx context.Context, name string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.db.ReleaseSingleton(rctx, name, s.holder); err != nil {
		s.log.Warn("release singleton job", "job", name, "err", err)
	}
}
