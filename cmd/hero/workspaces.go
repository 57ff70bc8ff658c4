package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
)

// workspaces implements engine.Workspaces with the sandbox manager and
// hydration: each run gets a fresh sandbox holding its project's
// repository, secrets as environment variables, dependencies installed.
type workspaces struct {
	manager *sandbox.Manager
	log     *slog.Logger
	token   string // GITHUB_TOKEN for https clones
	// tokenFor, when set (by the GitHub surface), gives the clone token
	// for a project: an App installation or OAuth token.
	tokenFor func(ctx context.Context, p *store.Project) (string, error)
	// branchFor, when set (by the GitHub surface), names the branch a run
	// checks out instead of the project's default: the head branch of
	// hero's own pull request that the run continues. "" keeps the
	// default.
	branchFor func(ex *store.Execution) string

	// deliver, when set, is called before a run's sandbox is released so
	// its changes can be handed back (the terminal's diff and branch).
	deliver func(ctx context.Context, ex *store.Execution, sb sandbox.Sandbox, base string) error

	mu     sync.Mutex
	leases map[string]*sandbox.Lease
	bases  map[string]string // execution id → commit the workspace started from
}

func (w *workspaces) Open(ctx context.Context, p *store.Project, ex *store.Execution, env map[string]string) (sandbox.Sandbox, error) {
	spec := sandbox.Spec{
		Template: p.Sandbox.Template,
		Env:      env,
		Network:  false, // only the dependency install step gets network, and only if allowed
		Limits: sandbox.Limits{
			MemoryBytes: int64(p.Sandbox.MemoryMB) << 20,
			CPUSeconds:  p.Sandbox.CPUSeconds,
			Processes:   p.Sandbox.MaxProcesses,
		},
		Labels: map[string]string{"project": strconv.FormatInt(p.ID, 10), "execution": ex.ID},
	}
	lease, err := w.manager.Acquire(ctx, spec, nil)
	if err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	src := sandbox.Source{Branch: p.DefaultBranch, AllowNetwork: p.Sandbox.NetworkAllowed, Install: true}
	if st, err := os.Stat(p.RepoURL); err == nil && st.IsDir() {
		src.Path, src.Branch = p.RepoURL, ""
	} else {
		src.URL = p.RepoURL
		if w.branchFor != nil {
			if b := w.branchFor(ex); b != "" {
				src.Branch = b
			}
		}
		if strings.HasPrefix(p.RepoURL, "https://") {
			src.Token = w.token
			if w.tokenFor != nil {
				tok, err := w.tokenFor(ctx, p)
				if err != nil {
					_ = w.manager.Release(context.WithoutCancel(ctx), lease)
					return nil, fmt.Errorf("authenticate the clone of %s: %w", p.RepoURL, err)
				}
				if tok != "" {
					src.Token = tok
				}
			}
		}
	}
	rep, err := sandbox.Hydrate(ctx, lease, src, w.log)
	if err != nil {
		_ = w.manager.Release(context.WithoutCancel(ctx), lease)
		return nil, fmt.Errorf("fill the workspace from %s: %w", p.RepoURL, err)
	}
	base := rep.Commit
	if base == "" {
		// Not a git repository: commit what is there so the changes can
		// be shown as a diff at the end.
		if base, err = initRepo(ctx, lease); err != nil {
			_ = w.manager.Release(context.WithoutCancel(ctx), lease)
			return nil, err
		}
	}
	w.log.Info("workspace ready", "execution", ex.ID, "report", rep.String())
	w.mu.Lock()
	w.bases[ex.ID] = base
	w.mu.Unlock()
	return lease, nil
}

func (w *workspaces) Close(ctx context.Context, ex *store.Execution, sb sandbox.Sandbox) error {
	w.mu.Lock()
	base := w.bases[ex.ID]
	delete(w.bases, ex.ID)
	w.mu.Unlock()
	var derr error
	if w.deliver != nil {
		derr = w.deliver(ctx, ex, sb, base)
	}
	lease, ok := sb.(*sandbox.Lease)
	if !ok {
		return sb.Close(ctx)
	}
	if err := w.manager.Release(ctx, lease); err != nil {
		return err
	}
	return derr
}

// DiffStat summarises what the run changed since the workspace was filled,
// committed or not (engine.DiffStater).
func (w *workspaces) DiffStat(ctx context.Context, ex *store.Execution, sb sandbox.Sandbox) (string, error) {
	w.mu.Lock()
	base := w.bases[ex.ID]
	w.mu.Unlock()
	if base == "" {
		return "", nil
	}
	// Stage everything (new files included) so the stat covers all of it;
	// the index is the run's own, nothing else reads it.
	if _, err := gitIn(ctx, sb, "git", "add", "-A"); err != nil {
		return "", fmt.Errorf("stage the run's changes: %w", err)
	}
	out, err := gitIn(ctx, sb, "git", "diff", "--cached", "--stat", base)
	if err != nil {
		return "", fmt.Errorf("diff the run's changes: %w", err)
	}
	return strings.TrimRight(out, "\n"), nil
}

// initRepo makes the workspace a git repository with one commit.
func initRepo(ctx context.Context, sb sandbox.Sandbox) (string, error) {
	out, err := gitIn(ctx, sb, "sh", "-c", "git init -q && git add -A && git -c user.name=hero -c user.email=hero@localhost commit -q --allow-empty -m 'hero: workspace as found' && git rev-parse HEAD")
	if err != nil {
		return "", fmt.Errorf("prepare the workspace's git history: %w", err)
	}
	return strings.TrimSpace(out), nil
}

// gitIn runs argv in the sandbox and returns its stdout; a non-zero exit
// is an error carrying stderr.
func gitIn(ctx context.Context, sb sandbox.Sandbox, argv ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	res, err := sb.Exec(ctx, sandbox.Cmd{Args: argv, Stdout: &stdout, Stderr: &stderr, Timeout: 2 * time.Minute})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return stdout.String(), fmt.Errorf("%s exited %d: %s", argv[0], res.ExitCode, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
