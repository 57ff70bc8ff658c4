package sandbox_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
)

// memStore is an in-memory LeaseStore that records what happened.
type memStore struct {
	mu      sync.Mutex
	recs    map[string]sandbox.LeaseRecord
	touches int
}

var _ sandbox.LeaseStore = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{recs: map[string]sandbox.LeaseRecord{}} }

func (s *memStore) Put(_ context.Context, rec sandbox.LeaseRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Labels = maps.Clone(rec.Labels)
	s.recs[rec.ID] = rec
	return nil
}

func (s *memStore) Touch(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touches++
	if r, ok := s.recs[id]; ok {
		r.LastUsed = at
		s.recs[id] = r
	}
	return nil
}

func (s *memStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recs, id)
	return nil
}

func (s *memStore) List(_ context.Context, owner string) ([]sandbox.LeaseRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sandbox.LeaseRecord
	for _, r := range s.recs {
		if r.Owner == owner {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *memStore) ListAll(_ context.Context) ([]sandbox.LeaseRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.recs)), nil
}

func (s *memStore) Heartbeat(_ context.Context, owner string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range s.recs {
		if r.Owner == owner {
			r.Heartbeat = at
			s.recs[id] = r
		}
	}
	return nil
}

func (s *memStore) get(id string) (sandbox.LeaseRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	return r, ok
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func requireBwrap(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("bubblewrap is required in CI (install with `%s`): %v", bwrap.InstallHint, err)
		}
		t.Skipf("bubblewrap not installed (install with `%s`)", bwrap.InstallHint)
	}
}

