package sandbox_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
)

// deadProcess starts a real process, kills it and returns its identity as
// a lease record holds it: a pid that is now dead (or, later, someone
// else's).
func deadProcess(t *testing.T) (pid int, id string) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid = cmd.Process.Pid
	id = sandbox.ProcessID(pid)
	if id == "" {
		t.Skip("no /proc here: process identities cannot be read")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return pid, id
}

// Sandboxes left by processes that died (a `hero run` in a terminal that
// was killed, a crashed `hero serve` whose owner name changes with its pid)
// are reclaimed by the next manager on the same host, at its start and on
// its ticks: directory, volume and cgroup (issue 8 #13). Sandboxes of live
// processes, and of other hosts that still heartbeat, are left alone.
func TestManagerReclaimsDeadOwners(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	store := newMemStore()
	// The sandboxes were made by other processes on this host: another
	// provider on the same directory stands in for them.
	maker := newBwrap(t, base)
	host, _ := os.Hostname()
	now := time.Now()
	mk := func(owner, hostName, process string, heartbeat time.Time) string {
		t.Helper()
		sb, err := maker.Create(t.Context(), sandbox.Spec{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sb.Close(context.Background()) })
		// Leave something behind in it, as a run would.
		if err := sb.WriteFile(t.Context(), "work.txt", []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		if err := store.Put(t.Context(), sandbox.LeaseRecord{ID: sb.ID(), Owner: owner, Provider: "local", Host: hostName,
			Process: process, CreatedAt: heartbeat, LastUsed: heartbeat, Heartbeat: heartbeat}); err != nil {
			t.Fatal(err)
		}
		return sb.ID()
	}
	deadPid, deadID := deadProcess(t)
	self := sandbox.ProcessID(os.Getpid())
	selfPid, _, _ := strings.Cut(strings.SplitN(self, "/", 2)[1], "/")
	reused := strings.Join([]string{strings.SplitN(self, "/", 2)[0], selfPid, "1"}, "/") // our pid, an earlier start

	dead := mk("terminal-"+strconv.Itoa(deadPid), host, deadID, now)
	pidReused := mk("old-serve", host, reused, now)
	staleElsewhere := mk("other-host-7", "other-host", "", now.Add(-time.Hour))
	alive := mk("terminal-live", host, self, now.Add(-time.Hour))
	freshElsewhere := mk("other-host-8", "other-host", "", now)
	legacyFresh := mk("terminal-123", "", "", now)
	// No record at all (a process died between creating and recording):
	// reclaimed once it is older than OrphanAfter, not while it may be a
	// create in flight.
	unrecorded := func(age time.Duration) string {
		sb, err := maker.Create(t.Context(), sandbox.Spec{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sb.Close(context.Background()) })
		at := time.Now().Add(-age)
		if err := os.Chtimes(filepath.Join(base, sb.ID()), at, at); err != nil {
			t.Fatal(err)
		}
		return sb.ID()
	}
	unrecordedOld, unrecordedNew := unrecorded(time.Hour), unrecorded(0)

	p := newBwrap(t, base)
	m := newManager(t, p, store, sandbox.ManagerConfig{Owner: "new-serve", OrphanAfter: 10 * time.Minute})
	n, err := m.RecoverOrphans(t.Context(), "new-serve")
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("reclaimed %d at start, want 4 (dead owner, reused pid, silent other host, unrecorded)", n)
	}
	gone := func(id string) bool {
		_, err := os.Stat(filepath.Join(base, id))
		_, recorded := store.get(id)
		return errors.Is(err, os.ErrNotExist) && !recorded
	}
	for _, id := range []string{dead, pidReused, staleElsewhere, unrecordedOld} {
		if !gone(id) {
			t.Errorf("orphan %s is still there", id)
		}
		if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), id) {
			t.Errorf("orphan %s's volume is still mounted", id)
		}
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/hero", id)); err == nil {
			t.Errorf("orphan %s's cgroup is still there", id)
		}
	}
	for _, id := range []string{alive, freshElsewhere, legacyFresh, unrecordedNew} {
		if gone(id) {
			t.Errorf("sandbox %s of a live owner was reclaimed", id)
		}
	}

	// On a tick: an owner that dies after the manager started.
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	later := mk("terminal-"+strconv.Itoa(cmd.Process.Pid), host, sandbox.ProcessID(cmd.Process.Pid), time.Now())
	if _, err := m.Reap(t.Context()); err != nil {
		t.Fatal(err)
	}
	if gone(later) {
		t.Fatal("reclaimed while its owner runs")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := m.Reap(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !gone(later) {
		t.Error("the sandbox of an owner that died is still there after a tick")
	}
	if got := m.Stats().OrphansDestroyed; got != 5 {
		t.Errorf("OrphansDestroyed = %d, want 5", got)
	}
	// This manager's heartbeat reached the store for its own records.
	l, err := m.Acquire(context.Background(), sandbox.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ := store.get(l.ID()); rec.Host != host || rec.Process != self || rec.Heartbeat.IsZero() {
		t.Errorf("lease record lacks the owner's identity: %+v", rec)
	}
}
