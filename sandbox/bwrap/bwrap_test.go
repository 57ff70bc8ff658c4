package bwrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
)

// requireBwrap skips when bubblewrap is missing, except in CI where a
// missing bwrap is a broken test machine.
func requireBwrap(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("bubblewrap is required in CI (install with `%s`): %v", InstallHint, err)
		}
		t.Skipf("bubblewrap not installed (install with `%s`)", InstallHint)
	}
}

func newProvider(t testing.TB, opts ...Option) *Provider {
	t.Helper()
	return newProviderIn(t, baseDir(t), opts...)
}

func newProviderIn(t testing.TB, dir string, opts ...Option) *Provider {
	t.Helper()
	requireBwrap(t)
	p, err := New(dir, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("close provider: %v", err)
		}
	})
	return p
}

func newSandbox(t testing.TB, p *Provider, spec sandbox.Spec) *Sandbox {
	t.Helper()
	sb, err := p.Create(context.Background(), spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sb.(*Sandbox)
}

// baseDir is a fresh directory that sandbox uids can traverse (t.TempDir's
// parent is 0700, which the unprivileged fallback cannot enter).
func baseDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hero-bwrap-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeTree(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "sandboxes")
}

type output struct {
	res            sandbox.Result
	stdout, stderr string
}

func runCmd(t testing.TB, sb sandbox.Sandbox, cmd sandbox.Cmd) output {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	res, err := sb.Exec(context.Background(), cmd)
	if err != nil {
		t.Fatalf("Exec %v: %v (stderr %q)", cmd.Args, err, errb.String())
	}
	return output{res, out.String(), errb.String()}
}

func sh(script string) []string { return []string{"sh", "-c", script} }

// modes runs a test under cgroup limits and under the unprivileged-uid
// fallback (when this machine allows both).
func modes(t *testing.T, f func(t *testing.T, p *Provider)) {
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		f(t, newProvider(t))
	})
	t.Run("uid", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() != 0 {
			t.Skip("the uid fallback needs root")
		}
		p := newProvider(t, WithCgroups(false))
		if p.CgroupMode() != "uid" {
			t.Fatalf("mode = %s, want uid", p.CgroupMode())
		}
		f(t, p)
	})
}

func TestExecBasics(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	sb := newSandbox(t, p, sandbox.Spec{Env: map[string]string{"FROM_SPEC": "spec", "SHARED": "spec"}})
	if err := sb.WriteFile(t.Context(), "sub/dir/f.txt", []byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	o := runCmd(t, sb, sandbox.Cmd{
		Args:  sh(`pwd; echo "$FROM_SPEC $SHARED $FROM_CMD $HOME"; cat f.txt; echo; cat; exit 3`),
		Dir:   "sub/dir",
		Env:   map[string]string{"FROM_CMD": "cmd", "SHARED": "cmd"},
		Stdin: strings.NewReader("from-stdin"),
	})
	want := "/repo/sub/dir\nspec cmd cmd /tmp/home\nhello\nfrom-stdin"
	if o.stdout != want || o.res.ExitCode != 3 {
		t.Fatalf("got %q exit %d (stderr %q), want %q exit 3", o.stdout, o.res.ExitCode, o.stderr, want)
	}
	o = runCmd(t, sb, sandbox.Cmd{Args: []string{"no-such-binary-xyz"}})
	if o.res.ExitCode == 0 || !strings.Contains(o.stderr, "no-such-binary-xyz") {
		t.Fatalf("missing binary: exit %d stderr %q", o.res.ExitCode, o.stderr)
	}
	// Files written by commands are visible to the file methods.
	runCmd(t, sb, sandbox.Cmd{Args: sh("echo made-inside > inside.txt")})
	data, err := sb.ReadFile(t.Context(), "inside.txt")
	if err != nil || string(data) != "made-inside\n" {
		t.Fatalf("ReadFile inside.txt = %q, %v", data, err)
	}
	if _, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"true"}, Dir: "missing"}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("Exec in missing dir: %v, want ErrNotFound", err)
	}
	if _, err := sb.Exec(t.Context(), sandbox.Cmd{}); err == nil {
		t.Fatal("empty argv accepted")
	}
}

