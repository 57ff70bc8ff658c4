package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/e2b"
	"github.com/hero-dev/hero/sandbox/e2b/e2btest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// TestE2BOrphanKillerReplicas runs two real `hero serve` processes in E2B
// mode (E2B's fake) on one MariaDB database with a short orphan-killer
// period: an orphan of this installation (no lease record) is killed once,
// by the replica holding the e2b-orphans lease, no earlier than
// HERO_E2B_ORPHAN_AGE; another installation's sandbox is left alone. When
// the holder is killed (-9), the other replica takes the lease over and
// kills the next orphan.
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
	a, b := startReplica(t, bin, "a", env), startReplica(t, bin, "b", env)
	a.waitListening(t)
	b.waitListening(t)
	meta, err := store.Open(t.Context(), dbURL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	holder := func() string {
		l, err := meta.Singleton(t.Context(), e2bOrphanLease)
		if err != nil {
			return ""
		}
		return l.Holder
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
	kills := func(id string) int {
		n := 0
		for _, c := range fake.Calls() {
			if c == "DELETE /sandboxes/"+id {
				n++
			}
		}
		return n
	}
	killedBy := func(id string) []string {
		var by []string
		for _, r := range []*replica{a, b} {
			if strings.Contains(r.logs.String(), "sandbox="+id) {
				by = append(by, r.name)
			}
		}
		return by
	}
	live := func(id string) bool { _, ok := fake.Live()[id]; return ok }

	foreign := orphan("another-installation")
	created := time.Now()
	first := orphan(install)
	waitFor(t, 20*time.Second, "the orphan is killed", func() bool { return !live(first) })
	// The fake's startedAt has whole seconds: the age hero sees may be up
	// to a second more than the real one.
	if age := time.Since(created); age < minAge-time.Second {
		t.Errorf("the orphan was killed %s after it was created; HERO_E2B_ORPHAN_AGE is %s", age.Round(time.Millisecond), minAge)
	}
	var killer, other *replica
	switch h := holder(); h {
	case a.owner():
		killer, other = a, b
	case b.owner():
		killer, other = b, a
	default:
		t.Fatalf("the e2b-orphans lease is held by %q, neither replica (%s, %s)", h, a.owner(), b.owner())
	}
	time.Sleep(3 * period) // room for a second kill, were one coming
	if n := kills(first); n != 1 {
		t.Errorf("the orphan was killed %d times", n)
	}
	if by := killedBy(first); len(by) != 1 || by[0] != killer.name {
		t.Errorf("the orphan was logged killed by %v; the lease holder is %s", by, killer.name)
	}
	if !live(foreign) {
		t.Fatal("another installation's sandbox was killed")
	}

	// The holder dies without giving the lease back; it lapses after 3
	// periods and the other replica takes the job.
	if err := killer.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-killer.done
	died := time.Now()
	second := orphan(install)
	waitFor(t, 30*time.Second, "the next orphan is killed by "+other.name, func() bool { return !live(second) })
	t.Logf("the orphan killer moved to %s and killed the next orphan %s after %s died", other.name, time.Since(died).Round(100*time.Millisecond), killer.name)
	if h := holder(); h != other.owner() {
		t.Errorf("the e2b-orphans lease is held by %q; want %s's %q", h, other.name, other.owner())
	}
	time.Sleep(3 * period)
	if n := kills(second); n != 1 {
		t.Errorf("the second orphan was killed %d times", n)
	}
	if by := killedBy(second); len(by) != 1 || by[0] != other.name {
		t.Errorf("the second orphan was logged killed by %v; want %s", by, other.name)
	}
	if !live(foreign) {
		t.Fatal("another installation's sandbox was killed")
	}
}