func newBwrap(t testing.TB, base string) *bwrap.Provider {
	t.Helper()
	requireBwrap(t)
	if base == "" {
		base = t.TempDir()
	}
	p, err := bwrap.New(base, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newManager(t testing.TB, p sandbox.Provider, store sandbox.LeaseStore, cfg sandbox.ManagerConfig) *sandbox.Manager {
	t.Helper()
	if cfg.Owner == "" {
		cfg.Owner = "test-host"
	}
	m, err := sandbox.NewManager(p, store, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// runManager runs m.Run until the test ends.
func runManager(t testing.TB, m *sandbox.Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestManagerPool(t *testing.T) {
	t.Parallel()
	p := newBwrap(t, "")
	store := newMemStore()
	m := newManager(t, p, store, sandbox.ManagerConfig{PoolSize: 2})
	runManager(t, m)
	waitFor(t, "pool of 2", func() bool { return m.Stats().Pooled == 2 })
	for _, id := range p.Live() {
		if rec, ok := store.get(id); !ok || rec.Labels[sandbox.PoolLabel] != "true" {
			t.Fatalf("pooled sandbox %s not recorded as pooled: %+v", id, rec)
		}
	}

	l, err := m.Acquire(t.Context(), sandbox.Spec{Env: map[string]string{"PROJECT_SECRET": "s3"}, Network: false}, map[string]string{"project": "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.PoolHits != 1 || st.Leased != 1 {
		t.Fatalf("stats after pooled acquire: %+v", st)
	}
	rec, ok := store.get(l.ID())
	if !ok || rec.Labels["project"] != "demo" || rec.Labels[sandbox.PoolLabel] != "" || rec.Owner != "test-host" {
		t.Fatalf("lease record: %+v", rec)
	}
	// The Spec's env reaches commands in a sandbox taken from the pool.
	var out strings.Builder
	if _, err := l.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", "echo $PROJECT_SECRET"}, Stdout: &out}); err != nil || out.String() != "s3\n" {
		t.Fatalf("env in pooled sandbox: %q %v", out.String(), err)
	}
	waitFor(t, "pool refilled", func() bool { return m.Stats().Pooled == 2 })

	// A released sandbox is destroyed, never pooled again.
	id := l.ID()
	if err := m.Release(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(p.Live(), id) {
		t.Fatal("released sandbox still alive")
	}
	if _, ok := store.get(id); ok {
		t.Fatal("released lease still recorded")
	}
	if _, err := l.ReadFile(t.Context(), "x"); !errors.Is(err, sandbox.ErrClosed) {
		t.Fatalf("call after release: %v", err)
	}
	if err := l.Close(t.Context()); err != nil {
		t.Fatalf("second release: %v", err)
	}
	// Specs with their own limits get a fresh sandbox.
	l2, err := m.Acquire(t.Context(), sandbox.Spec{Limits: sandbox.Limits{Processes: 10}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.PoolMisses != 1 {
		t.Fatalf("custom limits served from pool: %+v", st)
	}
	_ = l2.Close(t.Context())
}

func TestManagerEvictsOldestIdle(t *testing.T) {
	t.Parallel()
	p := newBwrap(t, "")
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	m := newManager(t, p, newMemStore(), sandbox.ManagerConfig{MaxSandboxes: 2, Now: clk.Now})
	a, err := m.Acquire(t.Context(), sandbox.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	b, err := m.Acquire(t.Context(), sandbox.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := a.WriteFile(t.Context(), "f", []byte("x"), 0); err != nil { // a is now the most recent
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	c, err := m.Acquire(t.Context(), sandbox.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadFile(t.Context(), "f"); !errors.Is(err, sandbox.ErrClosed) || !strings.Contains(err.Error(), "evicted") {
		t.Fatalf("b should be evicted: %v", err)
	}
	if _, err := a.ReadFile(t.Context(), "f"); err != nil {
		t.Fatalf("a should survive: %v", err)
	}
	if st := m.Stats(); st.Evicted != 1 || st.Leased != 2 {
		t.Fatalf("stats: %+v", st)
	}

	// Busy leases are never evicted: with both running a command, Acquire
	// reports capacity.
	var wg sync.WaitGroup
	var pipes []*io.PipeWriter
	for _, l := range []*sandbox.Lease{a, c} {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		started := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = l.Exec(context.Background(), sandbox.Cmd{Args: []string{"sh", "-c", "echo up; read x"}, Stdin: pr, Stdout: onFirstWrite(started)})
		}()
		<-started
	}
	clk.Advance(time.Hour)
	if _, err := m.Acquire(t.Context(), sandbox.Spec{}, nil); !errors.Is(err, sandbox.ErrCapacity) {
		t.Fatalf("Acquire with all busy: %v", err)
	}
	for _, pw := range pipes {
		pw.Close()
	}
	wg.Wait()
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// onFirstWrite closes ch when output first arrives.
func onFirstWrite(ch chan struct{}) io.Writer {
	var once sync.Once
	return writerFunc(func([]byte) { once.Do(func() { close(ch) }) })
}

func TestManagerReap(t *testing.T) {
	t.Parallel()
	p := newBwrap(t, "")
	store := newMemStore()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	m := newManager(t, p, store, sandbox.ManagerConfig{IdleTimeout: 30 * time.Minute, TouchInterval: time.Minute, Now: clk.Now})
	idle, err := m.Acquire(t.Context(), sandbox.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	busy, err := m.Acquire(t.Context(), sandbox.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recent, err := m.Acquire(t.Context(), sandbox.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = busy.Exec(context.Background(), sandbox.Cmd{Args: []string{"sh", "-c", "echo up; read x"}, Stdin: pr, Stdout: onFirstWrite(started)})
	}()
	<-started
	clk.Advance(25 * time.Minute)
	if _, err := recent.Stat(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if rec, _ := store.get(recent.ID()); !rec.LastUsed.Equal(clk.Now()) {
		t.Fatalf("store not touched: %+v", rec)
	}
	clk.Advance(10 * time.Minute)
	n, err := m.Reap(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("Reap = %d, %v; want 1", n, err)
	}
	if _, err := idle.ReadFile(t.Context(), "x"); !errors.Is(err, sandbox.ErrClosed) {
		t.Fatalf("idle lease not reaped: %v", err)
	}
	if _, ok := store.get(idle.ID()); ok {
		t.Fatal("reaped lease still recorded")
	}
	if err := recent.Alive(t.Context()); err != nil {
		t.Fatalf("recently used lease reaped: %v", err)
	}
	pw.Close()
	<-done
	if err := busy.Alive(t.Context()); err != nil {
		t.Fatalf("busy lease reaped: %v", err)
	}
	if st := m.Stats(); st.Reaped != 1 || st.Leased != 2 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestManagerRecoverOrphans(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	store := newMemStore()
	// First process: a lease and a pool, then it "crashes" (no Release).
	p1 := newBwrap(t, base)
	m1 := newManager(t, p1, store, sandbox.ManagerConfig{Owner: "host-a", PoolSize: 1})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = m1.Run(ctx) }()
	waitFor(t, "pool", func() bool { return m1.Stats().Pooled == 1 })
	l, err := m1.Acquire(t.Context(), sandbox.Spec{}, map[string]string{"execution": "42"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pool refill", func() bool { return m1.Stats().Pooled == 1 })
	cancel() // Run drains the pool; the lease is left behind as by a crash
	<-stopped
	orphans := p1.Live()
	if len(orphans) != 1 || orphans[0] != l.ID() {
		t.Fatalf("left behind: %v", orphans)
	}
	// Another owner's record must be left alone.
	_ = store.Put(t.Context(), sandbox.LeaseRecord{ID: "bw-00000000000000ff", Owner: "host-b", Provider: "local"})

	// Second process on the same directory and store.
	p2 := newBwrap(t, base)
	m2 := newManager(t, p2, store, sandbox.ManagerConfig{Owner: "host-a"})
	live, err := m2.Acquire(t.Context(), sandbox.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := m2.RecoverOrphans(t.Context(), "host-a")
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("destroyed %d orphans, want 1", n)
	}
	for _, id := range orphans {
		if _, err := os.Stat(filepath.Join(base, id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("orphan %s still on disk: %v", id, err)
		}
		if _, ok := store.get(id); ok {
			t.Errorf("orphan %s still recorded", id)
		}
	}
	if _, ok := store.get(l.ID()); ok {
		t.Error("crashed lease still recorded")
	}
	if err := live.Alive(t.Context()); err != nil {
		t.Fatalf("live lease destroyed by recovery: %v", err)
	}
	if _, ok := store.get("bw-00000000000000ff"); !ok {
		t.Fatal("another owner's record was deleted")
	}
}

func TestManagerHealthCached(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	fp := &countingProvider{Provider: newBwrap(t, "")}
	m := newManager(t, fp, newMemStore(), sandbox.ManagerConfig{HealthTTL: time.Minute, Now: clk.Now})
	for range 3 {
		if err := m.Health(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Minute)
	if err := m.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fp.health != 2 {
		t.Fatalf("provider health called %d times, want 2", fp.health)
	}
	if !m.Stats().Healthy {
		t.Fatal("Stats.Healthy false")
	}
}

type countingProvider struct {
	sandbox.Provider
	health int
}

func (c *countingProvider) Health(ctx context.Context) error {
	c.health++
	return c.Provider.Health(ctx)
}

// A run's workspace starts the health check early and asks again later:
// callers while a check is in flight wait for it instead of starting
// another sandbox.
func TestManagerHealthSharesTheCheckInFlight(t *testing.T) {
	t.Parallel()
	gp := &gatedProvider{Provider: newBwrap(t, ""), entered: make(chan struct{}, 8), release: make(chan struct{})}
	m := newManager(t, gp, newMemStore(), sandbox.ManagerConfig{HealthTTL: time.Minute})
	errs := make(chan error, 4)
	go func() { errs <- m.Health(t.Context()) }()
	<-gp.entered
	for range 3 {
		go func() { errs <- m.Health(t.Context()) }()
	}
	select {
	case <-gp.entered:
		t.Fatal("a second health check started while one was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(gp.release)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := gp.calls.Load(); n != 1 {
		t.Fatalf("provider health called %d times, want 1", n)
	}
}

type gatedProvider struct {
	sandbox.Provider
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (g *gatedProvider) Health(ctx context.Context) error {
	g.calls.Add(1)
	g.entered <- struct{}{}
	<-g.release
	return g.Provider.Health(ctx)
}

func TestNewManagerValidates(t *testing.T) {
	t.Parallel()
	p := newBwrap(t, "")
	if _, err := sandbox.NewManager(p, newMemStore(), sandbox.ManagerConfig{}, nil); err == nil {
		t.Fatal("missing owner accepted")
	}
	if _, err := sandbox.NewManager(p, newMemStore(), sandbox.ManagerConfig{Owner: "x", ReapSchedule: "whenever"}, nil); err == nil {
		t.Fatal("bad cron spec accepted")
	}
}

// BenchmarkPooledAcquire measures Acquire served from a warm pool and
// reports its p50 in ms.
func BenchmarkPooledAcquire(b *testing.B) {
	p := newBwrap(b, "")
	m := newManager(b, p, newMemStore(), sandbox.ManagerConfig{PoolSize: 4})
	runManager(b, m)
	ctx := context.Background()
	var durations []time.Duration
	for b.Loop() {
		b.StopTimer()
		waitFor(b, "warm pool", func() bool { return m.Stats().Pooled >= 1 })
		b.StartTimer()
		start := time.Now()
		l, err := m.Acquire(ctx, sandbox.Spec{}, map[string]string{"bench": "1"})
		if err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
		b.StopTimer()
		_ = m.Release(ctx, l)
		b.StartTimer()
	}
	if st := m.Stats(); st.PoolMisses != 0 {
		b.Fatalf("pool misses: %+v", st)
	}
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2])/float64(time.Millisecond), "p50_ms")
}
