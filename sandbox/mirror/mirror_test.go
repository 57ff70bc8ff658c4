package mirror_test

import (
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hero-dev/hero/sandbox/mirror"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// server serves one bare repository with git http-backend and records
// the Authorization header of every request.
type server struct {
	*httptest.Server
	bare string
	mu   sync.Mutex
	auth []string
}

func (s *server) headers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

func newServer(t *testing.T, redirect string) *server {
	t.Helper()
	root := t.TempDir()
	work := t.TempDir()
	git(t, work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "a.txt"), []byte("one\n"), 0o644)
	git(t, work, "add", "-A")
	git(t, work, "commit", "-qm", "one")
	bare := filepath.Join(root, "r.git")
	git(t, "", "clone", "-q", "--bare", work, bare)
	git(t, bare, "config", "http.receivepack", "true")
	execPath := git(t, "", "--exec-path")
	backend := &cgi.Handler{Path: filepath.Join(execPath, "git-http-backend"), Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	s := &server{bare: bare}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		if redirect != "" {
			http.Redirect(w, r, redirect+r.URL.RequestURI(), http.StatusFound)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func newRepo(t *testing.T) *mirror.Repo {
	t.Helper()
	m, err := mirror.New(filepath.Join(t.TempDir(), "mirrors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Repo(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(r.Dir()) != "7.git" {
		t.Fatalf("mirror at %s", r.Dir())
	}
	return r
}

// A credential goes only to its origin: a repository on another port of
// the same host, and a redirect from the right origin to another one,
// receive no Authorization header.
func TestCredentialStaysOnItsOrigin(t *testing.T) {
	t.Parallel()
	good := newServer(t, "")
	other := newServer(t, "")
	redirector := newServer(t, other.URL)
	cred := func(u string) *mirror.Credential {
		o, err := mirror.Origin(u)
		if err != nil {
			t.Fatal(err)
		}
		return mirror.TokenCredential(o, "tok-secret-123")
	}
	repo := newRepo(t)

	if _, _, err := repo.Fetch(t.Context(), mirror.Remote{URL: good.URL + "/r.git", Credential: cred(good.URL)}, "main"); err != nil {
		t.Fatal(err)
	}
	if h := good.headers(); len(h) == 0 || !strings.HasPrefix(h[len(h)-1], "Basic ") {
		t.Fatalf("the credential's own origin got %q", h)
	}
	// The credential is for good's origin; the remote is elsewhere.
	if _, _, err := repo.Fetch(t.Context(), mirror.Remote{URL: other.URL + "/r.git", Credential: cred(good.URL)}, "main"); err != nil {
		t.Fatal(err)
	}
	for _, h := range other.headers() {
		if h != "" {
			t.Fatalf("another origin received %q", h)
		}
	}
	// A redirect from the credential's origin is not followed.
	_, _, err := repo.Fetch(t.Context(), mirror.Remote{URL: redirector.URL + "/r.git", Credential: cred(redirector.URL)}, "main")
	if err == nil {
		t.Fatal("followed a redirect with a credential")
	}
	if strings.Contains(err.Error(), "tok-secret-123") || strings.Contains(err.Error(), "dG9rLXNlY3JldC0xMjM") {
		t.Fatalf("credential in error: %v", err)
	}
	for _, h := range other.headers() {
		if h != "" {
			t.Fatalf("the redirect target received %q", h)
		}
	}
}

// The server's own git configuration and environment never reach
// hero's git: a global url.insteadOf and a GIT_DIR are ignored.
func TestServerGitConfigIgnored(t *testing.T) {
	good := newServer(t, "")
	evil := newServer(t, "")
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[url \""+evil.URL+"/\"]\n\tinsteadOf = "+good.URL+"/\n[core]\n\thooksPath = /tmp\n"), 0o644)
	t.Setenv("HOME", home)
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(home, ".gitconfig"))
	t.Setenv("GIT_DIR", t.TempDir())
	repo := newRepo(t)
	o, _ := mirror.Origin(good.URL)
	if _, _, err := repo.Fetch(t.Context(), mirror.Remote{URL: good.URL + "/r.git", Credential: mirror.TokenCredential(o, "tok")}, "main"); err != nil {
		t.Fatal(err)
	}
	if n := len(evil.headers()); n != 0 {
		t.Fatalf("the insteadOf target got %d requests", n)
	}
}

func TestRefusesOtherProtocols(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	for _, u := range []string{"ext::sh -c touch% " + marker, "ext::sh", "file:///etc", "/etc", "fd::3", "-uevil", "https://u:pw@example.com/r.git", "https://example.com/r\n.git"} {
		if _, _, err := repo.Fetch(t.Context(), mirror.Remote{URL: u}, "main"); err == nil {
			t.Errorf("%q: fetched", u)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("%q: password in error %v", u, err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("ext:: ran a command")
	}
}

// Push creates a branch, never forces, and reports a rejection as such.
func TestPushNeverForces(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	url := srv.URL + "/r.git"
	repo := newRepo(t)
	if _, _, err := repo.Fetch(t.Context(), mirror.Remote{URL: url}, ""); err != nil {
		t.Fatal(err)
	}
	// Two diverging commits, as two runs of a workspace would bring back.
	work := t.TempDir()
	git(t, work, "clone", "-q", srv.bare, ".")
	os.WriteFile(filepath.Join(work, "a.txt"), []byte("two\n"), 0o644)
	git(t, work, "commit", "-qam", "two")
	b1 := filepath.Join(t.TempDir(), "1.bundle")
	git(t, work, "bundle", "create", "-q", b1, "HEAD", "^origin/main")
	git(t, work, "reset", "-q", "--hard", "origin/main")
	os.WriteFile(filepath.Join(work, "a.txt"), []byte("three\n"), 0o644)
	git(t, work, "commit", "-qam", "three")
	b2 := filepath.Join(t.TempDir(), "2.bundle")
	git(t, work, "bundle", "create", "-q", b2, "HEAD", "^origin/main")

	c1, err := repo.FetchBundle(t.Context(), b1, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Push(t.Context(), mirror.Remote{URL: url}, mirror.RunRef("r1"), "hero/x"); err != nil {
		t.Fatal(err)
	}
	if got := git(t, srv.bare, "rev-parse", "hero/x"); got != c1 {
		t.Fatalf("remote hero/x at %s, want %s", got, c1)
	}
	if _, err := repo.FetchBundle(t.Context(), b2, "r2"); err != nil {
		t.Fatal(err)
	}
	err = repo.Push(t.Context(), mirror.Remote{URL: url}, mirror.RunRef("r2"), "hero/x")
	if !errors.Is(err, mirror.ErrRejected) {
		t.Fatalf("diverging push: %v", err)
	}
	if got := git(t, srv.bare, "rev-parse", "hero/x"); got != c1 {
		t.Fatal("the remote branch was overwritten")
	}
}

// A mirror that holds refs of an unknown remote (its index lost, or left
// by an older hero) is started afresh when fetched from a repository:
// nothing of the other one stays, whether its refs are loose or packed.
func TestUnknownMirrorStartsAfresh(t *testing.T) {
	t.Parallel()
	for _, packed := range []bool{false, true} {
		old, other := newServer(t, ""), newServer(t, "")
		commits(t, old, 1) // a commit only the old repository has
		root := filepath.Join(t.TempDir(), "mirrors")
		open := func() *mirror.Repo {
			m, err := mirror.New(root, nil)
			if err != nil {
				t.Fatal(err)
			}
			r, err := m.Repo(t.Context(), 7)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		r := open()
		_, oldSHA, err := r.Fetch(t.Context(), mirror.Remote{URL: old.URL + "/r.git"}, "main")
		if err != nil {
			t.Fatal(err)
		}
		if packed {
			git(t, r.Dir(), "pack-refs", "--all")
		}
		if err := os.Remove(filepath.Join(root, "7.cache", "index.json")); err != nil {
			t.Fatal(err)
		}
		r = open()
		_, sha, err := r.Fetch(t.Context(), mirror.Remote{URL: other.URL + "/r.git"}, "main")
		if err != nil {
			t.Fatal(err)
		}
		if sha == oldSHA || r.Has(t.Context(), oldSHA) {
			t.Errorf("packed %v: the other repository's commit %s is still in the mirror", packed, oldSHA)
		}
	}
}