func TestCannotWriteOutsideWorkspace(t *testing.T) {
	modes(t, func(t *testing.T, p *Provider) {
		sb := newSandbox(t, p, sandbox.Spec{})
		hostDir := t.TempDir()
		o := runCmd(t, sb, sandbox.Cmd{Args: sh(`for f in /usr/hero-x /etc/hero-x /bin/hero-x /hero-x /proc/hero-x /sys/hero-x ` + hostDir + `/hero-x; do
			if echo x > "$f" 2>/dev/null; then echo "WROTE $f"; fi; done
			echo ok > /repo/ok.txt && echo ok > /tmp/ok.txt && echo fine`)})
		if strings.Contains(o.stdout, "WROTE") || !strings.Contains(o.stdout, "fine") {
			t.Fatalf("write outside: stdout %q stderr %q", o.stdout, o.stderr)
		}
		for _, f := range []string{"/usr/hero-x", "/etc/hero-x", filepath.Join(hostDir, "hero-x")} {
			if _, err := os.Stat(f); err == nil {
				t.Errorf("%s exists on the host", f)
			}
		}
	})
}

func TestHostFilesInvisible(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	sb := newSandbox(t, p, sandbox.Spec{})
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.txt")
	if err := os.WriteFile(secret, []byte("TOP-SECRET-VALUE"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := runCmd(t, sb, sandbox.Cmd{Args: sh(`cat ` + secret + ` /etc/shadow /etc/gshadow 2>&1; ls /root 2>&1; ls ` + p.baseDir + ` 2>&1; ls /work 2>&1; ls /etc/ssh 2>&1; ls /etc/ssl/private 2>&1; echo end`)})
	if strings.Contains(o.stdout, "TOP-SECRET-VALUE") || strings.Contains(o.stdout, "root:") {
		t.Fatalf("host secrets visible: %q", o.stdout)
	}
	for _, want := range []string{secret + ": No such file", "/etc/shadow: No such file", "/root': No such file", "/etc/ssl/private': No such file"} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("output %q lacks %q", o.stdout, want)
		}
	}
	// What tools need is there.
	o = runCmd(t, sb, sandbox.Cmd{Args: sh(`test -r /etc/passwd && test -d /proc/self && test -c /dev/null && id -u && git --version >/dev/null && test -e /etc/ssl/certs && date >/dev/null && echo tools-ok`)})
	if !strings.Contains(o.stdout, "tools-ok") {
		t.Fatalf("tools: stdout %q stderr %q", o.stdout, o.stderr)
	}
}

// TestNetwork: a sandbox without network reaches nothing; a networked one
// gets its own user-mode network (issue 8 #9), in which hero's own
// listeners on host loopback and on the host's other addresses, private
// ranges and the cloud metadata address are unreachable, and which the
// command cannot reconfigure. (This machine has no internet: the positive
// side is checked as the route a public address would take.)
func TestNetwork(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("bash (for /dev/tcp) not installed")
	}
	modes(t, testNetwork)
}

