// Package sandboxtest is the provider conformance suite: one table of
// behaviours every sandbox.Provider must show (exec, streaming, stdin,
// exit codes, timeouts, killing the whole process tree, file confinement,
// environment, isolation between sandboxes, limits where the provider has
// them), run against
// bubblewrap (sandbox/bwrap) and E2B (sandbox/e2b, against its fake).
package sandboxtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
)

// Options says what a provider supports beyond the common table.
type Options struct {
	// Processes: Limits.Processes is enforced for the sandbox.
	Processes bool
	// Disk: Limits.DiskBytes is enforced for the workspace.
	Disk bool
}

// New makes a fresh sandbox for one test; the suite closes it.
type New func(t *testing.T, spec sandbox.Spec) sandbox.Sandbox

// Run runs the table; each behaviour is a subtest.
func Run(t *testing.T, newSandbox New, opts Options) {
	open := func(t *testing.T, spec sandbox.Spec) sandbox.Sandbox {
		t.Helper()
		sb := newSandbox(t, spec)
		t.Cleanup(func() { _ = sb.Close(context.Background()) })
		return sb
	}
	run := func(t *testing.T, sb sandbox.Sandbox, c sandbox.Cmd) (sandbox.Result, string) {
		t.Helper()
		var out bytes.Buffer
		if c.Stdout == nil {
			c.Stdout = &out
		}
		if c.Stderr == nil {
			c.Stderr = &out
		}
		res, err := sb.Exec(t.Context(), c)
		if err != nil {
			t.Fatalf("%q: %v", c.Args, err)
		}
		return res, out.String()
	}

	t.Run("exit codes", func(t *testing.T) {
		sb := open(t, sandbox.Spec{})
		for _, c := range []struct {
			script string
			code   int
		}{{"true", 0}, {"exit 3", 3}, {"echo oops >&2; exit 42", 42}} {
			res, out := run(t, sb, sandbox.Cmd{Args: []string{"sh", "-c", c.script}})
			if res.ExitCode != c.code || res.TimedOut || res.Killed {
				t.Errorf("%q: %+v %q", c.script, res, out)
			}
		}
		// A command that cannot start is an error or a non-zero exit,
		// never success.
		res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"hero-no-such-command"}})
		if err == nil && res.ExitCode == 0 {
			t.Errorf("a missing command succeeded: %+v", res)
		}
	})

	t.Run("streaming and stdin", func(t *testing.T) {
		sb := open(t, sandbox.Spec{})
		first := make(chan struct{})
		var once sync.Once
		var out syncBuf
		out.onWrite = func() { once.Do(func() { close(first) }) }
		pr, pw := io.Pipe()
		done := make(chan sandbox.Result, 1)
		go func() {
			res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", "echo first; read line; echo got $line"}, Stdin: pr, Stdout: &out, Timeout: time.Minute})
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			t.Fatal("no output while the command runs: output is not streamed")
		}
		if _, err := io.WriteString(pw, "it\n"); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		res := <-done
		if res.ExitCode != 0 || out.String() != "first\ngot it\n" {
			t.Fatalf("%+v %q", res, out.String())
		}
		res, got := run(t, sb, sandbox.Cmd{Args: []string{"cat"}, Stdin: strings.NewReader("all of stdin\x00bytes")})
		if res.ExitCode != 0 || got != "all of stdin\x00bytes" {
			t.Fatalf("cat: %+v %q", res, got)
		}
	})

	t.Run("timeout kills the whole tree", func(t *testing.T) {
		sb := open(t, sandbox.Spec{})
		start := time.Now()
		// The background child would leave a file after 3 s.
		res, _ := run(t, sb, sandbox.Cmd{Args: []string{"sh", "-c", "(sleep 3; echo late > late.txt) & sleep 60"}, Timeout: time.Second})
		if !res.TimedOut {
			t.Fatalf("not timed out: %+v", res)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("the timeout took %s", d)
		}
		time.Sleep(4 * time.Second)
		if _, err := sb.Stat(t.Context(), "late.txt"); !errors.Is(err, sandbox.ErrNotFound) {
			t.Fatalf("a background child outlived the timeout: %v", err)
		}
	})

	t.Run("cancel kills", func(t *testing.T) {
		sb := open(t, sandbox.Spec{})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		res, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"sh", "-c", "(sleep 3; echo late > late.txt) & sleep 60"}})
		if !res.Killed || !errors.Is(err, context.Canceled) {
			t.Fatalf("%+v %v", res, err)
		}
		time.Sleep(4 * time.Second)
		if _, err := sb.Stat(t.Context(), "late.txt"); !errors.Is(err, sandbox.ErrNotFound) {
			t.Fatalf("a background child outlived the cancel: %v", err)
		}
	})

	t.Run("environment and working directory", func(t *testing.T) {
		sb := open(t, sandbox.Spec{Env: map[string]string{"HERO_A": "from spec", "HERO_B": "spec"}})
		if err := sb.WriteFile(t.Context(), "sub/keep", nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, out := run(t, sb, sandbox.Cmd{Args: []string{"sh", "-c", `printf '%s|%s|%s' "$HERO_A" "$HERO_B" "$(basename "$PWD")"`}, Dir: "sub",
			Env: map[string]string{"HERO_B": `it's "quoted" $HOME`}})
		if out != `from spec|it's "quoted" $HOME|sub` {
			t.Fatalf("%q", out)
		}
		if _, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"true"}, Dir: "../.."}); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
			t.Fatalf("Dir outside the workspace: %v", err)
		}
		// NoSecrets leaves the Spec's variables out.
		_, out = run(t, sb, sandbox.Cmd{Args: []string{"sh", "-c", `printf '%s' "${HERO_A-unset}"`}, NoSecrets: true})
		if out != "unset" {
			t.Fatalf("NoSecrets: %q", out)
		}
	})

	t.Run("files", func(t *testing.T) {
		sb := open(t, sandbox.Spec{})
		ctx := t.Context()
		if err := sb.WriteFile(ctx, "d/e/f.txt", []byte("hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if data, err := sb.ReadFile(ctx, "d/e/f.txt"); err != nil || string(data) != "hello\n" {
			t.Fatalf("read back %q %v", data, err)
		}
		if _, out := run(t, sb, sandbox.Cmd{Args: []string{"cat", "d/e/f.txt"}}); out != "hello\n" {
			t.Fatalf("a command sees %q", out)
		}
		if st, err := sb.Stat(ctx, "d/e/f.txt"); err != nil || st.Size != 6 || st.IsDir || st.Path != "d/e/f.txt" {
			t.Fatalf("stat %+v %v", st, err)
		}
		list, err := sb.List(ctx, "", true)
		var paths []string
		for _, fi := range list {
			paths = append(paths, fi.Path)
		}
		if err != nil || strings.Join(paths, ",") != "d,d/e,d/e/f.txt" {
			t.Fatalf("list %v %v", paths, err)
		}
		if _, err := sb.ReadFile(ctx, "missing"); !errors.Is(err, sandbox.ErrNotFound) {
			t.Fatalf("missing file: %v", err)
		}
		if _, err := sb.ReadFile(ctx, "d"); !errors.Is(err, sandbox.ErrNotRegularFile) {
			t.Fatalf("reading a directory: %v", err)
		}
		if err := sb.Remove(ctx, "d", false); err == nil {
			t.Fatal("a non-empty directory was removed without recursive")
		}
		if err := sb.Remove(ctx, "d", true); err != nil {
			t.Fatal(err)
		}
		if _, err := sb.Stat(ctx, "d"); !errors.Is(err, sandbox.ErrNotFound) {
			t.Fatalf("after remove: %v", err)
		}
	})

	t.Run("file confinement", func(t *testing.T) {
		sb := open(t, sandbox.Spec{})
		ctx := t.Context()
		run(t, sb, sandbox.Cmd{Args: []string{"sh", "-c", "ln -s /etc/passwd link && ln -s / up && ln -s .. parent && mkdir -p ok && echo in > ok/x"}})
		for _, p := range []string{"../x", "/etc/passwd", "a/../../x", "link", "up/etc/passwd", "parent/x", "x\x00y"} {
			if _, err := sb.ReadFile(ctx, p); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
				t.Errorf("read %q: %v", p, err)
			}
		}
		for _, p := range []string{"../x", "/tmp/x", "up/tmp/x", "parent/x"} {
			if err := sb.WriteFile(ctx, p, []byte("no"), 0o644); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
				t.Errorf("write %q: %v", p, err)
			}
		}
		if _, err := sb.List(ctx, "up", false); !errors.Is(err, sandbox.ErrOutsideWorkspace) {
			t.Errorf("list through a link out: %v", err)
		}
		if data, err := sb.ReadFile(ctx, "ok/x"); err != nil || string(data) != "in\n" {
			t.Errorf("a file inside: %q %v", data, err)
		}
	})

	t.Run("closed", func(t *testing.T) {
		sb := newSandbox(t, sandbox.Spec{})
		if err := sb.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := sb.Close(t.Context()); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if _, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"true"}}); !errors.Is(err, sandbox.ErrClosed) {
			t.Fatalf("exec after close: %v", err)
		}
		if _, err := sb.ReadFile(t.Context(), "x"); !errors.Is(err, sandbox.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	})

	t.Run("sandboxes do not see each other", func(t *testing.T) {
		a, b := open(t, sandbox.Spec{}), open(t, sandbox.Spec{})
		if a.ID() == b.ID() {
			t.Fatalf("two sandboxes share the id %s", a.ID())
		}
		// The workspace and HOME (/tmp is not in the table: E2B's fake runs
		// commands on this host, whose /tmp every fake sandbox shares).
		run(t, a, sandbox.Cmd{Args: []string{"sh", "-c", `echo a > mine.txt; echo a > "$HOME/mine"`}})
		res, out := run(t, b, sandbox.Cmd{Args: []string{"sh", "-c", `cat mine.txt "$HOME/mine" 2>/dev/null; ls -A`}})
		if strings.Contains(out, "a\n") || strings.Contains(out, "mine") {
			t.Fatalf("another sandbox sees the first one's files: %+v %q", res, out)
		}
	})

	if opts.Disk {
		t.Run("disk limit", func(t *testing.T) {
			const limit = 32 << 20
			sb := open(t, sandbox.Spec{Limits: sandbox.Limits{DiskBytes: limit}})
			res, out := run(t, sb, sandbox.Cmd{Args: []string{"sh", "-c", `head -c 100000000 /dev/zero > big && echo wrote`}, Timeout: time.Minute})
			if res.ExitCode == 0 || strings.Contains(out, "wrote") {
				t.Fatalf("100 MB written under a 32 MB disk limit: %+v %q", res, out)
			}
			if fi, err := sb.Stat(t.Context(), "big"); err == nil && fi.Size > limit {
				t.Fatalf("a %d-byte file under a %d-byte limit", fi.Size, limit)
			}
			// Deleting makes room again.
			res, out = run(t, sb, sandbox.Cmd{Args: []string{"sh", "-c", `rm -f big && head -c 1000000 /dev/zero > small && echo fine`}})
			if res.ExitCode != 0 || !strings.Contains(out, "fine") {
				t.Fatalf("after deleting: %+v %q", res, out)
			}
		})
	}

	if opts.Processes {
		t.Run("process limit", func(t *testing.T) {
			sb := open(t, sandbox.Spec{Limits: sandbox.Limits{Processes: 16}})
			res, out := run(t, sb, sandbox.Cmd{Args: []string{"sh", "-c", `n=0; for i in $(seq 64); do sleep 5 & n=$((n+1)); done; echo started $n`}, Timeout: time.Minute})
			if res.ExitCode == 0 && strings.Contains(out, "started 64") {
				t.Fatalf("64 processes ran under a limit of 16: %q", out)
			}
		})
	}
}

// syncBuf is a buffer safe for a command's concurrent writes.
type syncBuf struct {
	mu      sync.Mutex
	b       bytes.Buffer
	onWrite func()
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	s.mu.Unlock()
	if s.onWrite != nil {
		s.onWrite()
	}
	return n, err
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
