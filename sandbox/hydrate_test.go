package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
)

func newBox(t *testing.T) *bwrap.Sandbox {
	t.Helper()
	p := newBwrap(t, "")
	sb, err := p.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close(context.Background()) })
	return sb.(*bwrap.Sandbox)
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// makeRepo creates a git repository with one commit and returns its dir
// and HEAD.
func makeRepo(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	for name, body := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "initial")
	return dir, git(t, dir, "rev-parse", "HEAD")
}

func sbRun(t *testing.T, sb sandbox.Sandbox, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: args, Stdout: &out, Stderr: &out})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%v: exit %d, %v\n%s", args, res.ExitCode, err, out.String())
	}
	return out.String()
}

func TestHydrateLocalCopy(t *testing.T) {
	t.Parallel()
	dir, head := makeRepo(t, map[string]string{"main.go": "package main\n", "sub/notes.txt": "one\n"})
	// An uncommitted change and a link must arrive as they are.
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/notes.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	sb := newBox(t)
	rep, err := sandbox.Hydrate(t.Context(), sb, sandbox.Source{Path: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Method != "copy" || rep.Commit != head || rep.Files < 3 {
		t.Fatalf("report: %+v", rep)
	}
	if diff := sbRun(t, sb, "git", "diff", "--stat"); !strings.Contains(diff, "main.go") {
		t.Fatalf("git diff inside the sandbox: %q", diff)
	}
	if data, err := sb.ReadFile(t.Context(), "link"); err != nil || string(data) != "one\n" {
		t.Fatalf("link: %q %v", data, err)
	}
	// The workspace is writable by sandboxed commands.
	sbRun(t, sb, "sh", "-c", "echo more >> sub/notes.txt && git add -A")
}

// hiddenHost hides HostWorkspace, as a remote provider's sandbox would.
type hiddenHost struct{ sandbox.Sandbox }

func TestHydrateLocalTarStream(t *testing.T) {
	t.Parallel()
	dir, head := makeRepo(t, map[string]string{"a.txt": "alpha\n", "deep/er/b.txt": "beta\n"})
	if err := os.Chmod(filepath.Join(dir, "a.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	sb := newBox(t)
	rep, err := sandbox.Hydrate(t.Context(), hiddenHost{sb}, sandbox.Source{Path: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Method != "tar" || rep.Commit != head {
		t.Fatalf("report: %+v", rep)
	}
	if data, err := sb.ReadFile(t.Context(), "deep/er/b.txt"); err != nil || string(data) != "beta\n" {
		t.Fatalf("b.txt: %q %v", data, err)
	}
	if st, err := sb.Stat(t.Context(), "a.txt"); err != nil || st.Mode.Perm() != 0o755 {
		t.Fatalf("a.txt: %+v %v", st, err)
	}
	hostStatus := git(t, dir, "status", "--porcelain")
	if status := strings.TrimSpace(sbRun(t, sb, "git", "status", "--porcelain")); status != hostStatus {
		t.Fatalf("git status after tar: %q, on the host %q", status, hostStatus)
	}
}

// gitServer serves bare repositories over smart HTTP with git
// http-backend, requiring Basic auth with the given token.
func gitServer(t *testing.T, token string) (*httptest.Server, string, *atomic.Int32) {
	t.Helper()
	execPath := strings.TrimSpace(mustOutput(t, "git", "--exec-path"))
	root := t.TempDir()
	src, head := makeRepo(t, map[string]string{"README.md": "# served\n", "go.mod": "module example.com/served\n\ngo 1.22\n"})
	git(t, root, "clone", "-q", "--bare", src, "repo.git")
	authorized := &atomic.Int32{}
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Root: "/git",
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "x-access-token" || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		authorized.Add(1)
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, head, authorized
}

func mustOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

func TestHydrateCloneWithToken(t *testing.T) {
	t.Parallel()
	const token = "ghs_TESTtoken1234567890abcdefSECRET"
	srv, head, authorized := gitServer(t, token)
	url := srv.URL + "/git/repo.git"

	sb := newBox(t)
	rep, err := sandbox.Hydrate(t.Context(), sb, sandbox.Source{URL: url, Token: token, Branch: "main", Install: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Method != "clone" || rep.Commit != head || rep.Source != url || authorized.Load() == 0 {
		t.Fatalf("report %+v, authorized requests %d", rep, authorized.Load())
	}
	if data, err := sb.ReadFile(t.Context(), "README.md"); err != nil || string(data) != "# served\n" {
		t.Fatalf("README.md: %q %v", data, err)
	}
	// The token is nowhere in the workspace (config, logs, packed refs…),
	// neither raw nor in its Basic-auth form.
	if remote := sbRun(t, sb, "git", "remote", "get-url", "origin"); strings.TrimSpace(remote) != url {
		t.Fatalf("remote url %q", remote)
	}
	forms := []string{token, "eC1hY2Nlc3MtdG9rZW46Z2hzX1RFU1R0b2tlbjEyMzQ1Njc4OTBhYmNkZWZTRUNSRVQ="}
	err = filepath.Walk(sb.HostDir(), func(path string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range forms {
			if bytes.Contains(data, []byte(f)) {
				t.Errorf("token found in %s", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{rep.String()} {
		if strings.Contains(s, token) {
			t.Fatal("token in report")
		}
	}
	// go.mod was found; the project allows no network, so install is skipped.
	if len(rep.Steps) != 2 || rep.Steps[1].Name != "install go" || !rep.Steps[1].Skipped || !strings.Contains(rep.Steps[1].Note, "network") {
		t.Fatalf("install steps: %+v", rep.Steps)
	}

	// A wrong token fails with git's message and without the token.
	const wrong = "ghs_WRONGtoken_should_not_leak"
	other := newBox(t)
	_, err = sandbox.Hydrate(t.Context(), other, sandbox.Source{URL: url, Token: wrong}, nil)
	if err == nil || strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), "git exited") {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestHydrateInstall(t *testing.T) {
	t.Parallel()
	dir, _ := makeRepo(t, map[string]string{
		"go.mod":     "module example.com/x\n\ngo 1.22\n",
		"yarn.lock":  "# yarn lockfile v1\n",
		"Cargo.lock": "version = 3\n",
	})
	sb := newBox(t)
	rep, err := sandbox.Hydrate(t.Context(), sb, sandbox.Source{Path: dir, Install: true, AllowNetwork: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]sandbox.Step{}
	for _, s := range rep.Steps {
		steps[s.Name] = s
	}
	if s, ok := steps["install go"]; !ok || s.Skipped || s.ExitCode != 0 {
		if _, err := exec.LookPath("go"); err == nil {
			t.Fatalf("go mod download: %+v", s)
		}
	}
	// yarn is not installed in the sandbox here: skipped with a note.
	if s := steps["install yarn"]; !s.Skipped || !strings.Contains(s.Note, "yarn is not installed") {
		if hasSandboxTool(t, sb, "yarn") {
			t.Skip("yarn is installed on this machine")
		}
		t.Fatalf("yarn step: %+v", s)
	}
	if _, ok := steps["install cargo"]; !ok {
		t.Fatalf("Cargo.lock not detected: %+v", rep.Steps)
	}
	if !strings.Contains(rep.String(), "install yarn: skipped") {
		t.Fatalf("report text: %s", rep.String())
	}
}

func hasSandboxTool(t *testing.T, sb sandbox.Sandbox, tool string) bool {
	res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", `command -v "$1"`, "sh", tool}})
	return err == nil && res.ExitCode == 0
}

func TestHydrateRejectsBadSources(t *testing.T) {
	t.Parallel()
	sb := newBox(t)
	for name, src := range map[string]sandbox.Source{
		"none":        {},
		"both":        {Path: "/tmp", URL: "https://example.com/r.git"},
		"password":    {URL: "https://user:hunter2@example.com/r.git"},
		"scheme":      {URL: "ext::sh -c touch% /tmp/pwned"},
		"file scheme": {URL: "file:///etc"},
		"branch flag": {URL: "https://example.com/r.git", Branch: "--upload-pack=evil"},
		"missing dir": {Path: "/nonexistent/repo"},
		"token ssh":   {URL: "ssh://git@example.com/r.git", Token: "t"},
	} {
		_, err := sandbox.Hydrate(t.Context(), sb, src, nil)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: password leaked: %v", name, err)
		}
	}
	if _, err := sandbox.Hydrate(t.Context(), sb, sandbox.Source{}, nil); !strings.Contains(err.Error(), "no source") {
		t.Fatalf("message: %v", err)
	}
	entries, err := sb.List(t.Context(), "", false)
	if err != nil || len(entries) != 0 {
		t.Fatalf("workspace touched: %v %v", entries, errors.Join(err))
	}
}

// A Lease hydrates through its Unwrap chain with the host copy.
func TestHydrateThroughLease(t *testing.T) {
	t.Parallel()
	p := newBwrap(t, "")
	m := newManager(t, p, newMemStore(), sandbox.ManagerConfig{})
	l, err := m.Acquire(t.Context(), sandbox.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := makeRepo(t, map[string]string{"x.txt": "x\n"})
	rep, err := sandbox.Hydrate(t.Context(), l, sandbox.Source{Path: dir}, nil)
	if err != nil || rep.Method != "copy" {
		t.Fatalf("%+v %v", rep, err)
	}
}
