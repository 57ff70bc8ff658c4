package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// ErrCapacity is returned by Acquire when MaxSandboxes are alive and every
// leased one is busy, so none can be evicted.
var ErrCapacity = errors.New("sandbox capacity reached")

// LeaseRecord is what the Manager persists about one live sandbox, so that
// after a crash RecoverOrphans can find and destroy what nobody drives.
type LeaseRecord struct {
	ID        string            // the sandbox's ID
	Owner     string            // ManagerConfig.Owner of the process that created it
	Provider  string            // Provider.Name()
	Template  string            // Spec.Template
	Labels    map[string]string // Spec.Labels plus Acquire's labels; "hero.pool"="true" while pooled
	CreatedAt time.Time
	LastUsed  time.Time
	// Host and Process identify the process that created the sandbox
	// (filled in by the Manager): its host name and "bootid/pid/start", so
	// that a reaper on the same host can tell a dead owner from a live one
	// even after its pid was reused.
	Host    string
	Process string
	// Heartbeat is when the owner last said it was alive (every reap tick).
	Heartbeat time.Time
}

// LeaseStore persists lease records. The store package adapts its table
// to it; tests use an in-memory map.
type LeaseStore interface {
	// Put inserts or replaces the record with rec.ID.
	Put(ctx context.Context, rec LeaseRecord) error
	// Touch sets LastUsed; an unknown id is not an error.
	Touch(ctx context.Context, id string, at time.Time) error
	// Delete removes a record; an unknown id is not an error.
	Delete(ctx context.Context, id string) error
	// List returns the records of one owner.
	List(ctx context.Context, owner string) ([]LeaseRecord, error)
	// ListAll returns every owner's records.
	ListAll(ctx context.Context) ([]LeaseRecord, error)
	// Heartbeat sets Heartbeat on every record of owner.
	Heartbeat(ctx context.Context, owner string, at time.Time) error
}

// LocalProvider is implemented by providers whose sandboxes live on this
// host. The Manager reclaims another process's sandboxes only when the
// provider holds them here: the reaper of each host cleans up its own.
type LocalProvider interface {
	// Holds reports whether the sandbox id exists on this host.
	Holds(id string) bool
	// Local lists the sandboxes on this host, live or left behind, with
	// when each was last changed.
	Local() (map[string]time.Time, error)
}

// PoolLabel marks the lease record of a pre-warmed, not yet leased sandbox.
const PoolLabel = "hero.pool"

// ManagerConfig tunes a Manager. Zero values take the defaults noted.
type ManagerConfig struct {
	// Owner identifies this process's records in the LeaseStore (e.g. the
	// host name plus replica id). Required.
	Owner string
	// PoolSize is how many pre-warmed sandboxes Run keeps ready for each
	// of PoolTemplates (0: no pool).
	PoolSize int
	// PoolTemplates are the templates to pre-warm; default {""}.
	PoolTemplates []string
	// MaxSandboxes caps live sandboxes, pooled and leased (0: no cap).
	// When full, Acquire first drops a pooled sandbox, then evicts the
	// leased one idle the longest.
	MaxSandboxes int
	// IdleTimeout closes a lease not used for this long (default 30 min).
	// A sandbox that can pause (Pausable: E2B) is paused instead, and
	// resumed by the lease's next call.
	IdleTimeout time.Duration
	// PausedTimeout closes a paused lease not used for this long
	// (default 24 h).
	PausedTimeout time.Duration
	// ReapSchedule is the cron spec for Reap in Run (default "@every 1m").
	ReapSchedule string
	// HealthTTL is how long a health result is reused (default 30 s).
	HealthTTL time.Duration
	// TouchInterval throttles LastUsed writes to the store (default 30 s).
	TouchInterval time.Duration
	// OrphanAfter: a sandbox held on this host whose owner cannot be
	// checked (another host name, no process recorded) is reclaimed when
	// its owner's heartbeat is older than this (default 10 min; owners
	// heartbeat on every reap tick). Owners on this host are checked
	// directly: their sandboxes are reclaimed as soon as they are gone.
	OrphanAfter time.Duration
	// Now replaces the clock in tests.
	Now func() time.Time
}

