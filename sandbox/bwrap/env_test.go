package bwrap

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
)

// preloadObject compiles a shared object whose constructor appends the pid
// of whatever loads it to marker. It skips without a C compiler.
func preloadObject(t *testing.T, marker string) string {
	t.Helper()
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed: cannot build the LD_PRELOAD probe")
	}
	dir := openDir(t)
	src := filepath.Join(dir, "probe.c")
	code := fmt.Sprintf(`#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void probe(void) {
	int fd = open(%q, O_WRONLY|O_CREAT|O_APPEND, 0644);
	if (fd < 0) return;
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%%d\n", (int)getpid());
	write(fd, buf, n);
	close(fd);
}
`, marker)
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	so := filepath.Join(dir, "probe.so")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", so, src).CombinedOutput(); err != nil {
		t.Fatalf("compile probe: %v: %s", err, out)
	}
	// Prove the probe works, so that an absent marker below means
	// something.
	check := exec.Command("true")
	check.Env = []string{"LD_PRELOAD=" + so}
	if err := check.Run(); err != nil {
		t.Fatalf("run probe: %v", err)
	}
	data, err := os.ReadFile(marker)
	if err != nil || len(data) == 0 {
		t.Fatalf("the probe did not run under LD_PRELOAD on the host: %v", err)
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	return so
}

// openDir is a temporary directory every uid can use, so that the probe
// would also load into, and report from, a host process running under a
// sandbox's unprivileged uid.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hero-env-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A project secret named LD_PRELOAD (issue 8 #1) must not load anything
// into a process on the host: bwrap (and prlimit in the uid mode) start
// with a fixed environment, and the variable reaches only the sandboxed
// command.
func TestSecretEnvNeverReachesHostProcesses(t *testing.T) {
	modes(t, func(t *testing.T, p *Provider) {
		marker := filepath.Join(openDir(t), "loaded-on-host")
		so := preloadObject(t, marker)
		sb := newSandbox(t, p, sandbox.Spec{Env: map[string]string{"LD_PRELOAD": so, "GCONV_PATH": "/nonexistent"}})
		o := runCmd(t, sb, sandbox.Cmd{
			Args: sh(`echo "in=$LD_PRELOAD"`),
			Env:  map[string]string{"MALLOC_CHECK_": "3"},
		})
		if o.res.ExitCode != 0 || strings.TrimSpace(o.stdout) != "in="+so {
			t.Fatalf("the sandboxed command did not get its environment: exit %d stdout %q stderr %q", o.res.ExitCode, o.stdout, o.stderr)
		}
		if data, err := os.ReadFile(marker); err == nil {
			t.Fatalf("LD_PRELOAD from the sandbox's environment ran on the host (pids %q)", strings.Fields(string(data)))
		}
	})
}

// Secret values are in no host process's argv or environment while a
// command runs; only the sandboxed processes (another mount namespace)
// hold them.
func TestSecretValuesNotInHostProcesses(t *testing.T) {
	modes(t, func(t *testing.T, p *Provider) {
		var raw [12]byte
		_, _ = rand.Read(raw[:])
		value := "v-" + hex.EncodeToString(raw[:])
		sb := newSandbox(t, p, sandbox.Spec{Env: map[string]string{"API_TOKEN": value}})
		stdinR, stdinW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan output, 1)
		go func() {
			var errb bytes.Buffer
			res, err := sb.Exec(t.Context(), sandbox.Cmd{
				Args:  sh(`echo "started ${#API_TOKEN}"; cat >/dev/null; echo "$API_TOKEN"`),
				Stdin: stdinR, Stdout: outW, Stderr: &errb,
			})
			outW.Close()
			if err != nil {
				t.Errorf("Exec: %v", err)
			}
			done <- output{res: res, stderr: errb.String()}
		}()
		lines := bufio.NewReader(outR)
		firstLine := make(chan string, 1)
		go func() {
			l, _ := lines.ReadString('\n')
			firstLine <- l
		}()
		select {
		case first := <-firstLine:
			if first != fmt.Sprintf("started %d\n", len(value)) {
				stdinW.Close()
				t.Fatalf("first line %q", first)
			}
		case <-time.After(30 * time.Second):
			stdinW.Close()
			t.Fatal("the command did not start")
		}
		// The command is blocked on stdin: every process of it exists now.
		self, err := os.Readlink("/proc/self/ns/mnt")
		if err != nil {
			t.Fatal(err)
		}
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, dir := range procs {
			ns, err := os.Readlink(dir + "/ns/mnt")
			if err != nil || ns != self {
				continue // gone, or inside a sandbox
			}
			for _, f := range []string{"cmdline", "environ"} {
				data, _ := os.ReadFile(filepath.Join(dir, f))
				if bytes.Contains(data, []byte(value)) {
					cmdline, _ := os.ReadFile(dir + "/cmdline")
					t.Errorf("host process %s (%q) has the secret in its %s", dir, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), f)
				}
			}
		}
		stdinW.Close()
		rest, _ := io.ReadAll(lines)
		select {
		case o := <-done:
			if o.res.ExitCode != 0 || string(rest) != value+"\n" {
				t.Fatalf("exit %d, rest %q, stderr %q", o.res.ExitCode, rest, o.stderr)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("command did not finish")
		}
	})
}
