package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
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
// provider and mirror directory, cloning with GITHUB_TOKEN=token bound to
// GITHUB_API_URL=apiURL.
func newTestWorkspaces(t *testing.T, apiURL, token string) (*workspaces, *store.DB) {
	t.Helper()
	requireBwrap(t)
	dir := t.TempDir()
	db, err := store.Open(t.Context(), "", dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	prov, err := bwrap.New(filepath.Join(dir, "sb"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m, err := sandbox.NewManager(prov, leaseStore{db}, sandbox.ManagerConfig{Owner: "test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(t.Context()) })
	mirrors, err := mirror.New(filepath.Join(dir, "mirrors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &workspaces{manager: m, mirrors: mirrors, log: slog.New(slog.DiscardHandler), bases: map[string]string{},
		credential: tokenCredential(apiURL, token), branchFor: defaultWorkBranch}, db
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
