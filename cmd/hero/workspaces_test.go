package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	ghsurface "github.com/hero-dev/hero/webhooks/github"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// headerRecorder is a git host in front of target that records the
// Authorization header of every request.
type headerRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string
}

func newHeaderRecorder(t *testing.T, target string) *headerRecorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	h := &headerRecorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.auth = append(h.auth, r.Header.Get("Authorization"))
		h.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *headerRecorder) headers() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.auth...)
}

// newTestWorkspaces is cmd/hero's workspaces on a real bubblewrap
// provider and mirror directory, cloning as withAgent wires them: with
// GITHUB_TOKEN=token (when set) through the GitHub publisher of
// GITHUB_API_URL=apiURL. with changes the rest of the configuration.
func newTestWorkspaces(t *testing.T, apiURL, token string, with ...func(*workspacesConfig)) (*workspaces, *store.DB) {
	t.Helper()
	prov := enginetest.Bwrap(t)
	dir := t.TempDir()
	db := storetest.OpenIn(t, dir)
	m, err := sandbox.NewManager(prov, leaseStore{db}, sandbox.ManagerConfig{Owner: "test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(t.Context()) })
	mirrors, err := mirror.New(filepath.Join(dir, "mirrors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := workspacesConfig{manager: m, mirrors: mirrors, log: slog.New(slog.DiscardHandler)}
	if token != "" {
		pub, err := ghsurface.NewPublisher(ghsurface.PublisherConfig{APIURL: apiURL, Credentials: ghsurface.StaticToken(token), Mirrors: mirrors})
		if err != nil {
			t.Fatal(err)
		}
		cfg.credential, cfg.branchFor = pub.CloneCredential, pub.WorkBranch
	}
	for _, w := range with {
		w(&cfg)
	}
	return newWorkspaces(cfg), db
}

// GITHUB_TOKEN goes only to the web host of GITHUB_API_URL (scheme, host
// and port): a project whose repository is on another server clones
// without it, and that server sees no Authorization header.
func TestCloneTokenBoundToGitHubHost(t *testing.T) {
	t.Parallel()
	const token = "ghp_boundTOKEN0123456789"
	gh := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "github\n"}, func(tok string) bool { return tok == token })
	ghHost := newHeaderRecorder(t, gh.URL)
	other := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "other\n"}, func(string) bool { return true })
	other.AnonymousRead()
	otherHost := newHeaderRecorder(t, other.URL)

	w, _ := newTestWorkspaces(t, ghHost.URL+"/api/v3", token)
	for i, c := range []struct {
		host *headerRecorder
		want string
	}{{ghHost, "github"}, {otherHost, "other"}} {
		p := &store.Project{ID: int64(i + 1), Name: "p", RepoURL: c.host.URL + "/o/r", DefaultBranch: "main"}
		ex := &store.Execution{ID: "r" + c.want}
		sb, err := w.Open(t.Context(), p, ex, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.want, err)
		}
		data, err := sb.ReadFile(t.Context(), "a.txt")
		if err != nil || strings.TrimSpace(string(data)) != c.want {
			t.Fatalf("%s: a.txt %q %v", c.want, data, err)
		}
		if err := w.Close(t.Context(), ex, sb); err != nil {
			t.Fatal(err)
		}
	}
	var authed bool
	for _, h := range ghHost.headers() {
		authed = authed || strings.HasPrefix(h, "Basic ")
	}
	if !authed {
		t.Fatalf("the GitHub host never got the token: %q", ghHost.headers())
	}
	for _, h := range otherHost.headers() {
		if h != "" {
			t.Fatalf("another host received Authorization %q", h)
		}
	}
}

