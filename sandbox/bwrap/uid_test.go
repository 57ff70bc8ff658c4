package bwrap

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
)

// A root hero runs every sandbox's commands under a host uid and gid of
// the sandbox's own, in cgroup mode as in the fallback: an escape from
// bwrap lands as an unprivileged user, never root, and one sandbox's uid
// can neither write nor read another's files.
func TestSandboxesRunUnderTheirOwnUnprivilegedUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("per-sandbox uids are a root hero's")
	}
	modes(t, func(t *testing.T, p *Provider) {
		a, b := newSandbox(t, p, sandbox.Spec{}), newSandbox(t, p, sandbox.Spec{})
		ua, ga := checkHostUID(t, p, a)
		ub, gb := checkHostUID(t, p, b)
		if ua == ub || ga == gb {
			t.Fatalf("two sandboxes share uid %d gid %d / %d %d", ua, ga, ub, gb)
		}
		// Nor does a sandbox of another provider (another hero process,
		// or the other subtest's provider running alongside) get one of
		// theirs.
		other := newSandbox(t, newProvider(t), sandbox.Spec{})
		if uo, _ := other.HostOwner(); uo == ua || uo == ub || uo == os.Geteuid() {
			t.Errorf("another provider's sandbox got uid %d (these have %d and %d)", uo, ua, ub)
		}
		// From a's uid on the host, b's volume is closed.
		for _, script := range []string{
			"echo intruder > " + filepath.Join(b.HostDir(), "intruder.txt"),
			"cat " + filepath.Join(b.HostDir(), "made.txt"),
			"echo intruder > " + filepath.Join(b.vol, "tmp", "intruder.txt"),
			"echo intruder > " + filepath.Join(b.vol, "tmp", "home", "intruder.txt"),
			"echo intruder > " + filepath.Join(b.vol, "intruder.txt"),
		} {
			cmd := exec.Command("sh", "-c", script)
			cmd.Dir = "/"
			cmd.SysProcAttr = credentials(ua, ga)
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Errorf("sandbox %s's uid ran %q on sandbox %s's workspace: %s", a.ID(), script, b.ID(), out)
			}
		}
		if _, err := os.Lstat(filepath.Join(b.HostDir(), "intruder.txt")); err == nil {
			t.Error("another sandbox's uid wrote into the workspace")
		}
	})
}

// checkHostUID runs commands in sb and returns the host uid and gid they
// ran under, having checked that neither is root, that the process the
// host sees (in the sandbox's cgroup, when there is one) has them, that
// the command sees the same ids inside, and that what it and hero's file
// methods write in the workspace and HOME belongs to it.
func checkHostUID(t *testing.T, p *Provider, sb *Sandbox) (uid, gid int) {
	t.Helper()
	if err := sb.WriteFile(t.Context(), "from-hero/f.txt", []byte("hero"), 0); err != nil {
		t.Fatal(err)
	}
	o := runCmd(t, sb, sandbox.Cmd{Args: sh(`id -u; id -g; echo made > made.txt && echo more >> from-hero/f.txt && mkdir -p from-hero/sub && echo h > "$HOME/h" && echo t > /tmp/t && echo ok`)})
	f := strings.Fields(o.stdout)
	if o.res.ExitCode != 0 || len(f) != 3 || f[2] != "ok" {
		t.Fatalf("commands in the sandbox: exit %d stdout %q stderr %q", o.res.ExitCode, o.stdout, o.stderr)
	}
	inUID, _ := strconv.Atoi(f[0])
	inGID, _ := strconv.Atoi(f[1])
	for _, name := range []string{"made.txt", "from-hero/f.txt", "from-hero/sub"} {
		st, err := os.Stat(filepath.Join(sb.HostDir(), name))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if sys.Uid == 0 || sys.Gid == 0 || int(sys.Uid) != inUID || int(sys.Gid) != inGID {
			t.Errorf("%s on the host belongs to %d:%d; the command ran as %d:%d inside", name, sys.Uid, sys.Gid, inUID, inGID)
		}
	}
	if owner, group := sb.HostOwner(); owner != inUID || group != inGID {
		t.Errorf("HostOwner = %d:%d, commands run as %d:%d", owner, group, inUID, inGID)
	}

	// The host's view of a running command.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"sleep", "60"}})
		done <- err
	}()
	defer func() {
		cancel()
		<-done
	}()
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); ; {
		pids = runningPIDs(t, p, sb)
		if len(pids) >= 2 || time.Now().After(deadline) {
			break // bwrap's init and sleep
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) == 0 {
		t.Fatal("no process of the running command found on the host")
	}
	for _, pid := range pids {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue // exited meanwhile
		}
		for _, line := range strings.Split(string(status), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if k != "Uid" && k != "Gid" {
				continue
			}
			want := strconv.Itoa(inUID)
			if k == "Gid" {
				want = strconv.Itoa(inGID)
			}
			// Real, effective, saved and file-system ids.
			if ids := strings.Fields(v); len(ids) != 4 || ids[0] != want || ids[1] != want || ids[2] != want || ids[3] != want {
				t.Errorf("process %d of the sandbox runs on the host with %s %q, want %s", pid, k, v, want)
			}
		}
	}
	if inUID == 0 || inGID == 0 {
		t.Fatalf("sandbox %s runs as host %d:%d", sb.ID(), inUID, inGID)
	}
	return inUID, inGID
}