// Stats is a snapshot for /metrics.
type Stats struct {
	Leased, Pooled, Creating int
	Acquired                 uint64 // successful Acquire calls
	PoolHits, PoolMisses     uint64 // Acquire served from the pool or not
	Created, CreateFailures  uint64 // Provider.Create calls
	Released, Reaped         uint64 // leases ended by Release / by idle timeout
	Paused, Resumed          uint64 // idle leases paused, and resumed by a call
	Reattached               uint64 // sandboxes of earlier processes taken back (Reattach)
	Evicted                  uint64 // sandboxes closed to make room
	OrphansDestroyed         uint64
	Healthy                  bool // last cached provider health result
}

// Manager pools, leases, health-checks and reaps sandboxes of one Provider.
// All methods are safe for concurrent use.
//
// Lifecycle: NewManager → RecoverOrphans(ctx, owner) once at start → Run(ctx)
// in a goroutine (pool refill and the reaper) → Acquire / Release per
// execution → Close at shutdown.
type Manager struct {
	provider Provider
	store    LeaseStore
	cfg      ManagerConfig
	log      *slog.Logger
	host     string // this host's name
	process  string // this process, as LeaseRecord.Process

	mu       sync.Mutex
	leases   map[string]*Lease
	pool     map[string][]*pooled
	creating map[string]int // pool fills in flight per template
	others   int            // non-pool creates in flight
	stats    Stats
	health   struct {
		at  time.Time
		err error
		// checking is closed when the check in flight ends: callers
		// meanwhile wait for it instead of starting another.
		checking chan struct{}
	}
	kick chan struct{}
	// closing is set by Close; creates in flight are counted in inflight
	// so that Close can wait for them and leave nothing behind.
	closing  bool
	inflight sync.WaitGroup
}

type pooled struct {
	sb        Sandbox
	createdAt time.Time
	checkedAt time.Time
}

// NewManager returns a Manager; it starts nothing until Run.
func NewManager(provider Provider, leases LeaseStore, cfg ManagerConfig, log *slog.Logger) (*Manager, error) {
	if provider == nil || leases == nil {
		return nil, errors.New("sandbox manager: provider and lease store are required")
	}
	if cfg.Owner == "" {
		return nil, errors.New("sandbox manager: ManagerConfig.Owner is required")
	}
	if cfg.PoolSize < 0 || cfg.MaxSandboxes < 0 {
		return nil, errors.New("sandbox manager: PoolSize and MaxSandboxes must not be negative")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.PausedTimeout <= 0 {
		cfg.PausedTimeout = 24 * time.Hour
	}
	if cfg.ReapSchedule == "" {
		cfg.ReapSchedule = "@every 1m"
	}
	if _, err := cron.ParseStandard(cfg.ReapSchedule); err != nil {
		return nil, fmt.Errorf("sandbox manager: reap schedule %q: %w", cfg.ReapSchedule, err)
	}
	if cfg.HealthTTL <= 0 {
		cfg.HealthTTL = 30 * time.Second
	}
	if cfg.TouchInterval <= 0 {
		cfg.TouchInterval = 30 * time.Second
	}
	if cfg.OrphanAfter <= 0 {
		cfg.OrphanAfter = 10 * time.Minute
	}
	if len(cfg.PoolTemplates) == 0 {
		cfg.PoolTemplates = []string{""}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		provider: provider,
		store:    leases,
		cfg:      cfg,
		log:      log.With("component", "sandbox-manager", "provider", provider.Name()),
		host:     hostName(),
		process:  selfProcess(),
		leases:   map[string]*Lease{},
		pool:     map[string][]*pooled{},
		creating: map[string]int{},
		kick:     make(chan struct{}, 1),
	}, nil
}

// Acquire returns a lease on a fresh sandbox: a pre-warmed one when the
// pool holds one for spec.Template (and spec asks for default limits and
// lifetime), otherwise a newly created one. labels are added to
// spec.Labels and persisted with the lease.
//
// A sandbox is never reused after its lease ends. Acquire returns an error
// wrapping ErrCapacity when MaxSandboxes are busy, and the provider's error
// (possibly wrapping ErrUnavailable) when creation fails.
func (m *Manager) Acquire(ctx context.Context, spec Spec, labels map[string]string) (*Lease, error) {
	spec.Labels = mergeLabels(spec.Labels, labels)
	delete(spec.Labels, PoolLabel)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acquire sandbox: %w", err)
	}
	if spec.Limits == (Limits{}) && spec.Timeout == 0 {
		if sb := m.takePooled(ctx, spec.Template); sb != nil {
			l, err := m.lease(ctx, sb, spec)
			if err != nil {
				return nil, err
			}
			m.mu.Lock()
			m.stats.PoolHits++
			m.stats.Acquired++
			m.mu.Unlock()
			m.refill()
			return l, nil
		}
	}
	m.mu.Lock()
	m.stats.PoolMisses++
	m.mu.Unlock()
	if err := m.makeRoom(ctx); err != nil {
		return nil, fmt.Errorf("acquire sandbox: %w", err)
	}
	if !m.startCreate() {
		m.mu.Lock()
		m.others--
		m.mu.Unlock()
		return nil, fmt.Errorf("acquire sandbox: the manager is closed: %w", ErrClosed)
	}
	defer m.inflight.Done()
	sb, err := m.provider.Create(ctx, spec)
	m.mu.Lock()
	m.others--
	if err != nil {
		m.stats.CreateFailures++
	} else {
		m.stats.Created++
	}
	m.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("acquire sandbox: %w", err)
	}
	l, err := m.lease(ctx, sb, spec)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.stats.Acquired++
	m.mu.Unlock()
	m.refill()
	return l, nil
}