func testNetwork(t *testing.T, p *Provider) {
	if p.netErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("networking unavailable in CI: %v", p.netErr)
		}
		t.Skipf("networking unavailable: %v", p.netErr)
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0") // host loopback and every host address
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello-from-host\n"))
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	targets := []string{"127.0.0.1", "10.0.2.2"} // host loopback, directly and through slirp's gateway
	for _, a := range hostAddresses() {
		targets = append(targets, strings.TrimSuffix(a, "/32"))
	}
	// The host really answers on each of them (so a refusal below is the
	// sandbox's doing), except slirp's gateway, which exists only inside.
	for _, ip := range targets[2:] {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(port)), 2*time.Second)
		if err != nil {
			t.Fatalf("the host itself cannot reach %s: %v", ip, err)
		}
		c.Close()
	}
	probe := func(ip string) string {
		return fmt.Sprintf(`timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d && head -n1 <&3' 2>&1; echo "exit=$?"`, ip, port)
	}

	closed := newSandbox(t, p, sandbox.Spec{})
	o := runCmd(t, closed, sandbox.Cmd{Args: []string{"bash", "-c", probe("127.0.0.1")}})
	if strings.Contains(o.stdout, "hello-from-host") || strings.Contains(o.stdout, "exit=0") {
		t.Fatalf("reached the host without network: %q", o.stdout)
	}

	for name, sb := range map[string]*Sandbox{"Cmd.Network": closed, "Spec.Network": newSandbox(t, p, sandbox.Spec{Network: true})} {
		cmd := func(script string) output {
			return runCmd(t, sb, sandbox.Cmd{Args: []string{"bash", "-c", script}, Network: name == "Cmd.Network"})
		}
		for _, ip := range targets {
			if o := cmd(probe(ip)); strings.Contains(o.stdout, "hello-from-host") || strings.Contains(o.stdout, "exit=0") {
				t.Errorf("%s: reached the host's listener at %s: %q", name, ip, o.stdout)
			}
		}
		// Networking is set up: a tap interface and a default route that a
		// public address takes, while private and metadata addresses have
		// none. (ip route get sends nothing.)
		o := cmd(`grep -c tap0 /proc/net/dev; ip -4 route get 1.1.1.1; ip -4 route get 169.254.169.254 2>&1; ip -4 route get 192.168.1.1 2>&1; ip -4 route get 172.17.0.1 2>&1; cat /etc/resolv.conf`)
		if !strings.HasPrefix(o.stdout, "1\n") || !strings.Contains(o.stdout, "1.1.1.1 via 10.0.2.2 dev tap0") || strings.Count(o.stdout, "No route to host") < 3 || !strings.Contains(o.stdout, "nameserver 10.0.2.3") {
			t.Errorf("%s: network not set up as expected:\n%s%s", name, o.stdout, o.stderr)
		}
		// The metadata address: refused inside, nothing leaves.
		if o := cmd(probe("169.254.169.254")); !strings.Contains(o.stdout, "No route to host") {
			t.Errorf("%s: metadata address: %q", name, o.stdout)
		}
		// The command cannot take the block away.
		o = cmd(`ip route del unreachable 169.254.0.0/16 2>&1; ip route flush table main 2>&1; ip -4 route get 169.254.169.254 2>&1`)
		if !strings.Contains(o.stdout, "Operation not permitted") || !strings.HasSuffix(o.stdout, "No route to host\n") {
			t.Errorf("%s: the sandbox changed its routes: %q", name, o.stdout)
		}
		// Loopback inside the sandbox still works.
		o = cmd(`python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); c=socket.create_connection(s.getsockname()); print("lo-ok")' 2>&1 || echo no-python`)
		if !strings.Contains(o.stdout, "lo-ok") && !strings.Contains(o.stdout, "no-python") {
			t.Errorf("%s: loopback inside: %q", name, o.stdout)
		}
	}
}

func TestProcessLimitContainsForkBomb(t *testing.T) {
	modes(t, func(t *testing.T, p *Provider) {
		sb := newSandbox(t, p, sandbox.Spec{Limits: sandbox.Limits{Processes: 40}})
		// Try to hold 200 processes at once; the limit must stop it.
		o := runCmd(t, sb, sandbox.Cmd{Args: sh(`i=0; while [ $i -lt 200 ]; do sleep 1000 & i=$((i+1)); done; echo all-started`), Timeout: 20 * time.Second})
		if strings.Contains(o.stdout, "all-started") || !strings.Contains(strings.ToLower(o.stderr), "fork") {
			t.Fatalf("process limit not enforced: exit %d stdout %q stderr %q", o.res.ExitCode, o.stdout, o.stderr)
		}
		waitCgroupEmpty(t, p, sb)
		// The classic bomb ends (by itself or at the timeout) and takes
		// nothing with it.
		if _, err := os.Stat("/bin/bash"); err == nil {
			runCmd(t, sb, sandbox.Cmd{Args: []string{"bash", "-c", ":(){ :|:& };:; wait"}, Timeout: 1500 * time.Millisecond})
			waitCgroupEmpty(t, p, sb)
		}
		if err := exec.Command("true").Run(); err != nil {
			t.Fatalf("host cannot fork after the bomb: %v", err)
		}
		o = runCmd(t, sb, sandbox.Cmd{Args: sh("echo still-usable")})
		if o.stdout != "still-usable\n" {
			t.Fatalf("sandbox unusable after the bomb: %q %q", o.stdout, o.stderr)
		}
	})
}

