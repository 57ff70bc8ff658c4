package sandbox_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/e2b"
	"github.com/hero-dev/hero/sandbox/e2b/e2btest"
)

func newE2B(t *testing.T, fake *e2btest.Server) *e2b.Provider {
	t.Helper()
	p, err := e2b.New(e2b.Config{APIKey: e2btest.APIKey, APIURL: fake.URL, SandboxURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// elsewhere makes every record look made on another host, whose owner is
// judged by its heartbeat (in a test every owner is this live process).
func (s *memStore) elsewhere() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range s.recs {
		r.Host = "gone-host"
		s.recs[id] = r
	}
}

func catIn(t *testing.T, sb sandbox.Sandbox, file string) string {
	t.Helper()
	var out bytes.Buffer
	res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"cat", file}, Stdout: &out, Stderr: &out})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("cat %s: %v %+v %q", file, err, res, out.String())
	}
	return out.String()
}

// A run's paused E2B sandbox survives its process: after a crash (the
// record is all that is left) and after a stop (Detach pauses it), the
// process that continues the run — another replica here — gets the same
// sandbox back, resumed, with the run's work in it; no second sandbox is
// made.
func TestReattachAfterRestart(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"crash", "stop"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			fake := e2btest.NewServer(t)
			leases := newMemStore()
			clk := &clock{now: time.Unix(1_700_000_000, 0)}
			cfg := sandbox.ManagerConfig{Owner: "replica-a", IdleTimeout: 30 * time.Minute, Now: clk.Now}
			a, err := sandbox.NewManager(newE2B(t, fake), leases, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			spec := sandbox.Spec{Env: map[string]string{"K": "v"}, Labels: map[string]string{sandbox.ExecutionLabel: "run-1"}}
			if l, err := a.Reattach(t.Context(), spec); l != nil || err != nil {
				t.Fatalf("Reattach with nothing recorded: %v %v", l, err)
			}
			l, err := a.Acquire(t.Context(), spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.WriteFile(t.Context(), "work.txt", []byte("half done\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			switch how {
			case "crash": // idle, paused by the reaper, then the process dies
				clk.Advance(31 * time.Minute)
				if _, err := a.Reap(t.Context()); err != nil {
					t.Fatal(err)
				}
			case "stop":
				if err := a.Detach(t.Context(), l); err != nil {
					t.Fatal(err)
				}
				if _, err := l.Stat(t.Context(), "work.txt"); err == nil {
					t.Fatal("a detached lease still works")
				}
			}
			if st := fake.Live()[l.ID()]; st != "paused" {
				t.Fatalf("the run's sandbox is %q; want paused", st)
			}

			// Replica b takes the run over. Its orphan sweeps leave the
			// sandbox alone while the run is live.
			cfg.Owner = "replica-b"
			b, err := sandbox.NewManager(newE2B(t, fake), leases, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close(context.Background()) })
			if _, err := b.RecoverOrphans(t.Context(), "replica-a"); err != nil {
				t.Fatal(err)
			}
			leases.elsewhere()
			clk.Advance(20 * time.Minute) // a's heartbeat is stale
			live := func(context.Context, string) (bool, error) { return true, nil }
			if n, err := b.ReclaimDetached(t.Context(), live); err != nil || n != 0 {
				t.Fatalf("ReclaimDetached with the run live: destroyed %d, %v", n, err)
			}
			got, err := b.Reattach(t.Context(), spec)
			if err != nil || got == nil {
				t.Fatalf("Reattach: %v %v", got, err)
			}
			if got.ID() != l.ID() || !got.Reattached() {
				t.Fatalf("reattached %s (%v); want the run's sandbox %s", got.ID(), got.Reattached(), l.ID())
			}
			if st := fake.Live()[l.ID()]; st != "running" {
				t.Fatalf("the reattached sandbox is %q; want running", st)
			}
			if s := catIn(t, got, "work.txt"); s != "half done\n" {
				t.Fatalf("the run's work after reattaching: %q", s)
			}
			var out bytes.Buffer
			if _, err := got.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", `printf %s "$K"`}, Stdout: &out}); err != nil || out.String() != "v" {
				t.Fatalf("the run's environment after reattaching: %q %v", out.String(), err)
			}
			if n := len(fake.Live()); n != 1 {
				t.Fatalf("%d sandboxes at E2B; want the one", n)
			}
			recs, _ := leases.ListAll(t.Context())
			if len(recs) != 1 || recs[0].Owner != "replica-b" {
				t.Fatalf("lease records after the takeover: %+v", recs)
			}
			if st := b.Stats(); st.Reattached != 1 {
				t.Fatalf("stats %+v", st)
			}
			// The run ends: released like any lease.
			if err := b.Release(t.Context(), got); err != nil {
				t.Fatal(err)
			}
			if len(fake.Live()) != 0 {
				t.Fatalf("left at E2B: %v", fake.Live())
			}
		})
	}
}

// The sandbox of a run that ended while its process was gone (closed as
// interrupted, say) is destroyed with its record; so is one whose record
// is older than PausedTimeout, and a run whose sandbox is gone at E2B
// gets a fresh one without an error.
func TestReclaimDetached(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	leases := newMemStore()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	cfg := sandbox.ManagerConfig{Owner: "replica-a", PausedTimeout: 24 * time.Hour, Now: clk.Now}
	pa := newE2B(t, fake)
	a, err := sandbox.NewManager(pa, leases, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	acquire := func(exec string) *sandbox.Lease {
		l, err := a.Acquire(t.Context(), sandbox.Spec{Labels: map[string]string{sandbox.ExecutionLabel: exec}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Detach(t.Context(), l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	over, live, old, gone := acquire("over"), acquire("live"), acquire("old"), acquire("gone")
	if err := pa.Destroy(t.Context(), gone.ID()); err != nil {
		t.Fatal(err)
	}
	leases.elsewhere()
	cfg.Owner = "replica-b"
	b, err := sandbox.NewManager(newE2B(t, fake), leases, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	// While a's heartbeat is fresh nothing is touched.
	isLive := func(_ context.Context, exec string) (bool, error) { return exec != "over", nil }
	if n, err := b.ReclaimDetached(t.Context(), isLive); err != nil || n != 0 {
		t.Fatalf("with the owner alive: destroyed %d, %v", n, err)
	}
	clk.Advance(11 * time.Minute)
	leases.Touch(t.Context(), old.ID(), clk.Now().Add(-25*time.Hour))
	if n, err := b.ReclaimDetached(t.Context(), isLive); err != nil || n != 2 {
		t.Fatalf("destroyed %d, %v; want the finished run's and the old one", n, err)
	}
	alive := fake.Live()
	for _, l := range []*sandbox.Lease{over, old} {
		if _, ok := alive[l.ID()]; ok {
			t.Errorf("sandbox %s (%s) still at E2B", l.ID(), l.Labels()[sandbox.ExecutionLabel])
		}
	}
	if alive[live.ID()] != "paused" {
		t.Errorf("the live run's sandbox is %q; want paused", alive[live.ID()])
	}
	l, err := b.Reattach(t.Context(), sandbox.Spec{Labels: map[string]string{sandbox.ExecutionLabel: "gone"}})
	if err != nil || l != nil {
		t.Fatalf("Reattach of a killed sandbox: %v %v; want nothing", l, err)
	}
	recs, _ := leases.ListAll(t.Context())
	if len(recs) != 1 || recs[0].ID != live.ID() {
		t.Fatalf("records left: %+v; want only the live run's", recs)
	}
}