// takePooled pops the oldest healthy pooled sandbox of a template.
func (m *Manager) takePooled(ctx context.Context, template string) Sandbox {
	for {
		m.mu.Lock()
		list := m.pool[template]
		if len(list) == 0 {
			m.mu.Unlock()
			return nil
		}
		p := list[0]
		m.pool[template] = list[1:]
		m.mu.Unlock()
		now := m.cfg.Now()
		if now.Sub(p.checkedAt) < m.cfg.HealthTTL {
			return p.sb
		}
		if err := p.sb.Alive(ctx); err == nil {
			return p.sb
		} else {
			m.log.Warn("dropping unhealthy pooled sandbox", "sandbox", p.sb.ID(), "err", err.Error())
			m.discard(ctx, p.sb)
		}
	}
}

// makeRoom reserves a slot for one create, evicting when at MaxSandboxes.
// The caller must decrement m.others once the create is done.
func (m *Manager) makeRoom(ctx context.Context) error {
	for {
		m.mu.Lock()
		if m.cfg.MaxSandboxes == 0 || m.totalLocked() < m.cfg.MaxSandboxes {
			m.others++
			m.mu.Unlock()
			return nil
		}
		// Cheapest first: a pooled sandbox nobody is using.
		var victim Sandbox
		var oldest time.Time
		var tmpl string
		for t, list := range m.pool {
			if len(list) > 0 && (victim == nil || list[0].createdAt.Before(oldest)) {
				victim, oldest, tmpl = list[0].sb, list[0].createdAt, t
			}
		}
		if victim != nil {
			m.pool[tmpl] = m.pool[tmpl][1:]
			m.stats.Evicted++
			m.mu.Unlock()
			m.log.Info("evicting pooled sandbox to make room", "sandbox", victim.ID())
			m.discard(ctx, victim)
			continue
		}
		// Then the lease idle the longest.
		candidates := make([]*Lease, 0, len(m.leases))
		for _, l := range m.leases {
			candidates = append(candidates, l)
		}
		m.mu.Unlock()
		sort.Slice(candidates, func(i, j int) bool { return candidates[i].LastUsed().Before(candidates[j].LastUsed()) })
		evicted := false
		for _, l := range candidates {
			if l.closeIfIdle("evicted to make room", 0, m.cfg.Now()) {
				m.log.Info("evicting idle lease to make room", "sandbox", l.ID(), "idle_since", l.LastUsed())
				m.finish(ctx, l)
				m.mu.Lock()
				m.stats.Evicted++
				m.mu.Unlock()
				evicted = true
				break
			}
		}
		if !evicted {
			return fmt.Errorf("%d sandboxes alive and all busy: %w", m.cfg.MaxSandboxes, ErrCapacity)
		}
	}
}

func (m *Manager) totalLocked() int {
	n := len(m.leases) + m.others
	for _, list := range m.pool {
		n += len(list)
	}
	for _, c := range m.creating {
		n += c
	}
	return n
}

// lease records sb as leased, in memory and in the store.
func (m *Manager) lease(ctx context.Context, sb Sandbox, spec Spec) (*Lease, error) {
	now := m.cfg.Now()
	l := &Lease{
		m: m, sb: sb, spec: spec,
		rec: LeaseRecord{
			ID: sb.ID(), Owner: m.cfg.Owner, Provider: m.provider.Name(),
			Template: spec.Template, Labels: spec.Labels, CreatedAt: now, LastUsed: now,
			Host: m.host, Process: m.process, Heartbeat: now,
		},
		lastUsed: now, storeTouched: now,
	}
	if err := m.store.Put(ctx, l.rec); err != nil {
		m.discard(ctx, sb)
		return nil, fmt.Errorf("acquire sandbox: record lease: %w", err)
	}
	m.mu.Lock()
	m.leases[l.ID()] = l
	m.mu.Unlock()
	return l, nil
}

