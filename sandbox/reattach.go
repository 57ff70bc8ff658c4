package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Runs that outlive their process. On a provider whose sandboxes outlive
// the process that made them (a Reattacher: E2B), a run's sandbox is
// bound to its execution by the lease record's "execution" label, which
// the LeaseStore persists. When the process stops, the sandbox is paused
// and its record kept (Detach; after a crash the record is simply still
// there). When the run continues, in the next process or on another
// replica that took it over, Reattach finds the record and resumes the
// same sandbox, workspace and all, instead of making a new one. The
// records whose owner is gone are settled by ReclaimDetached: kept while
// their run is live, destroyed once it is over.

// ExecutionLabel is the Spec label naming the execution a sandbox is
// leased to.
const ExecutionLabel = "execution"

// CanReattach reports whether this Manager's sandboxes can be reattached
// after a restart (the provider is a Reattacher).
func (m *Manager) CanReattach() bool {
	_, ok := m.provider.(Reattacher)
	return ok
}

// Reattached reports whether the lease holds a sandbox an earlier process
// made (Reattach), whose workspace is already filled.
func (l *Lease) Reattached() bool { return l.reattached }

// Reattach returns a lease on the sandbox an earlier process leased to
// the execution spec.Labels names, resumed, and takes over its record.
// It returns nil (and no error) when there is none to take back: the
// provider cannot reattach, no record names the execution, or its
// sandbox is gone (its record is then removed, so nothing leaks).
func (m *Manager) Reattach(ctx context.Context, spec Spec) (*Lease, error) {
	r, ok := m.provider.(Reattacher)
	exec := spec.Labels[ExecutionLabel]
	if !ok || exec == "" {
		return nil, nil
	}
	recs, err := m.store.ListAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("reattach sandbox: list leases: %w", err)
	}
	var found *Lease
	for _, rec := range recs {
		if rec.Labels[ExecutionLabel] != exec || rec.Provider != m.provider.Name() || rec.Labels[PoolLabel] == "true" || m.isLive(rec.ID) {
			continue
		}
		if found != nil {
			// One sandbox per run: a second record is a leftover.
			_ = m.destroyOrphan(ctx, rec, "a second sandbox of execution "+exec)
			continue
		}
		if err := m.startCreateErr(); err != nil {
			return nil, fmt.Errorf("reattach sandbox: %w", err)
		}
		sb, err := r.Reattach(ctx, rec.ID, spec)
		m.inflight.Done()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("reattach sandbox %s: %w", rec.ID, err)
			}
			m.log.Warn("could not reattach the run's sandbox; starting a new one", "sandbox", rec.ID, "execution", exec, "err", err.Error())
			if !errors.Is(err, ErrClosed) {
				_ = m.provider.Destroy(ctx, rec.ID)
			}
			if err := m.store.Delete(ctx, rec.ID); err != nil {
				m.log.Warn("delete lease record", "sandbox", rec.ID, "err", err.Error())
			}
			continue
		}
		now := m.cfg.Now()
		taken := rec
		taken.Owner, taken.Host, taken.Process = m.cfg.Owner, m.host, m.process
		taken.LastUsed, taken.Heartbeat = now, now
		taken.Labels = mergeLabels(rec.Labels, spec.Labels)
		if err := m.store.Put(ctx, taken); err != nil {
			// Still recorded under the old owner: a later Reattach finds it.
			return nil, fmt.Errorf("reattach sandbox %s: record lease: %w", rec.ID, err)
		}
		found = &Lease{m: m, sb: sb, spec: spec, rec: taken, lastUsed: now, storeTouched: now, reattached: true}
		m.mu.Lock()
		m.leases[found.ID()] = found
		m.stats.Reattached++
		m.mu.Unlock()
		m.log.Info("reattached the run's sandbox", "sandbox", rec.ID, "execution", exec, "previous_owner", rec.Owner)
	}
	return found, nil
}

// startCreateErr is startCreate as an error.
func (m *Manager) startCreateErr() error {
	if !m.startCreate() {
		return fmt.Errorf("the manager is closed: %w", ErrClosed)
	}
	return nil
}

