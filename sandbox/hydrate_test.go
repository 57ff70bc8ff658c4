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
	"github.com/hero-dev/hero/sandbox/mirror"
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

// The workspace is filled from hero's mirror, which fetched on the host
// with the token: a host clone for a workspace on this host, a streamed
// bundle otherwise. The sandbox never sees the token and needs no network.
func TestHydrateFromMirror(t *testing.T) {
	t.Parallel()
	const token = "ghs_TESTtoken1234567890abcdefSECRET"
	srv, head, authorized := gitServer(t, token)
	url := srv.URL + "/git/repo.git"
	mirrors, err := mirror.New(filepath.Join(t.TempDir(), "mirrors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := mirrors.Repo(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	origin, _ := mirror.Origin(url)
	branch, commit, err := repo.Fetch(t.Context(), mirror.Remote{URL: url, Credential: mirror.TokenCredential(origin, token)}, "")
	if err != nil || branch != "main" || commit != head || authorized.Load() == 0 {
		t.Fatalf("fetch: %s %s %v (authorized %d)", branch, commit, err, authorized.Load())
	}

	for _, c := range []struct {
		name   string
		wrap   func(sandbox.Sandbox) sandbox.Sandbox
		method string
	}{
		{"host", func(s sandbox.Sandbox) sandbox.Sandbox { return s }, "clone"},
		{"remote", func(s sandbox.Sandbox) sandbox.Sandbox { return hiddenHost{s} }, "bundle"},
	} {
		sb := newBox(t)
		rep, err := sandbox.Hydrate(t.Context(), c.wrap(sb), sandbox.Source{Git: repo, Branch: branch, Origin: url, Install: true}, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if rep.Method != c.method || rep.Commit != head || rep.Source != url {
			t.Fatalf("%s: report %+v", c.name, rep)
		}
		if data, err := sb.ReadFile(t.Context(), "README.md"); err != nil || string(data) != "# served\n" {
			t.Fatalf("%s: README.md: %q %v", c.name, data, err)
		}
		if remote := sbRun(t, sb, "git", "remote", "get-url", "origin"); strings.TrimSpace(remote) != url {
			t.Fatalf("%s: remote url %q", c.name, remote)
		}
		// Sandboxed commands own the workspace: they can commit.
		sbRun(t, sb, "sh", "-c", "echo more >> README.md && git -c user.name=t -c user.email=t@x commit -qam more && git status --porcelain")
		// The token is nowhere in the workspace, raw or in its Basic form.
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
					t.Errorf("%s: token found in %s", c.name, path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// go.mod was found; the project allows no network, so install is skipped.
		if len(rep.Steps) != 2 || rep.Steps[1].Name != "install go" || !rep.Steps[1].Skipped || !strings.Contains(rep.Steps[1].Note, "network") {
			t.Fatalf("%s: install steps: %+v", c.name, rep.Steps)
		}
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
	mirrors, err := mirror.New(filepath.Join(t.TempDir(), "mirrors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := mirrors.Repo(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]sandbox.Source{
		"none":        {},
		"both":        {Path: "/tmp", Git: repo, Branch: "main"},
		"no branch":   {Git: repo},
		"branch flag": {Git: repo, Branch: "--upload-pack=evil"},
		"origin flag": {Git: repo, Branch: "main", Origin: "--config=x"},
		"missing dir": {Path: "/nonexistent/repo"},
		// update-ref --stdin or a path out of .git/refs
		"work branch newline": {Git: repo, Branch: "main", Commit: strings.Repeat("a", 40), WorkBranch: "x\nupdate refs/heads/main " + strings.Repeat("0", 40)},
		"work branch dots":    {Git: repo, Branch: "main", Commit: strings.Repeat("a", 40), WorkBranch: "../../config"},
		"base ref not refs/":  {Git: repo, Branch: "main", Commit: strings.Repeat("a", 40), BaseRef: "HEAD"},
	} {
		_, err := sandbox.Hydrate(t.Context(), sb, src, nil)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
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