// Release ends a lease: the sandbox is closed (never pooled again) and its
// record deleted. Releasing twice is not an error.
func (m *Manager) Release(ctx context.Context, l *Lease) error {
	if !l.markClosed("released") {
		return nil
	}
	m.mu.Lock()
	m.stats.Released++
	m.mu.Unlock()
	return m.finish(ctx, l)
}

// finish closes a lease's sandbox and forgets it everywhere.
func (m *Manager) finish(ctx context.Context, l *Lease) error {
	m.mu.Lock()
	delete(m.leases, l.ID())
	m.mu.Unlock()
	err := l.sb.Close(ctx)
	if derr := m.store.Delete(ctx, l.ID()); derr != nil && err == nil {
		err = derr
	}
	m.refill()
	if err != nil {
		return fmt.Errorf("release sandbox %s: %w", l.ID(), err)
	}
	return nil
}

// discard closes a sandbox that holds no lease and deletes its record.
func (m *Manager) discard(ctx context.Context, sb Sandbox) {
	if err := sb.Close(ctx); err != nil {
		m.log.Warn("close sandbox", "sandbox", sb.ID(), "err", err.Error())
	}
	if err := m.store.Delete(ctx, sb.ID()); err != nil {
		m.log.Warn("delete lease record", "sandbox", sb.ID(), "err", err.Error())
	}
}

