package bwrap

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
)

// TestIsolationHolds keeps what the security review found holding: a
// command has no capabilities and cannot gain any, cannot make a user
// namespace of its own, and sees only its own processes and mounts.
func TestIsolationHolds(t *testing.T) {
	modes(t, func(t *testing.T, p *Provider) {
		sb := newSandbox(t, p, sandbox.Spec{})
		status := runCmd(t, sb, sandbox.Cmd{Args: sh(`cat /proc/self/status`)})
		fields := map[string]string{}
		for _, line := range strings.Split(status.stdout, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
			if fields[k] != "0000000000000000" {
				t.Errorf("%s = %q, want no capabilities", k, fields[k])
			}
		}
		if fields["NoNewPrivs"] != "1" {
			t.Errorf("NoNewPrivs = %q, want 1 (setuid binaries must not raise privileges)", fields["NoNewPrivs"])
		}

		// No nested user namespace (bwrap --disable-userns): the usual
		// first step of a kernel exploit.
		o := runCmd(t, sb, sandbox.Cmd{Args: sh(`unshare -U true 2>&1 && echo NESTED-USERNS-OK; unshare -r true 2>&1 && echo NESTED-ROOT-OK; echo end`)})
		if strings.Contains(o.stdout, "NESTED-") || !strings.Contains(o.stdout, "end") {
			t.Errorf("a nested user namespace could be created: %q %q", o.stdout, o.stderr)
		}

		// PID namespace: the host's processes, this test's among them, are
		// not there.
		o = runCmd(t, sb, sandbox.Cmd{Args: sh(`ls /proc | grep -c '^[0-9]'; cat /proc/1/cmdline | tr '\0' ' '`)})
		lines := strings.SplitN(strings.TrimSpace(o.stdout), "\n", 2)
		if n, err := strconv.Atoi(lines[0]); err != nil || n > 10 {
			t.Errorf("the sandbox sees %q processes; want only its own few", lines[0])
		}
		if len(lines) > 1 && (strings.Contains(lines[1], "init") || strings.Contains(lines[1], "systemd") || strings.Contains(lines[1], ".test")) {
			t.Errorf("pid 1 in the sandbox is a host process: %q", lines[1])
		}

		// Mount namespace: of hero's own directories only this sandbox's
		// workspace, /tmp (or its HOME inside it) and its resolv.conf are
		// mounted in, where they belong.
		o = runCmd(t, sb, sandbox.Cmd{Args: sh(`cat /proc/self/mountinfo`)})
		for _, line := range strings.Split(strings.TrimSpace(o.stdout), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			root, mountPoint := f[3], f[4]
			if strings.HasPrefix(root, p.baseDir) && mountPoint != sandbox.WorkspaceRoot && mountPoint != "/tmp" && mountPoint != "/tmp/home" && mountPoint != "/etc/resolv.conf" {
				t.Errorf("hero's directory %s is mounted at %s", root, mountPoint)
			}
			if strings.HasPrefix(mountPoint, p.baseDir) || mountPoint == "/root" || strings.HasPrefix(mountPoint, "/work") {
				t.Errorf("a host directory is mounted in the sandbox at %s", mountPoint)
			}
		}

		// No uid range of the host is mapped wholesale.
		o = runCmd(t, sb, sandbox.Cmd{Args: sh(`cat /proc/self/uid_map`)})
		if strings.Contains(o.stdout, "4294967295") {
			t.Errorf("the sandbox has the host's whole uid range mapped: %q", o.stdout)
		}
	})
}

// TestNoProcessOutlivesItsCommand: a command that exits normally after
// leaving a daemon behind (its own session, detached from the terminal)
// takes the daemon with it.
func TestNoProcessOutlivesItsCommand(t *testing.T) {
	modes(t, func(t *testing.T, p *Provider) {
		sb := newSandbox(t, p, sandbox.Spec{})
		tag := fmt.Sprintf("1001.%d", time.Now().UnixNano()%1_000_000_007)
		o := runCmd(t, sb, sandbox.Cmd{Args: sh(`(setsid nohup sleep ` + tag + ` >/dev/null 2>&1 &); echo left`)})
		if !strings.Contains(o.stdout, "left") || o.res.ExitCode != 0 {
			t.Fatalf("command: %+v %q %q", o.res, o.stdout, o.stderr)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(hostProcs(t, tag)) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if left := hostProcs(t, tag); len(left) > 0 {
			t.Fatalf("processes outlived their command: %v", left)
		}
	})
}
