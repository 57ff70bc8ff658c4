package main

import (
	"strings"
	"testing"
	"time"
)

// The run lease and the takeover check bound how long a dead replica's
// run waits: 30 s + 10 s by default, within the 45 s hero promises.
func TestRunLeaseSettings(t *testing.T) {
	t.Parallel()
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := loadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.RunLease != 30*time.Second || c.TakeoverEvery != 10*time.Second || c.RunLease+c.TakeoverEvery > 45*time.Second {
		t.Fatalf("defaults: lease %s, takeover every %s", c.RunLease, c.TakeoverEvery)
	}
	c, err = loadConfig(env(map[string]string{"HERO_RUN_LEASE": "6s", "HERO_TAKEOVER_INTERVAL": "2s"}))
	if err != nil || c.RunLease != 6*time.Second || c.TakeoverEvery != 2*time.Second {
		t.Fatalf("set: %s %s %v", c.RunLease, c.TakeoverEvery, err)
	}
	for _, bad := range []map[string]string{{"HERO_RUN_LEASE": "soon"}, {"HERO_TAKEOVER_INTERVAL": "100ms"}} {
		for k := range bad {
			if _, err := loadConfig(env(bad)); err == nil || !strings.Contains(err.Error(), k+" must be") {
				t.Fatalf("%v: %v", bad, err)
			}
		}
	}
}