// runningPIDs lists the host pids of sb's running command: every process
// of its cgroup in cgroup mode (so they were also put there), else the
// namespace's init and its children.
func runningPIDs(t *testing.T, p *Provider, sb *Sandbox) []int {
	t.Helper()
	if p.cg != nil {
		data, err := os.ReadFile(filepath.Join(p.cg.pids, sb.id, "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		var pids []int
		for _, f := range strings.Fields(string(data)) {
			pid, _ := strconv.Atoi(f)
			pids = append(pids, pid)
		}
		return pids
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	var pids []int
	for r := range sb.running {
		pids = append(pids, r.pid1)
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", r.pid1, r.pid1))
		for _, f := range strings.Fields(string(children)) {
			pid, _ := strconv.Atoi(f)
			pids = append(pids, pid)
		}
	}
	return pids
}

// A workspace layered over a base hero owns (a prepared checkout) is the
// sandbox uid's to change: the base shows as its files through an
// idmapped mount, what the command changes is copied up as its own, and
// the base, shared with other sandboxes, stays as it was.
func TestLayeredWorkspaceUnderSandboxUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("per-sandbox uids are a root hero's")
	}
	modes(t, func(t *testing.T, p *Provider) {
		if p.DiskMode() != diskLoop {
			t.Skip("layered workspaces need loop-mounted volumes")
		}
		base := t.TempDir()
		for name, body := range map[string]string{"a.txt": "base\n", "dir/b.txt": "b\n"} {
			if err := os.MkdirAll(filepath.Join(base, filepath.Dir(name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(base, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for i, sb := range []*Sandbox{newSandbox(t, p, sandbox.Spec{}), newSandbox(t, p, sandbox.Spec{})} {
			if err := sb.LayerWorkspace(t.Context(), base); err != nil {
				t.Fatalf("LayerWorkspace: %v", err)
			}
			o := runCmd(t, sb, sandbox.Cmd{Args: sh(fmt.Sprintf(`set -e; cat a.txt; echo run%d > a.txt; echo new > new.txt; echo c > dir/c.txt; echo more >> dir/b.txt; rm dir/b.txt; id -u; stat -c %%u . a.txt new.txt dir`, i))})
			f := strings.Fields(o.stdout)
			if o.res.ExitCode != 0 || len(f) != 6 || f[0] != "base" {
				t.Fatalf("sandbox %d in its layered workspace: exit %d stdout %q stderr %q", i, o.res.ExitCode, o.stdout, o.stderr)
			}
			if f[1] == "0" || f[2] != f[1] || f[3] != f[1] || f[4] != f[1] || f[5] != f[1] {
				t.Errorf("sandbox %d runs as %s; it owns the workspace, a.txt, new.txt, dir as %v", i, f[1], f[2:])
			}
			if uid, _ := sb.HostOwner(); strconv.Itoa(uid) != f[1] {
				t.Errorf("sandbox %d runs as %s, HostOwner says %d", i, f[1], uid)
			}
		}
		for name, body := range map[string]string{"a.txt": "base\n", "dir/b.txt": "b\n"} {
			data, err := os.ReadFile(filepath.Join(base, name))
			if err != nil || string(data) != body {
				t.Errorf("the base's %s became %q, %v", name, data, err)
			}
			st, _ := os.Stat(filepath.Join(base, name))
			if st.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
				t.Errorf("the base's %s changed hands", name)
			}
		}
		if ents, _ := os.ReadDir(base); len(ents) != 2 {
			t.Errorf("the base gained files: %v", ents)
		}
	})
}

// In the measuring disk mode the volumes are directories under the base
// directory, which sits in hero's 0700 data dir: bind-mounted into the
// volume dir, they are where the sandbox's uid reaches them, and they go
// with the sandbox.
func TestMeasuredVolumesUnderSandboxUIDInClosedDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("per-sandbox uids are a root hero's")
	}
	t.Parallel()
	data := t.TempDir()
	if err := os.Chmod(data, 0o700); err != nil {
		t.Fatal(err)
	}
	p := newProviderIn(t, filepath.Join(data, "sandboxes"), WithLoopDisks(false))
	if p.DiskMode() != diskCheck || !p.unprivileged {
		t.Fatalf("disk mode %s, per-sandbox uids %v; want check and true", p.DiskMode(), p.unprivileged)
	}
	a, b := newSandbox(t, p, sandbox.Spec{}), newSandbox(t, p, sandbox.Spec{})
	ua, _ := checkHostUID(t, p, a)
	ub, _ := checkHostUID(t, p, b)
	if ua == ub {
		t.Fatalf("two sandboxes share uid %d", ua)
	}
	// The files are in the data dir, counted there.
	if _, err := os.Stat(filepath.Join(p.baseDir, a.ID(), "vol", "repo", "made.txt")); err != nil {
		t.Errorf("the workspace is not in the data dir: %v", err)
	}
	vol := a.vol
	if err := a.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if mounted, err := isMountPoint(vol); mounted || err != nil {
		t.Errorf("the volume is still mounted after Close: %v", err)
	}
	for _, f := range []string{vol, vol + ".owner", filepath.Join(p.baseDir, a.ID())} {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("%s left after Close", f)
		}
	}
}