// waitCgroupEmpty waits for the host to reap the sandbox's last (already
// dead) processes and fails if any remain.
func waitCgroupEmpty(t *testing.T, p *Provider, sb *Sandbox) {
	t.Helper()
	if p.cg == nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := p.cg.current(sb.id)
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left in the cgroup: %d, %v", n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// signalWriter reports when a marker first appears in the output.
type signalWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	once   sync.Once
}

func newSignalWriter(marker string) *signalWriter {
	return &signalWriter{marker: marker, seen: make(chan struct{})}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// hostProcs returns the host pids whose command line contains tag.
func hostProcs(t testing.TB, tag string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(tag)) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestTimeoutAndCancelKillWholeTree(t *testing.T) {
	for _, how := range []string{"timeout", "cancel"} {
		t.Run(how, func(t *testing.T) {
			modes(t, func(t *testing.T, p *Provider) {
				sb := newSandbox(t, p, sandbox.Spec{})
				tag := fmt.Sprintf("1000.%d", time.Now().UnixNano()%1_000_000_007)
				w := newSignalWriter("started")
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				cmd := sandbox.Cmd{
					// A backgrounded grandchild in its own session, and a
					// foreground sleep keeping the command alive.
					Args:   sh(`(setsid sleep ` + tag + ` &) ; sleep ` + tag + ` & echo started; wait`),
					Stdout: w,
				}
				if how == "timeout" {
					cmd.Timeout = 2 * time.Second
				}
				type ret struct {
					res sandbox.Result
					err error
				}
				done := make(chan ret, 1)
				go func() {
					res, err := sb.Exec(ctx, cmd)
					done <- ret{res, err}
				}()
				select {
				case <-w.seen:
				case r := <-done:
					t.Fatalf("command ended early: %+v %v", r.res, r.err)
				}
				deadline := time.Now().Add(5 * time.Second)
				for len(hostProcs(t, tag)) < 2 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if n := len(hostProcs(t, tag)); n < 2 {
					t.Fatalf("expected 2 sleeps running, found %d", n)
				}
				if how == "cancel" {
					cancel()
				}
				r := <-done
				switch how {
				case "timeout":
					if r.err != nil || !r.res.TimedOut {
						t.Fatalf("timeout: %+v %v", r.res, r.err)
					}
				case "cancel":
					if !errors.Is(r.err, context.Canceled) || !r.res.Killed {
						t.Fatalf("cancel: %+v %v", r.res, r.err)
					}
				}
				if left := hostProcs(t, tag); len(left) != 0 {
					t.Fatalf("processes survived: %v", left)
				}
			})
		})
	}
}

func TestMemoryLimit(t *testing.T) {
	modes(t, func(t *testing.T, p *Provider) {
		sb := newSandbox(t, p, sandbox.Spec{Limits: sandbox.Limits{MemoryBytes: 64 << 20}})
		// The shell holds 200 MB in a variable.
		o := runCmd(t, sb, sandbox.Cmd{Args: sh(`a=$(head -c 200000000 /dev/zero | tr '\0' x); echo survived ${#a}`), Timeout: time.Minute})
		if o.res.ExitCode == 0 || strings.Contains(o.stdout, "survived") {
			t.Fatalf("200 MB allocation under a 64 MB limit: %+v stdout %q", o.res, o.stdout)
		}
		if p.cg != nil && p.cg.memory && !o.res.Killed {
			t.Errorf("Killed not set for an OOM kill: %+v", o.res)
		}
		o = runCmd(t, sb, sandbox.Cmd{Args: sh(`a=$(head -c 1000000 /dev/zero | tr '\0' x); echo ${#a}`)})
		if o.stdout != "1000000\n" {
			t.Fatalf("small allocation failed: %+v %q %q", o.res, o.stdout, o.stderr)
		}
	})
}

func TestFileSizeLimit(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	sb := newSandbox(t, p, sandbox.Spec{Limits: sandbox.Limits{FileSizeBytes: 1 << 20}})
	o := runCmd(t, sb, sandbox.Cmd{Args: sh(`head -c 3000000 /dev/zero > big.bin`)})
	if o.res.ExitCode == 0 {
		t.Fatalf("3 MB write under a 1 MB limit succeeded: %+v", o.res)
	}
	st, err := sb.Stat(t.Context(), "big.bin")
	if err != nil || st.Size > 1<<20 {
		t.Fatalf("big.bin: %+v %v", st, err)
	}
}

func TestPathConfinement(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	sb := newSandbox(t, p, sandbox.Spec{})
	ctx := t.Context()
	if err := sb.WriteFile(ctx, "a/inside.txt", []byte("in"), 0); err != nil {
		t.Fatal(err)
	}
	// Links made by a command, as an agent's command could.
	o := runCmd(t, sb, sandbox.Cmd{Args: sh(`ln -s /etc etclink && ln -s ../../.. up && ln -s /etc/passwd abs && ln -s a/inside.txt ok && mkdir d && ln -s ../a d/sib`)})
	if o.res.ExitCode != 0 {
		t.Fatalf("setup: %q", o.stderr)
	}
	bad := []string{"../x", "/etc/passwd", "a/../../x", "..", "etclink/passwd", "etclink", "up/etc/passwd", "abs", "nul\x00byte", "a/\x00"}
	for _, path := range bad {
		if _, err := sb.ReadFile(ctx, path); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
			t.Errorf("ReadFile(%q) = %v, want ErrOutsideWorkspace", path, err)
		}
		if err := sb.WriteFile(ctx, path+"/new/f", []byte("x"), 0); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
			t.Errorf("WriteFile(%q) = %v, want ErrOutsideWorkspace", path+"/new/f", err)
		}
		if _, err := sb.Stat(ctx, path); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
			t.Errorf("Stat(%q) = %v, want ErrOutsideWorkspace", path, err)
		}
		if _, err := sb.List(ctx, path, false); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
			t.Errorf("List(%q) = %v, want ErrOutsideWorkspace", path, err)
		}
		if _, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"true"}, Dir: path}); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
			t.Errorf("Exec Dir %q = %v, want ErrOutsideWorkspace", path, err)
		}
	}
	for _, path := range []string{"etclink/hero-x", "up/tmp/hero-x", "abs"} {
		if err := sb.WriteFile(ctx, path, []byte("x"), 0); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
			t.Errorf("WriteFile(%q) = %v, want ErrOutsideWorkspace", path, err)
		}
	}
	for _, path := range []string{"../x", "/etc/passwd", "etclink/passwd", "up/etc"} {
		if err := sb.Remove(ctx, path, true); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
			t.Errorf("Remove(%q) = %v, want ErrOutsideWorkspace", path, err)
		}
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatal("host /etc/passwd damaged")
	}
	// Links that stay inside work.
	for _, path := range []string{"ok", "d/sib/inside.txt", "./a//inside.txt"} {
		if data, err := sb.ReadFile(ctx, path); err != nil || string(data) != "in" {
			t.Errorf("ReadFile(%q) = %q, %v", path, data, err)
		}
	}
	// Removing a link to outside removes the link, not the target.
	if err := sb.Remove(ctx, "etclink", false); err != nil {
		t.Fatalf("Remove link: %v", err)
	}
	if _, err := os.Stat("/etc/hostname"); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

