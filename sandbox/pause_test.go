package sandbox_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/e2b"
	"github.com/hero-dev/hero/sandbox/e2b/e2btest"
)

// On E2B an idle lease is paused, not killed, and its next call resumes
// it with the workspace as it was; a lease paused for PausedTimeout is
// closed.
func TestManagerPausesIdleE2BLeases(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	p, err := e2b.New(e2b.Config{APIKey: e2btest.APIKey, APIURL: fake.URL, SandboxURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	m := newManager(t, p, newMemStore(), sandbox.ManagerConfig{IdleTimeout: 30 * time.Minute, PausedTimeout: 2 * time.Hour, Now: clk.Now})
	l, err := m.Acquire(t.Context(), sandbox.Spec{Env: map[string]string{"K": "v"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFile(t.Context(), "work.txt", []byte("half done\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Minute)
	if n, err := m.Reap(t.Context()); err != nil || n != 0 {
		t.Fatalf("reaped %d: %v", n, err)
	}
	if st := fake.Live()[l.ID()]; st != "paused" {
		t.Fatalf("after the idle timeout the sandbox is %q, want paused", st)
	}
	var out bytes.Buffer
	res, err := l.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", `cat work.txt; printf %s "$K"`}, Stdout: &out})
	if err != nil || res.ExitCode != 0 || out.String() != "half done\nv" {
		t.Fatalf("after resume: %v %+v %q", err, res, out.String())
	}
	if st := m.Stats(); st.Paused != 1 || st.Resumed != 1 {
		t.Fatalf("stats %+v", st)
	}
	clk.Advance(31 * time.Minute)
	m.Reap(t.Context())
	clk.Advance(2*time.Hour + time.Minute)
	if n, err := m.Reap(t.Context()); err != nil || n != 1 {
		t.Fatalf("a lease paused for longer than PausedTimeout: reaped %d, %v", n, err)
	}
	if _, ok := fake.Live()[l.ID()]; ok {
		t.Fatal("the sandbox was not killed")
	}
}
