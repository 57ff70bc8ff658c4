package tools

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox"
)

// hostSandbox is a sandbox.Sandbox over a temporary directory of the host,
// for testing tool logic: commands run with os/exec (no isolation), paths
// are confined by the same rules as the real providers (absolute, "..",
// NUL and symlink escapes are ErrOutsideWorkspace).
type hostSandbox struct {
	root   string
	calls  atomic.Int64
	mu     sync.Mutex
	closed bool
	fail   error // when set, every call returns it
}

var _ sandbox.Sandbox = (*hostSandbox)(nil)

func newHostSandbox(t *testing.T) *hostSandbox {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &hostSandbox{root: root}
}

// setFail makes every later call fail with err (nil restores).
func (s *hostSandbox) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *hostSandbox) enter() error {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return sandbox.ErrClosed
	}
	return s.fail
}

// resolve maps a workspace-relative path to a host path inside root,
// following symlinks of the part that exists.
func (s *hostSandbox) resolve(p string) (string, error) {
	if strings.ContainsRune(p, 0) || filepath.IsAbs(p) || slices.Contains(strings.Split(p, "/"), "..") {
		return "", fmt.Errorf("%q: %w", p, sandbox.ErrOutsideWorkspace)
	}
	full := filepath.Join(s.root, p)
	existing, rest := full, ""
	for {
		real, err := filepath.EvalSymlinks(existing)
		if err == nil {
			full = filepath.Join(real, rest)
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = filepath.Dir(existing)
	}
	if full != s.root && !strings.HasPrefix(full, s.root+string(filepath.Separator)) {
		return "", fmt.Errorf("%q: %w", p, sandbox.ErrOutsideWorkspace)
	}
	return full, nil
}

func (s *hostSandbox) ID() string { return "host:" + s.root }

func (s *hostSandbox) Exec(ctx context.Context, c sandbox.Cmd) (sandbox.Result, error) {
	if err := s.enter(); err != nil {
		return sandbox.Result{}, err
	}
	if len(c.Args) == 0 {
		return sandbox.Result{}, errors.New("empty argv")
	}
	dir, err := s.resolve(c.Dir)
	if err != nil {
		return sandbox.Result{}, err
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, c.Args[0], c.Args[1:]...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range c.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err = cmd.Run()
	res := sandbox.Result{Duration: time.Since(start)}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = 128 + int(ws.Signal())
		}
	}
	var exitErr *exec.ExitError
	switch {
	case tctx.Err() != nil && ctx.Err() == nil:
		res.TimedOut = true
	case ctx.Err() != nil:
		res.Killed = true
	case err != nil && !errors.As(err, &exitErr):
		return res, err
	}
	return res, nil
}

func (s *hostSandbox) ReadFile(_ context.Context, p string) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	full, err := s.resolve(p)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(full)
}

func (s *hostSandbox) WriteFile(_ context.Context, p string, data []byte, perm fs.FileMode) error {
	if err := s.enter(); err != nil {
		return err
	}
	full, err := s.resolve(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(full, data, perm); err != nil {
		return err
	}
	return os.Chmod(full, perm)
}

func (s *hostSandbox) info(full string, fi fs.FileInfo) sandbox.FileInfo {
	rel, _ := filepath.Rel(s.root, full)
	if rel == "." {
		rel = ""
	}
	return sandbox.FileInfo{Path: filepath.ToSlash(rel), Size: fi.Size(), Mode: fi.Mode(), ModTime: fi.ModTime(), IsDir: fi.IsDir()}
}

func (s *hostSandbox) List(_ context.Context, p string, recursive bool) ([]sandbox.FileInfo, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	full, err := s.resolve(p)
	if err != nil {
		return nil, err
	}
	var out []sandbox.FileInfo
	if !recursive {
		entries, err := os.ReadDir(full)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Name() == ".git" {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				return nil, err
			}
			out = append(out, s.info(filepath.Join(full, e.Name()), fi))
		}
		return out, nil
	}
	err = filepath.WalkDir(full, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == full {
			return nil
		}
		if d.Name() == ".git" {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, s.info(path, fi))
		return nil
	})
	return out, err
}

func (s *hostSandbox) Stat(_ context.Context, p string) (sandbox.FileInfo, error) {
	if err := s.enter(); err != nil {
		return sandbox.FileInfo{}, err
	}
	full, err := s.resolve(p)
	if err != nil {
		return sandbox.FileInfo{}, err
	}
	fi, err := os.Stat(full)
	if err != nil {
		return sandbox.FileInfo{}, err
	}
	return s.info(full, fi), nil
}

func (s *hostSandbox) Remove(_ context.Context, p string, recursive bool) error {
	if err := s.enter(); err != nil {
		return err
	}
	full, err := s.resolve(p)
	if err != nil {
		return err
	}
	if full == s.root {
		return fmt.Errorf("refusing to remove the workspace root: %w", fs.ErrInvalid)
	}
	if recursive {
		return os.RemoveAll(full)
	}
	return os.Remove(full)
}

func (s *hostSandbox) Alive(context.Context) error { return s.enter() }

func (s *hostSandbox) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// recordingForge is an engine.Forge that records what it was asked to do.
type recordingForge struct {
	mu       sync.Mutex
	pushes   []string
	prs      []recordedPR
	comments []string
	reads    []string // "issue 0", "pull 7": what the reading tools asked
	issues   map[int]*engine.ForgeIssue
	pulls    map[int]*engine.ForgePullRequest
	own      int // the number the run is about (0: none)
	// lastPushed is what a pull request without a head opens from, as
	// the GitHub forge does.
	lastPushed string
	err        error // returned by every call when set
}

type recordedPR struct {
	Head, Title, Body string
	Draft             bool
}

var _ engine.Forge = (*recordingForge)(nil)

func (f *recordingForge) Push(_ context.Context, _ sandbox.Sandbox, branch string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	if branch == "" {
		branch = "hero/work"
	}
	f.pushes = append(f.pushes, branch)
	f.lastPushed = branch
	return branch, nil
}

func (f *recordingForge) CreatePullRequest(_ context.Context, head, title, body string, draft bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	if head == "" {
		if head = f.lastPushed; head == "" {
			return "", fmt.Errorf("this run has pushed no branch yet")
		}
	}
	f.prs = append(f.prs, recordedPR{head, title, body, draft})
	return fmt.Sprintf("https://github.example/acme/app/pull/%d", len(f.prs)), nil
}

func (f *recordingForge) Comment(_ context.Context, body string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.comments = append(f.comments, body)
	return nil
}

func (f *recordingForge) ReadIssue(_ context.Context, number int) (*engine.ForgeIssue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, fmt.Sprintf("issue %d", number))
	if f.err != nil {
		return nil, f.err
	}
	if number == 0 {
		number = f.own
	}
	if is, ok := f.issues[number]; ok {
		return is, nil
	}
	return nil, fmt.Errorf("issue #%d was not found", number)
}

func (f *recordingForge) ReadPullRequest(_ context.Context, number int) (*engine.ForgePullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, fmt.Sprintf("pull %d", number))
	if f.err != nil {
		return nil, f.err
	}
	if number == 0 {
		number = f.own
	}
	if pr, ok := f.pulls[number]; ok {
		return pr, nil
	}
	return nil, fmt.Errorf("pull request #%d was not found", number)
}