// Reap closes leases idle for longer than IdleTimeout (a call in progress
// counts as use) and drops pooled sandboxes that fail their health probe.
// It returns how many leases it closed.
func (m *Manager) Reap(ctx context.Context) (int, error) {
	now := m.cfg.Now()
	m.mu.Lock()
	leases := make([]*Lease, 0, len(m.leases))
	for _, l := range m.leases {
		leases = append(leases, l)
	}
	var stale []*pooled
	for t, list := range m.pool {
		keep := list[:0]
		for _, p := range list {
			if now.Sub(p.checkedAt) >= m.cfg.HealthTTL {
				stale = append(stale, p)
			} else {
				keep = append(keep, p)
			}
		}
		m.pool[t] = keep
	}
	m.mu.Unlock()

	reaped := 0
	var errs []error
	for _, l := range leases {
		if err := ctx.Err(); err != nil {
			return reaped, err
		}
		if l.pauseIfIdle(ctx, m.cfg.IdleTimeout, now) {
			continue
		}
		idle := m.cfg.IdleTimeout
		if l.isPaused() {
			idle = m.cfg.PausedTimeout
		}
		if l.closeIfIdle("reaped after idle timeout", idle, now) {
			m.log.Info("reaping idle sandbox", "sandbox", l.ID(), "idle", now.Sub(l.LastUsed()).String())
			if err := m.finish(ctx, l); err != nil {
				errs = append(errs, err)
			}
			reaped++
		}
	}
	for _, p := range stale {
		if err := p.sb.Alive(ctx); err != nil {
			m.log.Warn("dropping unhealthy pooled sandbox", "sandbox", p.sb.ID(), "err", err.Error())
			m.discard(ctx, p.sb)
			continue
		}
		p.checkedAt = now
		m.mu.Lock()
		m.pool[templateOf(p)] = append(m.pool[templateOf(p)], p)
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.stats.Reaped += uint64(reaped)
	m.mu.Unlock()
	if err := m.store.Heartbeat(ctx, m.cfg.Owner, now); err != nil {
		errs = append(errs, fmt.Errorf("heartbeat: %w", err))
	}
	if _, err := m.reclaim(ctx, now); err != nil {
		errs = append(errs, err)
	}
	m.refill()
	return reaped, errors.Join(errs...)
}

func templateOf(p *pooled) string {
	if l, ok := p.sb.(interface{ Template() string }); ok {
		return l.Template()
	}
	return ""
}

// Run keeps the pool filled and runs Reap on ReapSchedule until ctx ends;
// then it closes the pooled sandboxes (leases are left to their holders
// and to Close) and returns nil.
func (m *Manager) Run(ctx context.Context) error {
	c := cron.New()
	if _, err := c.AddFunc(m.cfg.ReapSchedule, func() {
		if _, err := m.Reap(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("reap", "err", err.Error())
		}
	}); err != nil {
		return fmt.Errorf("sandbox manager: schedule reaper: %w", err)
	}
	c.Start()
	defer func() { <-c.Stop().Done() }()

	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		if err := m.fill(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("pool refill failed, retrying in 5s", "err", err.Error())
			retry.Reset(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			m.drainPool(context.WithoutCancel(ctx))
			return nil
		case <-m.kick:
		case <-retry.C:
		}
	}
}

// refill wakes Run's pool filler.
func (m *Manager) refill() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// fill creates pooled sandboxes until every template has PoolSize, without
// exceeding MaxSandboxes. Creates run one at a time per call, in this
// goroutine, so a pool refill never competes with itself.
func (m *Manager) fill(ctx context.Context) error {
	if m.cfg.PoolSize == 0 {
		return nil
	}
	for _, t := range m.cfg.PoolTemplates {
		for {
			if err := ctx.Err(); err != nil {
				return nil
			}
			m.mu.Lock()
			full := len(m.pool[t])+m.creating[t] >= m.cfg.PoolSize
			atMax := m.cfg.MaxSandboxes > 0 && m.totalLocked() >= m.cfg.MaxSandboxes
			if full || atMax {
				m.mu.Unlock()
				break
			}
			if m.closing {
				m.mu.Unlock()
				return nil
			}
			m.creating[t]++
			m.inflight.Add(1)
			m.mu.Unlock()

			sb, err := m.createPooled(ctx, t)
			m.mu.Lock()
			m.creating[t]--
			if m.closing && err == nil {
				// Close ran meanwhile and drained the pool: this one must
				// not outlive it.
				m.mu.Unlock()
				m.discard(context.WithoutCancel(ctx), sb)
				m.inflight.Done()
				return nil
			}
			m.inflight.Done()
			if err != nil {
				m.stats.CreateFailures++
				m.mu.Unlock()
				return fmt.Errorf("pre-warm template %q: %w", t, err)
			}
			m.stats.Created++
			now := m.cfg.Now()
			m.pool[t] = append(m.pool[t], &pooled{sb: sb, createdAt: now, checkedAt: now})
			m.mu.Unlock()
		}
	}
	return nil
}

func (m *Manager) createPooled(ctx context.Context, template string) (Sandbox, error) {
	sb, err := m.provider.Create(ctx, Spec{Template: template, Labels: map[string]string{PoolLabel: "true"}})
	if err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	rec := LeaseRecord{
		ID: sb.ID(), Owner: m.cfg.Owner, Provider: m.provider.Name(), Template: template,
		Labels: map[string]string{PoolLabel: "true"}, CreatedAt: now, LastUsed: now,
		Host: m.host, Process: m.process, Heartbeat: now,
	}
	if err := m.store.Put(ctx, rec); err != nil {
		_ = sb.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("record pooled sandbox: %w", err)
	}
	return &templated{Sandbox: sb, template: template}, nil
}

// templated remembers which pool a sandbox belongs to.
type templated struct {
	Sandbox
	template string
}

func (t *templated) Template() string { return t.template }
func (t *templated) Unwrap() Sandbox  { return t.Sandbox }

func (m *Manager) drainPool(ctx context.Context) {
	m.mu.Lock()
	var all []*pooled
	for t, list := range m.pool {
		all = append(all, list...)
		delete(m.pool, t)
	}
	m.mu.Unlock()
	for _, p := range all {
		m.discard(ctx, p.sb)
	}
}

// Health reports the provider's health, cached for HealthTTL so that
// /readyz can be polled freely. Concurrent callers share one check (a
// run's workspace may start it early and wait for it later).
func (m *Manager) Health(ctx context.Context) error {
	for {
		now := m.cfg.Now()
		m.mu.Lock()
		if !m.health.at.IsZero() && now.Sub(m.health.at) < m.cfg.HealthTTL {
			err := m.health.err
			m.mu.Unlock()
			return err
		}
		if wait := m.health.checking; wait != nil {
			m.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return fmt.Errorf("sandbox health check: %w", ctx.Err())
			}
		}
		done := make(chan struct{})
		m.health.checking = done
		m.mu.Unlock()
		err := m.provider.Health(ctx)
		m.mu.Lock()
		m.health.checking = nil
		close(done)
		if ctx.Err() != nil && err != nil {
			// Cut short by this caller's context: not the provider's answer.
			m.mu.Unlock()
			return err
		}
		m.health.at, m.health.err = now, err
		m.stats.Healthy = err == nil
		m.mu.Unlock()
		return err
	}
}

