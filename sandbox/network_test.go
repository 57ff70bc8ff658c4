package sandbox_test

import (
	"strings"
	"testing"

	"github.com/hero-dev/hero/sandbox"
)

// A command that gets network for itself — a dependency install, whose
// scripts the repository controls — runs without the project's secrets
// unless the project allows it (issue 8 #9: a preinstall script reached
// the network with every secret in its environment).
func TestNetworkedCommandsGetNoSecrets(t *testing.T) {
	t.Parallel()
	p := newBwrap(t, "")
	m := newManager(t, p, newMemStore(), sandbox.ManagerConfig{})
	env := func(l *sandbox.Lease, network bool) string {
		t.Helper()
		var out strings.Builder
		res, err := l.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", `echo "token=$API_TOKEN extra=$PIP_USER"`},
			Env: map[string]string{"PIP_USER": "1"}, Network: network, Stdout: &out, Stderr: &out})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("exec: %v %+v %s", err, res, out.String())
		}
		return strings.TrimSpace(out.String())
	}
	secrets := map[string]string{"API_TOKEN": "s3cr3t"}
	l, err := m.Acquire(t.Context(), sandbox.Spec{Env: secrets}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := env(l, false); got != "token=s3cr3t extra=1" {
		t.Errorf("offline command: %q", got)
	}
	if got := env(l, true); got != "token= extra=1" {
		t.Errorf("networked install got %q; want no secrets, its own variables kept", got)
	}
	allowed, err := m.Acquire(t.Context(), sandbox.Spec{Env: secrets, InstallSecrets: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := env(allowed, true); got != "token=s3cr3t extra=1" {
		t.Errorf("install with InstallSecrets: %q", got)
	}
}