func TestFileMethods(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	sb := newSandbox(t, p, sandbox.Spec{})
	ctx := t.Context()
	for path, body := range map[string]string{"README.md": "# hi\n", "src/main.go": "package main\n", "src/lib/x.go": "package lib\n", ".git/HEAD": "ref: refs/heads/main\n"} {
		if err := sb.WriteFile(ctx, path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := sb.WriteFile(ctx, "run.sh", []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if o := runCmd(t, sb, sandbox.Cmd{Args: []string{"./run.sh"}}); o.stdout != "ran\n" {
		t.Fatalf("executable written by WriteFile: %q %q", o.stdout, o.stderr)
	}
	all, err := sb.List(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, fi := range all {
		paths = append(paths, fi.Path)
	}
	want := ".git README.md run.sh src src/lib src/lib/x.go src/main.go"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("List recursive = %q, want %q", got, want)
	}
	top, err := sb.List(ctx, "src", false)
	if err != nil || len(top) != 2 || top[0].Path != "src/lib" || !top[0].IsDir || top[1].Size != int64(len("package main\n")) {
		t.Fatalf("List src = %+v, %v", top, err)
	}
	st, err := sb.Stat(ctx, "run.sh")
	if err != nil || st.Mode.Perm() != 0o755 || st.IsDir {
		t.Fatalf("Stat run.sh = %+v, %v", st, err)
	}
	if _, err := sb.ReadFile(ctx, "nope.txt"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("ReadFile missing = %v", err)
	}
	if _, err := sb.ReadFile(ctx, "src"); err == nil {
		t.Fatal("ReadFile of a directory succeeded")
	}
	if err := sb.Remove(ctx, "src", false); err == nil {
		t.Fatal("non-recursive Remove of a non-empty dir succeeded")
	}
	if err := sb.Remove(ctx, "src", true); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Stat(ctx, "src/main.go"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("after Remove: %v", err)
	}
	if err := sb.Remove(ctx, "", true); err == nil {
		t.Fatal("removing the workspace root succeeded")
	}
	// A FIFO planted by a command does not hang ReadFile.
	runCmd(t, sb, sandbox.Cmd{Args: []string{"mkfifo", "fifo"}})
	if _, err := sb.ReadFile(ctx, "fifo"); err == nil {
		t.Fatal("ReadFile of a FIFO succeeded")
	}
	if err := sb.Alive(ctx); err != nil {
		t.Fatal(err)
	}
	dir := sb.HostDir()
	if err := sb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("workspace left after Close: %v", err)
	}
	if _, err := sb.ReadFile(ctx, "README.md"); !errors.Is(err, sandbox.ErrClosed) {
		t.Fatalf("ReadFile after Close = %v", err)
	}
	if _, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"true"}}); !errors.Is(err, sandbox.ErrClosed) {
		t.Fatalf("Exec after Close = %v", err)
	}
	if err := sb.Alive(ctx); !errors.Is(err, sandbox.ErrClosed) {
		t.Fatalf("Alive after Close = %v", err)
	}
}