// RecoverOrphans destroys the sandboxes recorded for owner that no live
// lease or pool entry of this Manager drives (left by a crash or a
// previous run; a run's sandbox that can be reattached is left to
// ReclaimDetached), and those of any other process that are held on this
// host and whose owner is gone (see reclaim); it deletes their records.
// Call it once at start with this process's Owner; Reap does the second
// part on every tick. It returns how many it destroyed.
func (m *Manager) RecoverOrphans(ctx context.Context, owner string) (int, error) {
	recs, err := m.store.List(ctx, owner)
	if err != nil {
		return 0, fmt.Errorf("recover orphan sandboxes: list leases: %w", err)
	}
	destroyed := 0
	var errs []error
	for _, rec := range recs {
		if m.isLive(rec.ID) {
			continue
		}
		if rec.Provider != m.provider.Name() {
			m.log.Warn("orphan sandbox belongs to another provider; leaving it", "sandbox", rec.ID, "provider", rec.Provider)
			continue
		}
		if m.reattachable(rec) {
			continue // its run may continue: ReclaimDetached decides
		}
		if err := m.destroyOrphan(ctx, rec, "left by an earlier run of this owner"); err != nil {
			errs = append(errs, err)
			continue
		}
		destroyed++
	}
	n, err := m.reclaim(ctx, m.cfg.Now())
	destroyed += n
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return destroyed, fmt.Errorf("recover orphan sandboxes: %w", err)
	}
	return destroyed, nil
}

// reclaim destroys the sandboxes of other processes that this host holds
// and whose owner is gone: on this host, a process that no longer exists
// (or whose pid now belongs to a later process, or which ran before the
// last boot); elsewhere or unknown, a heartbeat older than OrphanAfter.
// Other hosts' sandboxes are their own reaper's.
func (m *Manager) reclaim(ctx context.Context, now time.Time) (int, error) {
	local, ok := m.provider.(LocalProvider)
	if !ok {
		return 0, nil
	}
	recs, err := m.store.ListAll(ctx)
	if err != nil {
		return 0, fmt.Errorf("reclaim orphan sandboxes: list leases: %w", err)
	}
	n := 0
	var errs []error
	for _, rec := range recs {
		if rec.Owner == m.cfg.Owner || rec.Provider != m.provider.Name() || m.isLive(rec.ID) || !local.Holds(rec.ID) {
			continue
		}
		var why string
		if rec.Host == m.host && rec.Process != "" {
			if processAlive(rec.Process) {
				continue
			}
			why = "its owner process " + rec.Owner + " is gone"
		} else {
			last := rec.Heartbeat
			if rec.LastUsed.After(last) {
				last = rec.LastUsed
			}
			if now.Sub(last) < m.cfg.OrphanAfter {
				continue
			}
			why = fmt.Sprintf("its owner %s has not been heard from for %s", rec.Owner, now.Sub(last).Round(time.Second))
		}
		if err := m.destroyOrphan(ctx, rec, why); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	// Sandboxes with no record at all: a process died between creating one
	// and recording it. The grace period keeps a create in flight, in this
	// or another process, out of reach.
	recorded := make(map[string]bool, len(recs))
	for _, rec := range recs {
		recorded[rec.ID] = true
	}
	here, err := local.Local()
	if err != nil {
		errs = append(errs, err)
	}
	for id, changed := range here {
		if recorded[id] || m.isLive(id) || now.Sub(changed) < m.cfg.OrphanAfter {
			continue
		}
		if err := m.destroyOrphan(ctx, LeaseRecord{ID: id}, "no lease records it"); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("reclaim orphan sandboxes: %w", err)
	}
	return n, nil
}

// destroyOrphan destroys a sandbox nobody drives and deletes its record.
func (m *Manager) destroyOrphan(ctx context.Context, rec LeaseRecord, why string) error {
	if err := m.provider.Destroy(ctx, rec.ID); err != nil {
		return fmt.Errorf("destroy %s: %w", rec.ID, err)
	}
	if err := m.store.Delete(ctx, rec.ID); err != nil {
		return fmt.Errorf("delete record %s: %w", rec.ID, err)
	}
	m.log.Info("destroyed orphan sandbox", "sandbox", rec.ID, "owner", rec.Owner, "why", why, "labels", rec.Labels)
	m.mu.Lock()
	m.stats.OrphansDestroyed++
	m.mu.Unlock()
	return nil
}

func (m *Manager) isLive(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.leases[id]; ok {
		return true
	}
	for _, list := range m.pool {
		for _, p := range list {
			if p.sb.ID() == id {
				return true
			}
		}
	}
	return false
}

// Stats returns counters and gauges for /metrics.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Leased = len(m.leases)
	for _, list := range m.pool {
		s.Pooled += len(list)
	}
	for _, c := range m.creating {
		s.Creating += c
	}
	s.Creating += m.others
	return s
}

