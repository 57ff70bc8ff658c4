package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
)

// A host or container that forbids the namespaces bubblewrap needs (here
// for real: hero runs in a user namespace allowed no nested one, as
// Docker's default seccomp profile or Ubuntu 24.04's AppArmor restriction
// do): `hero serve` starts, checks at once, and its log and /readyz say
// what to change in Docker, Kubernetes or on the host.
func TestServeSaysWhatForbidsTheSandbox(t *testing.T) {
	enginetest.RequireBwrap(t)
	if out, err := exec.Command("unshare", "--user", "--map-root-user", "sh", "-c", "echo 0 > /proc/sys/user/max_user_namespaces").CombinedOutput(); err != nil {
		t.Skipf("cannot make a user namespace without nested ones here: %v %s", err, out)
	}
	bin := buildHero(t)
	r := &replica{name: "restricted", logs: &syncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command("unshare", "--user", "--map-root-user", "sh", "-c", `echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" serve`, bin)
	r.cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HERO_ADDR=127.0.0.1:0", "HERO_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
		if t.Failed() {
			t.Logf("logs:\n%s", r.logs.String())
		}
	})
	r.waitListening(t)
	advice := []string{"bubblewrap is installed but may not create the namespaces", "--security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined",
		"seccompProfile and appArmorProfile to type Unconfined", "hostUsers: false", "procMount: Unmasked", "kernel.apparmor_restrict_unprivileged_userns=0", "HERO_SANDBOX=e2b"}
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, b := httpGet(t, r.base+"/readyz")
		body = b
		if code == 200 && strings.Contains(body, "without a sandbox") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %q", code, body)
		}
	}
	for _, a := range advice {
		if !strings.Contains(body, a) {
			t.Errorf("/readyz does not say %q:\n%s", a, body)
		}
		if !strings.Contains(r.logs.String(), a) {
			t.Errorf("the log does not say %q", a)
		}
	}
	if !strings.Contains(body, "Creating new namespace failed") {
		t.Errorf("/readyz does not give bubblewrap's own error:\n%s", body)
	}
}
