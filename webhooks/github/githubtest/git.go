package githubtest

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// GitServer serves one bare repository over git's smart HTTP protocol with
// the real `git http-backend` (through net/http/cgi), checking the token
// on every request the way github.com does (Basic auth, any user name,
// the token as password). Clone and push against it are real git.
type GitServer struct {
	*httptest.Server
	t    *testing.T
	bare string

	mu       sync.Mutex
	anonRead bool
	valid    func(token string) bool
	ok, deny int
	pushes   int
}

// NewGitServer creates owner/name.git holding files on branch main,
// served at URL()/owner/name.git. valid decides which tokens are accepted.
func NewGitServer(t *testing.T, owner, name string, files map[string]string, valid func(token string) bool) *GitServer {
	t.Helper()
	execPath := strings.TrimSpace(run(t, "", "git", "--exec-path"))
	root := t.TempDir()
	work := t.TempDir()
	run(t, work, "git", "init", "-q", "-b", "main")
	for p, body := range files {
		full := filepath.Join(work, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, work, "git", "add", "-A")
	run(t, work, "git", "-c", "user.name=seed", "-c", "user.email=seed@example.com", "commit", "-qm", "initial commit")
	if err := os.MkdirAll(filepath.Join(root, owner), 0o755); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(root, owner, name+".git")
	run(t, "", "git", "clone", "-q", "--bare", work, bare)
	run(t, bare, "git", "config", "http.receivepack", "true")
	g := &GitServer{t: t, bare: bare, valid: valid}
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, ok := r.BasicAuth()
		read := r.URL.Query().Get("service") == "git-upload-pack" || strings.HasSuffix(r.URL.Path, "/git-upload-pack")
		g.mu.Lock()
		if !(read && g.anonRead) && (!ok || !g.valid(pass)) {
			g.deny++
			g.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		g.ok++
		if strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			g.pushes++
		}
		g.mu.Unlock()
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// AnonymousRead lets anyone clone and fetch without a token, as GitHub
// does for a public repository; pushes still need a valid token.
func (g *GitServer) AnonymousRead() {
	g.mu.Lock()
	g.anonRead = true
	g.mu.Unlock()
}

// RepoURL is the https-style URL of the repository ("<server>/owner/name").
func (g *GitServer) RepoURL(owner, name string) string { return g.URL + "/" + owner + "/" + name }

// Git runs git in the bare repository and returns its combined output.
func (g *GitServer) Git(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = g.bare
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Counts returns the accepted and refused requests, and the pushes.
func (g *GitServer) Counts() (ok, denied, pushes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ok, g.deny, g.pushes
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// Commit writes files on branch (created from main when it does not
// exist) and pushes the commit straight into the bare repository, as if
// someone had pushed it before. It returns the new commit id.
func (g *GitServer) Commit(branch, message string, files map[string]string) string {
	g.t.Helper()
	work := g.t.TempDir()
	run(g.t, "", "git", "clone", "-q", g.bare, work)
	if _, err := g.Git("rev-parse", "--verify", "-q", "refs/heads/"+branch); err == nil {
		run(g.t, work, "git", "checkout", "-q", branch)
	} else {
		run(g.t, work, "git", "checkout", "-q", "-b", branch, "origin/main")
	}
	for p, body := range files {
		full := filepath.Join(work, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
	run(g.t, work, "git", "add", "-A")
	run(g.t, work, "git", "-c", "user.name=hero", "-c", "user.email=hero@localhost", "commit", "-qm", message)
	run(g.t, work, "git", "push", "-q", "origin", branch)
	return strings.TrimSpace(run(g.t, work, "git", "rev-parse", "HEAD"))
}