// Detach ends this process's hold on a lease whose run is not over (the
// process is stopping): when the provider can reattach and the sandbox
// can pause, it is paused and its record kept for Reattach; otherwise
// Detach is Release.
func (m *Manager) Detach(ctx context.Context, l *Lease) error {
	p, pausable := find[Pausable](l.sb)
	if !m.CanReattach() || !pausable || l.rec.Labels[ExecutionLabel] == "" {
		return m.Release(ctx, l)
	}
	l.resume.Lock()
	defer l.resume.Unlock()
	if !l.markClosed("detached: its run continues after a restart") {
		return nil
	}
	m.mu.Lock()
	delete(m.leases, l.ID())
	m.mu.Unlock()
	if !l.isPaused() {
		if err := p.Pause(ctx); err != nil {
			// A sandbox that cannot be kept is not left running.
			err = errors.Join(err, m.finishClosed(ctx, l))
			return fmt.Errorf("detach sandbox %s: pause: %w", l.ID(), err)
		}
	}
	m.log.Info("detached the run's sandbox, paused, for the run to continue after a restart", "sandbox", l.ID(), "execution", l.rec.Labels[ExecutionLabel])
	return nil
}

// finishClosed closes a sandbox whose lease is already closed and out of
// m.leases, and deletes its record.
func (m *Manager) finishClosed(ctx context.Context, l *Lease) error {
	err := l.sb.Close(ctx)
	if derr := m.store.Delete(ctx, l.ID()); derr != nil && err == nil {
		err = derr
	}
	return err
}

// ReclaimDetached settles the records of sandboxes whose owner is gone
// (a process on this host that no longer runs, otherwise no heartbeat
// for OrphanAfter) on a provider that can reattach: a sandbox whose run
// is live (says live) is kept for Reattach, unless unused for
// PausedTimeout; every other one is destroyed and its record deleted.
// Run it on one replica (the singleton lease) before killing the
// provider's unrecorded sandboxes. It returns how many it destroyed.
func (m *Manager) ReclaimDetached(ctx context.Context, live func(ctx context.Context, execution string) (bool, error)) (int, error) {
	if !m.CanReattach() {
		return 0, nil
	}
	recs, err := m.store.ListAll(ctx)
	if err != nil {
		return 0, fmt.Errorf("reclaim detached sandboxes: list leases: %w", err)
	}
	now := m.cfg.Now()
	n := 0
	var errs []error
	for _, rec := range recs {
		if rec.Owner == m.cfg.Owner || rec.Provider != m.provider.Name() || m.isLive(rec.ID) || !m.ownerGone(rec, now) {
			continue
		}
		why := "its owner " + rec.Owner + " is gone"
		if exec := rec.Labels[ExecutionLabel]; exec != "" && rec.Labels[PoolLabel] != "true" {
			if now.Sub(rec.LastUsed) >= m.cfg.PausedTimeout {
				why = fmt.Sprintf("unused for %s", now.Sub(rec.LastUsed).Round(time.Second))
			} else {
				ok, err := live(ctx, exec)
				if err != nil {
					errs = append(errs, fmt.Errorf("is run %s live: %w", exec, err))
					continue
				}
				if ok {
					continue // its run continues: Reattach takes it back
				}
				why = "its run " + exec + " is over"
			}
		}
		if err := m.destroyOrphan(ctx, rec, why); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("reclaim detached sandboxes: %w", err)
	}
	return n, nil
}

// ownerGone says whether the process that recorded rec is gone: checked
// directly on this host, by its heartbeat elsewhere.
func (m *Manager) ownerGone(rec LeaseRecord, now time.Time) bool {
	if rec.Host == m.host && rec.Process != "" {
		return !processAlive(rec.Process)
	}
	last := rec.Heartbeat
	if rec.LastUsed.After(last) {
		last = rec.LastUsed
	}
	return now.Sub(last) >= m.cfg.OrphanAfter
}

// reattachable says whether RecoverOrphans leaves rec to
// ReclaimDetached: a run's sandbox on a provider that can reattach.
func (m *Manager) reattachable(rec LeaseRecord) bool {
	return m.CanReattach() && rec.Labels[ExecutionLabel] != "" && rec.Labels[PoolLabel] != "true"
}