func TestStreamingOutput(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	sb := newSandbox(t, p, sandbox.Spec{})
	stdinR, stdinW := io.Pipe()
	w := newSignalWriter("first")
	done := make(chan error, 1)
	go func() {
		_, err := sb.Exec(t.Context(), sandbox.Cmd{Args: sh(`echo first; read line; echo "second $line"`), Stdin: stdinR, Stdout: w})
		done <- err
	}()
	select {
	case <-w.seen: // arrived while the command still waits for its input
	case err := <-done:
		t.Fatalf("command finished before output was seen: %v", err)
	}
	if _, err := io.WriteString(stdinW, "go\n"); err != nil {
		t.Fatal(err)
	}
	stdinW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := w.buf.String(); got != "first\nsecond go\n" {
		t.Fatalf("output %q", got)
	}
}

func TestConcurrentExecAndClose(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	sb := newSandbox(t, p, sandbox.Spec{})
	w := newSignalWriter("up")
	done := make(chan sandbox.Result, 1)
	go func() {
		res, _ := sb.Exec(context.Background(), sandbox.Cmd{Args: sh("echo up; sleep 1000"), Stdout: w})
		done <- res
	}()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := runCmd(t, sb, sandbox.Cmd{Args: []string{"echo", fmt.Sprint(i)}})
			if o.stdout != fmt.Sprintf("%d\n", i) {
				t.Errorf("concurrent exec %d: %q", i, o.stdout)
			}
		}()
	}
	wg.Wait()
	<-w.seen
	if err := sb.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.ExitCode == 0 {
		t.Fatalf("running command survived Close: %+v", res)
	}
}

func TestDestroyOrphan(t *testing.T) {
	t.Parallel()
	requireBwrap(t)
	base := t.TempDir()
	old, err := New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := old.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, sb.ID())
	// A new provider (after a restart) cleans up what the old one left.
	fresh, err := New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Destroy(t.Context(), sb.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan dir still there: %v", err)
	}
	if err := fresh.Destroy(t.Context(), "bw-0000000000000000"); err != nil {
		t.Fatalf("unknown id: %v", err)
	}
	if err := fresh.Destroy(t.Context(), "../etc"); err == nil {
		t.Fatal("malformed id accepted")
	}
	_ = sb.Close(t.Context())
}

func TestHealthAndUnavailable(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	if err := p.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := New(t.TempDir(), nil, WithBwrapPath("/nonexistent/bwrap"))
	if !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "apt-get install bubblewrap") {
		t.Fatalf("missing bwrap: %v", err)
	}
}