// Local repository paths are checked when the run starts: the
// workspaces of `hero serve` (chat, GitHub, schedules) may use only a
// directory under HERO_LOCAL_REPO_ROOT (links followed), those of `hero
// run` (the local operator's, at this terminal) its own checkout, and
// nobody hero's data directory. A refused run gets the reason and no
// sandbox holds the files. Whether a run may use a directory follows from
// how the process was built, not from the name of the run's surface: a
// served run claiming the terminal surface gets no more.
func TestLocalRepositoryCheckedAtRunStart(t *testing.T) {
	t.Parallel()
	root, data := t.TempDir(), t.TempDir()
	local := sandbox.LocalRepos{Root: root, DataDir: data}
	served, _ := newTestWorkspaces(t, "", "", func(c *workspacesConfig) { c.local = local })
	terminal, _ := newTestWorkspaces(t, "", "", func(c *workspacesConfig) { c.local, c.operator = local, true })
	checkout := gitRepo(t)
	if err := os.Symlink("/etc", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	inRoot := filepath.Join(root, "app")
	if err := os.Mkdir(inRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(inRoot, "ok.txt"), []byte("ok\n"), 0o644)
	os.WriteFile(filepath.Join(data, "secrets.key"), []byte("k\n"), 0o600)
	for i, c := range []struct {
		repo    string
		w       *workspaces
		surface string
		want    string
	}{
		{"/etc", served, "slack", "not under HERO_LOCAL_REPO_ROOT"},
		{"file:///etc", served, "github", "not under HERO_LOCAL_REPO_ROOT"},
		{filepath.Join(root, "escape"), served, "github", "(/etc once links are followed) is not under HERO_LOCAL_REPO_ROOT"},
		{checkout, served, "slack", "not under HERO_LOCAL_REPO_ROOT"},
		{checkout, served, "terminal", "not under HERO_LOCAL_REPO_ROOT"},
		{data, terminal, "terminal", "hero's data directory"},
		{filepath.Dir(data), terminal, "terminal", "hero's data directory"},
	} {
		p := &store.Project{ID: int64(100 + i), Name: "p", RepoURL: c.repo, DefaultBranch: "main"}
		ex := &store.Execution{ID: fmt.Sprintf("rx%d", i), Surface: c.surface}
		sb, err := c.w.Open(t.Context(), p, ex, nil)
		if err == nil {
			c.w.Close(t.Context(), ex, sb)
			t.Errorf("%s from %s (operator %v): opened", c.repo, c.surface, c.w.operator)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s from %s (operator %v): %v, want %q", c.repo, c.surface, c.w.operator, err, c.want)
		}
	}
	for i, c := range []struct {
		repo string
		w    *workspaces
		file string
	}{
		{inRoot, served, "ok.txt"},
		{"file://" + inRoot, served, "ok.txt"},
		{checkout, terminal, "calc.go"},
	} {
		ex := &store.Execution{ID: fmt.Sprintf("ok%d", i), Surface: "slack"}
		sb, err := c.w.Open(t.Context(), &store.Project{ID: int64(200 + i), Name: "p", RepoURL: c.repo}, ex, nil)
		if err != nil {
			t.Fatalf("%s (operator %v): %v", c.repo, c.w.operator, err)
		}
		if _, err := sb.ReadFile(t.Context(), c.file); err != nil {
			t.Errorf("%s (operator %v): %v", c.repo, c.w.operator, err)
		}
		c.w.Close(t.Context(), ex, sb)
	}
}

// `hero run --repo` refuses hero's own data directory with the reason.
func TestRunRefusesDataDirectory(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	_, _, err := hero(t, map[string]string{"HERO_DATA_DIR": data, "OPENAI_API_KEY": "k"}, "", false, "run", "--repo", data, "read the keys")
	if err == nil || !strings.Contains(err.Error(), "hero's data directory") {
		t.Fatalf("hero run --repo HERO_DATA_DIR: %v", err)
	}
}

// `hero project add` refuses hero's data directory and says when chat and
// GitHub will refuse a local path.
func TestProjectAddLocalPath(t *testing.T) {
	t.Parallel()
	data, root := t.TempDir(), t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": data, "HERO_LOCAL_REPO_ROOT": root}
	if _, _, err := hero(t, env, "", false, "project", "add", "keys", "--repo", data); err == nil || !strings.Contains(err.Error(), "hero's data directory") {
		t.Fatalf("data dir: %v", err)
	}
	out, _, err := hero(t, env, "", false, "project", "add", "mine", "--repo", "/etc")
	if err != nil || !strings.Contains(out, "chat and GitHub refuse it") || !strings.Contains(out, "HERO_LOCAL_REPO_ROOT") {
		t.Fatalf("outside the root: %v %q", err, out)
	}
	if out, _, err := hero(t, env, "", false, "project", "add", "ok", "--repo", root); err != nil || strings.Contains(out, "refuse") {
		t.Fatalf("the root itself: %v %q", err, out)
	}
}