// startCreate counts a create in flight unless the manager is closing.
func (m *Manager) startCreate() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return false
	}
	m.inflight.Add(1)
	return true
}

// Close closes every lease and pooled sandbox, then the provider when it
// is a ProviderCloser, for shutdown. It waits for creates in flight (a
// pool refill, an Acquire), so nothing it missed is left behind; Acquire
// fails with ErrClosed afterwards.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.inflight.Wait()
	m.drainPool(ctx)
	m.mu.Lock()
	leases := make([]*Lease, 0, len(m.leases))
	for _, l := range m.leases {
		leases = append(leases, l)
	}
	m.mu.Unlock()
	var errs []error
	for _, l := range leases {
		if l.markClosed("manager closed") {
			if err := m.finish(ctx, l); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c, ok := m.provider.(ProviderCloser); ok {
		if err := c.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// Lease is one execution's hold on a sandbox. It implements Sandbox: every
// call marks it used (postponing the idle reaper), applies the Spec's Env
// and Network (pooled sandboxes were created without them), and fails with
// ErrClosed once the lease is released, reaped or evicted. Close releases.
type Lease struct {
	m    *Manager
	sb   Sandbox
	spec Spec
	rec  LeaseRecord

	resume       sync.Mutex // one resume at a time
	mu           sync.Mutex
	paused       bool
	lastUsed     time.Time
	storeTouched time.Time
	inflight     int
	closed       string // why, once closed
	reattached   bool   // made by an earlier process (Reattach)
}

var _ Sandbox = (*Lease)(nil)

// ID is the sandbox's ID (also the lease record's).
func (l *Lease) ID() string { return l.sb.ID() }

// Labels are the lease's labels (a copy).
func (l *Lease) Labels() map[string]string { return maps.Clone(l.rec.Labels) }

// LastUsed is when a call on the lease last started or ended.
func (l *Lease) LastUsed() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastUsed
}

// Unwrap returns the provider's sandbox, e.g. to reach optional interfaces
// such as HostWorkspace.
func (l *Lease) Unwrap() Sandbox { return l.sb }

func (l *Lease) begin(ctx context.Context, op string) error {
	now := l.m.cfg.Now()
	l.mu.Lock()
	if l.closed != "" {
		why := l.closed
		l.mu.Unlock()
		return fmt.Errorf("%s: sandbox %s was %s: %w", op, l.ID(), why, ErrClosed)
	}
	l.inflight++
	l.lastUsed = now
	touch := now.Sub(l.storeTouched) >= l.m.cfg.TouchInterval
	if touch {
		l.storeTouched = now
	}
	paused := l.paused
	l.mu.Unlock()
	if paused {
		if err := l.wake(ctx); err != nil {
			l.end()
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if touch {
		if err := l.m.store.Touch(ctx, l.ID(), now); err != nil {
			l.m.log.Warn("touch lease", "sandbox", l.ID(), "err", err.Error())
		}
	}
	return nil
}

func (l *Lease) end() {
	now := l.m.cfg.Now()
	l.mu.Lock()
	l.inflight--
	l.lastUsed = now
	l.mu.Unlock()
}

// markClosed closes the lease unconditionally; false if it already was.
func (l *Lease) markClosed(why string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed != "" {
		return false
	}
	l.closed = why
	return true
}

// Pausable is implemented by sandboxes that can stop while idle and keep
// their state (E2B): the Manager pauses an idle lease's sandbox instead
// of closing it, and resumes it when the lease is used again.
type Pausable interface {
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
}

// pauseIfIdle pauses the lease's sandbox when it is Pausable, running,
// idle for at least idle and not in use. It reports whether it did.
func (l *Lease) pauseIfIdle(ctx context.Context, idle time.Duration, now time.Time) bool {
	p, ok := find[Pausable](l.sb)
	if !ok {
		return false
	}
	l.resume.Lock()
	defer l.resume.Unlock()
	l.mu.Lock()
	if l.closed != "" || l.paused || l.inflight > 0 || now.Sub(l.lastUsed) < idle {
		l.mu.Unlock()
		return false
	}
	l.paused = true
	l.mu.Unlock()
	if err := p.Pause(ctx); err != nil {
		l.m.log.Warn("pause idle sandbox; closing it instead", "sandbox", l.ID(), "err", err.Error())
		l.mu.Lock()
		l.paused = false
		l.mu.Unlock()
		return false
	}
	l.m.log.Info("paused idle sandbox", "sandbox", l.ID(), "idle", now.Sub(l.LastUsed()).String())
	l.m.mu.Lock()
	l.m.stats.Paused++
	l.m.mu.Unlock()
	return true
}

func (l *Lease) isPaused() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paused
}

// wake resumes a paused sandbox before a call.
func (l *Lease) wake(ctx context.Context) error {
	l.resume.Lock()
	defer l.resume.Unlock()
	if !l.isPaused() {
		return nil
	}
	p, _ := find[Pausable](l.sb)
	if err := p.Resume(ctx); err != nil {
		return fmt.Errorf("resume paused sandbox %s: %w", l.ID(), err)
	}
	l.mu.Lock()
	l.paused = false
	l.mu.Unlock()
	l.m.log.Info("resumed paused sandbox", "sandbox", l.ID())
	l.m.mu.Lock()
	l.m.stats.Resumed++
	l.m.mu.Unlock()
	return nil
}

// closeIfIdle closes the lease when no call is in progress and it has
// been idle for at least idle.
func (l *Lease) closeIfIdle(why string, idle time.Duration, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed != "" || l.inflight > 0 || now.Sub(l.lastUsed) < idle {
		return false
	}
	l.closed = why
	return true
}

// Exec runs cmd with the lease's Spec.Env under cmd.Env and network when
// either the Spec or the Cmd allows it. A command that gets network for
// itself (a dependency install) gets no Spec.Env unless
// Spec.InstallSecrets says so.
func (l *Lease) Exec(ctx context.Context, cmd Cmd) (Result, error) {
	if err := l.begin(ctx, "exec"); err != nil {
		return Result{}, err
	}
	defer l.end()
	if cmd.Network && !l.spec.Network && !l.spec.InstallSecrets {
		cmd.NoSecrets = true
	}
	if len(l.spec.Env) > 0 && !cmd.NoSecrets {
		env := maps.Clone(l.spec.Env)
		maps.Copy(env, cmd.Env)
		cmd.Env = env
	}
	cmd.Network = cmd.Network || l.spec.Network
	return l.sb.Exec(ctx, cmd)
}

// ReadFile reads a workspace file.
func (l *Lease) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := l.begin(ctx, "read"); err != nil {
		return nil, err
	}
	defer l.end()
	return l.sb.ReadFile(ctx, path)
}

// WriteFile writes a workspace file.
func (l *Lease) WriteFile(ctx context.Context, path string, data []byte, perm fs.FileMode) error {
	if err := l.begin(ctx, "write"); err != nil {
		return err
	}
	defer l.end()
	return l.sb.WriteFile(ctx, path, data, perm)
}

// List lists workspace entries.
func (l *Lease) List(ctx context.Context, path string, recursive bool) ([]FileInfo, error) {
	if err := l.begin(ctx, "list"); err != nil {
		return nil, err
	}
	defer l.end()
	return l.sb.List(ctx, path, recursive)
}

// Stat describes a workspace entry.
func (l *Lease) Stat(ctx context.Context, path string) (FileInfo, error) {
	if err := l.begin(ctx, "stat"); err != nil {
		return FileInfo{}, err
	}
	defer l.end()
	return l.sb.Stat(ctx, path)
}

// Remove deletes a workspace entry.
func (l *Lease) Remove(ctx context.Context, path string, recursive bool) error {
	if err := l.begin(ctx, "remove"); err != nil {
		return err
	}
	defer l.end()
	return l.sb.Remove(ctx, path, recursive)
}

// Alive probes the sandbox (it counts as use).
func (l *Lease) Alive(ctx context.Context) error {
	if err := l.begin(ctx, "alive"); err != nil {
		return err
	}
	defer l.end()
	return l.sb.Alive(ctx)
}

// Close releases the lease (see Manager.Release).
func (l *Lease) Close(ctx context.Context) error { return l.m.Release(ctx, l) }
