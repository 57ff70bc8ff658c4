package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/e2b"
	"github.com/hero-dev/hero/sandbox/e2b/e2btest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// TestE2BOrphanKillerReplicas runs three real `hero serve` processes in
// E2B mode (E2B's fake) on one MariaDB database with a short orphan-killer
// period: an orphan of this installation (no lease record) is killed once,
// by the replica holding the e2b-orphans lease, no earlier than
// HERO_E2B_ORPHAN_AGE; another installation's sandbox is left alone. When
// the holder stops cleanly (SIGTERM) it hands the lease back and another
// replica takes the job over at its next tick, before the old lease would
// have lapsed; when the next holder is killed (-9), the last replica takes
// the lease over once it lapses. Each orphan is killed once.
func TestE2BOrphanKillerReplicas(t *testing.T) {
	dbURL := storetest.FreshMySQL(t, "e2borphans")
	bin := buildHero(t)
	fake := e2btest.NewServer(t)
	const install, period, minAge = "replicas-e2b", time.Second, 3 * time.Second
	env := map[string]string{
		"DATABASE_URL": dbURL, "HERO_ADDR": "127.0.0.1:0", "HERO_SANDBOX_POOL": "0",
		"SECRETS_ENCRYPTION_KEY": strings.Repeat("ab", 32), "SECRETS_KDF_SALT": strings.Repeat("cd", 16),
		"HERO_SANDBOX": "e2b", "E2B_API_KEY": e2btest.APIKey, "E2B_API_URL": fake.URL, "E2B_SANDBOX_URL": fake.URL,
		"HERO_INSTALL_ID": install, "HERO_E2B_REAP_INTERVAL": period.String(), "HERO_E2B_ORPHAN_AGE": minAge.String(),
	}
	all := []*replica{startReplica(t, bin, "a", env), startReplica(t, bin, "b", env), startReplica(t, bin, "c", env)}
	for _, r := range all {
		r.waitListening(t)
	}
	meta := storetest.OpenURL(t, dbURL)
	lease := func() *store.SingletonLease {
		l, err := meta.Singleton(t.Context(), e2bOrphanLease)
		if err != nil {
			return &store.SingletonLease{}
		}
		return l
	}
	// holder is the live replica holding the lease (nil: none).
	holder := func() *replica {
		h := lease().Holder
		for _, r := range all {
			if r.alive() && r.owner() == h {
				return r
			}
		}
		return nil
	}
	// orphan creates a sandbox as a replica that died before recording it
	// would have left it: this installation's metadata, no lease record.
	orphan := func(install string) string {
		t.Helper()
		prov, err := e2b.New(e2b.Config{APIKey: e2btest.APIKey, APIURL: fake.URL, SandboxURL: fake.URL, Install: install})
		if err != nil {
			t.Fatal(err)
		}
		sb, err := prov.Create(t.Context(), sandbox.Spec{})
		if err != nil {
			t.Fatal(err)
		}
		return sb.ID()
	}
	live := func(id string) bool { _, ok := fake.Live()[id]; return ok }
	// killed waits for orphan id to be killed, by the replica holding
	// the lease then, and for a replica to have logged the kill (the
	// fake sees the DELETE before hero has its answer: a replica killed
	// -9 in between would never log it), and returns the holder.
	killed := func(id, what string) *replica {
		t.Helper()
		var by *replica
		gone := false
		waitFor(t, 30*time.Second, what, func() bool {
			if !gone {
				by = holder()
				if gone = !live(id); !gone {
					return false
				}
			}
			for _, r := range all {
				if strings.Contains(r.logs.String(), "sandbox="+id) {
					return true
				}
			}
			return false
		})
		if by == nil {
			t.Fatalf("%s: no live replica holds the e2b-orphans lease (%q)", what, lease().Holder)
		}
		return by
	}

	foreign := orphan("another-installation")
	created := time.Now()
	first := orphan(install)
	h1 := killed(first, "the orphan is killed")
	// The fake's startedAt has whole seconds: the age hero sees may be up
	// to a second more than the real one.
	if age := time.Since(created); age < minAge-time.Second {
		t.Errorf("the orphan was killed %s after it was created; HERO_E2B_ORPHAN_AGE is %s", age.Round(time.Millisecond), minAge)
	}

	// The holder stops cleanly: it gives the lease back, and another
	// replica claims it at its next tick (a period), well before the
	// old lease (3 periods from its last renewal) would have lapsed.
	until := lease().Until
	stopped := time.Now()
	if err := h1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-h1.done
	exited := time.Since(stopped)
	if !strings.Contains(h1.logs.String(), "shutting down") {
		t.Fatalf("%s did not shut down cleanly on SIGTERM", h1.name)
	}
	second := orphan(install)
	if l := lease(); l.Holder == h1.owner() {
		t.Errorf("%s exited after SIGTERM still holding the e2b-orphans lease (until %s)", h1.name, l.Until.Format(time.RFC3339Nano))
	}
	waitFor(t, 10*time.Second, "another replica takes the orphan killer over", func() bool { return holder() != nil })
	tookOver := time.Since(stopped)
	if !stopped.Add(tookOver).Before(until) {
		t.Errorf("the orphan killer moved %s after SIGTERM to %s, not before %s's lease would have lapsed (%s after SIGTERM): it was not handed back",
			tookOver.Round(10*time.Millisecond), h1.name, h1.name, until.Sub(stopped).Round(10*time.Millisecond))
	}
	h2 := killed(second, "the next orphan is killed after "+h1.name+" stopped")
	t.Logf("%s exited %s after SIGTERM; %s took the orphan killer over %s after SIGTERM (the lease would have lapsed after %s)",
		h1.name, exited.Round(time.Millisecond), h2.name, tookOver.Round(time.Millisecond), until.Sub(stopped).Round(time.Millisecond))

	// The next holder dies without giving the lease back; it lapses after
	// 3 periods and the last replica takes the job.
	if err := h2.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-h2.done
	died := time.Now()
	third := orphan(install)
	h3 := killed(third, "the orphan after "+h2.name+" died is killed")
	t.Logf("the orphan killer moved to %s and killed the next orphan %s after %s died", h3.name, time.Since(died).Round(100*time.Millisecond), h2.name)

	time.Sleep(3 * period) // room for a second kill, were one coming
	for _, o := range []struct {
		id string
		by *replica
	}{{first, h1}, {second, h2}, {third, h3}} {
		n := 0
		for _, c := range fake.Calls() {
			if c == "DELETE /sandboxes/"+o.id {
				n++
			}
		}
		var by []string
		for _, r := range all {
			if strings.Contains(r.logs.String(), "sandbox="+o.id) {
				by = append(by, r.name)
			}
		}
		if n != 1 || len(by) != 1 || by[0] != o.by.name {
			t.Errorf("orphan %s was killed %d times, logged by %v; the lease holder was %s", o.id, n, by, o.by.name)
		}
	}
	if !live(foreign) {
		t.Fatal("another installation's sandbox was killed")
	}
}
