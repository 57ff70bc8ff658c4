package enginetest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/llm/openai"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
	"github.com/hero-dev/hero/store"
)

// The real parts, for the end-to-end tests that keep them: bubblewrap
// sandboxes holding a real git repository, and hero's model client
// talking to a fake model server over HTTP.

// DemoRepo is what a GitWorkspaces repository holds unless the test says
// otherwise: a README and a Go file whose Add subtracts (a bug to fix).
func DemoRepo() map[string]string {
	return map[string]string{"README.md": "# demo\n", "calc.go": "package calc\n\nfunc Add(a, b int) int { return a - b }\n"}
}

// GitWorkspaces gives each run a fresh bubblewrap sandbox holding a git
// repository: files committed on main.
type GitWorkspaces struct {
	prov  *bwrap.Provider
	files map[string]string

	mu     sync.Mutex
	opened map[string]sandbox.Sandbox // run → its latest sandbox, closed or not
	open   map[sandbox.Sandbox]bool
}

var _ engine.Workspaces = (*GitWorkspaces)(nil)

// RequireBwrap skips the test when bubblewrap is not installed, and
// fails it when CI is set (there scripts/install-deps.sh must have
// installed it).
func RequireBwrap(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("bubblewrap is missing in CI: scripts/install-deps.sh must install it")
		}
		t.Skip("bubblewrap is not installed: run scripts/install-deps.sh bwrap")
	}
}

// Bwrap returns a bubblewrap provider keeping its sandboxes in a fresh
// temporary directory; it skips the test when bubblewrap is not
// installed (RequireBwrap).
func Bwrap(t testing.TB) *bwrap.Provider {
	t.Helper()
	RequireBwrap(t)
	prov, err := bwrap.New(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("enginetest: bwrap provider: %v", err)
	}
	return prov
}

// NewGitWorkspaces returns workspaces holding files (nil: DemoRepo). It
// skips the test when bubblewrap is not installed, and closes the
// sandboxes runs leave open (as after a crash) when the test ends.
func NewGitWorkspaces(t testing.TB, files map[string]string) *GitWorkspaces {
	t.Helper()
	prov := Bwrap(t)
	if files == nil {
		files = DemoRepo()
	}
	w := &GitWorkspaces{prov: prov, files: files, opened: map[string]sandbox.Sandbox{}, open: map[sandbox.Sandbox]bool{}}
	// Registered after TempDir: runs first, so disk volumes are unmounted
	// before the directory goes.
	t.Cleanup(w.closeAll)
	return w
}

// Open implements engine.Workspaces.
func (w *GitWorkspaces) Open(ctx context.Context, _ *store.Project, ex *store.Execution, env map[string]string) (sandbox.Sandbox, error) {
	sb, err := w.prov.Create(ctx, sandbox.Spec{Env: env, Labels: map[string]string{"execution": ex.ID}})
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.opened[ex.ID] = sb
	w.open[sb] = true
	w.mu.Unlock()
	for name, body := range w.files {
		if err := sb.WriteFile(ctx, name, []byte(body), 0o644); err != nil {
			return nil, fmt.Errorf("enginetest: write %s: %w", name, err)
		}
	}
	res, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"sh", "-c", "git init -q -b main && git add -A && git -c user.name=t -c user.email=t@t commit -qm init"}})
	if err != nil || res.ExitCode != 0 {
		return nil, fmt.Errorf("enginetest: init repo: %v (exit %d)", err, res.ExitCode)
	}
	return sb, nil
}

// Close implements engine.Workspaces.
func (w *GitWorkspaces) Close(ctx context.Context, _ *store.Execution, sb sandbox.Sandbox) error {
	w.mu.Lock()
	delete(w.open, sb)
	w.mu.Unlock()
	return sb.Close(ctx)
}

// Sandbox returns the sandbox last opened for run (nil when none), even
// once it is closed.
func (w *GitWorkspaces) Sandbox(run string) sandbox.Sandbox {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.opened[run]
}

func (w *GitWorkspaces) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for sb := range w.open {
		sb.Close(context.Background())
	}
	clear(w.open)
}

// OpenAI returns hero's model client (llm/openai) for model at baseURL
// (an llm/openaitest server), retrying once, at once.
func OpenAI(t testing.TB, baseURL, model string) engine.Model {
	t.Helper()
	client, err := openai.New(openai.Config{APIKey: "sk-test", BaseURL: baseURL, Model: model, MaxRetries: 1, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("enginetest: model client: %v", err)
	}
	return client
}
