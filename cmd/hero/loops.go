package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// loops runs the long-lived loops of `hero serve` (surfaces, inbox
// workers, the scheduler, the sandbox manager) and waits for them at
// shutdown, so what they do on the way out — the Discord gateway's lease
// given back, a claim released — happens before the database closes.
type loops struct {
	log     *slog.Logger
	wg      sync.WaitGroup
	mu      sync.Mutex
	running []string
}

func newLoops(log *slog.Logger) *loops { return &loops{log: log} }

// start runs run(ctx) in its own goroutine; an error returned before ctx
// ended is logged as name stopping.
func (l *loops) start(ctx context.Context, name string, run func(context.Context) error) {
	l.mu.Lock()
	l.running = append(l.running, name)
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() {
			l.mu.Lock()
			l.running = slices.Delete(l.running, slices.Index(l.running, name), slices.Index(l.running, name)+1)
			l.mu.Unlock()
		}()
		if err := run(ctx); err != nil && ctx.Err() == nil {
			l.log.Error(name+" stopped", "err", err)
		}
	}()
}

// wait waits up to grace for every loop to return (their context must
// have ended) and names those that did not.
func (l *loops) wait(grace time.Duration) {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		l.mu.Lock()
		defer l.mu.Unlock()
		l.log.Warn("shutting down without waiting longer for these loops", "loops", l.running, "waited", grace)
	}
}
