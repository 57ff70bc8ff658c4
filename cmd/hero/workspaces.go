package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
)

// workspaces implements engine.Workspaces with the sandbox manager,
// hero's per-project mirrors and hydration: each run gets a fresh sandbox
// holding its project's repository on its own work branch, secrets as
// environment variables, dependencies installed. The repository is
// fetched on the host into the project's mirror and the workspace filled
// from there: no sandbox ever sees a credential or needs network for it.
type workspaces struct {
	workspacesConfig

	mu    sync.Mutex
	bases map[string]string // execution id → commit the workspace started from
	// releases unpin what a run's workspace is layered on, once its
	// sandbox is closed (execution id → Report.Release).
	releases map[string]func()
	// early are fetches warmUp started for a project's next run.
	early map[int64]*earlyFetch
}

// earlyFetch is a fetch of a project's branch that a run's Open takes
// over instead of starting its own.
type earlyFetch struct {
	ctx    context.Context
	branch string
	done   chan struct{} // closed when src and err are set
	src    sandbox.Source
	err    error
}

// workspacesConfig is what the workspaces are built with (newWorkspaces).
type workspacesConfig struct {
	manager *sandbox.Manager
	mirrors *mirror.Mirrors
	// mirrorsErr says why mirrors is nil (git missing).
	mirrorsErr error
	// local says which host directories a project may use as its
	// repository (HERO_LOCAL_REPO_ROOT, never the data directory).
	local sandbox.LocalRepos
	// operator: every run is the local operator's own, at this machine's
	// terminal (`hero run`): a project's repository may then be any
	// directory local allows a terminal, not only one under the root.
	operator bool
	// wholeSandboxNetwork: the provider gives network to a whole sandbox
	// or none (E2B), so a project that allows network for installs gets
	// it for the sandbox.
	wholeSandboxNetwork bool
	// snapshots, when set (E2B), deletes a snapshot at E2B: runs then
	// start from snapshots of filled workspaces (snapshotKey).
	snapshots func(ctx context.Context, id string) error
	// secretVersion says which version of a project's secrets a snapshot
	// was made with (names and update times, never values).
	secretVersion func(ctx context.Context, projectID int64) (string, error)
	log           *slog.Logger
	// credential gives the credential the mirror fetches p's repository
	// with, bound to the repository's origin (nil, or a nil result:
	// anonymous). The GitHub publisher's CloneCredential.
	credential func(ctx context.Context, p *store.Project) (*mirror.Credential, error)
	// branchFor names a run's work branch, and says whether it is an
	// existing remote branch to check out (a pull request the run
	// continues) rather than a new one made from the default branch
	// (nil: defaultWorkBranch). The GitHub publisher's WorkBranch.
	branchFor func(ex *store.Execution) (branch string, continues bool)
	// deliver, when set, is called before a run's sandbox is released so
	// its changes can be handed back (the terminal's diff and branch).
	deliver func(ctx context.Context, ex *store.Execution, sb sandbox.Sandbox, base string) error
}

// newWorkspaces returns the workspaces of cfg.
func newWorkspaces(cfg workspacesConfig) *workspaces {
	if cfg.branchFor == nil {
		cfg.branchFor = defaultWorkBranch
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	return &workspaces{workspacesConfig: cfg, bases: map[string]string{}, releases: map[string]func(){}, early: map[int64]*earlyFetch{}}
}

// defaultWorkBranch is a run's work branch when no surface names one.
func defaultWorkBranch(ex *store.Execution) (string, bool) { return "hero/" + ex.ID, false }

func (w *workspaces) Open(ctx context.Context, p *store.Project, ex *store.Execution, env map[string]string) (sandbox.Sandbox, error) {
	spec := sandbox.Spec{
		Template: p.Sandbox.Template,
		Env:      env,
		// Only the dependency install step gets network, and only if
		// allowed; on E2B the setting is the sandbox's.
		Network: w.wholeSandboxNetwork && p.Sandbox.NetworkAllowed,
		// ... and then the project's secrets only if asked.
		InstallSecrets: p.Sandbox.InstallSecrets,
		Limits: sandbox.Limits{
			MemoryBytes: int64(p.Sandbox.MemoryMB) << 20,
			CPUSeconds:  p.Sandbox.CPUSeconds,
			Processes:   p.Sandbox.MaxProcesses,
			DiskBytes:   int64(p.Sandbox.DiskMB) << 20,
		},
		Labels: map[string]string{"project": strconv.FormatInt(p.ID, 10), "execution": ex.ID},
	}
	work, continues := w.branchFor(ex)
	// A run that continues after a restart (E2B) gets its own sandbox
	// back, workspace and all.
	if lease, err := w.manager.Reattach(ctx, spec); err != nil {
		return nil, fmt.Errorf("reattach the run's sandbox: %w", err)
	} else if lease != nil {
		return w.reattached(ctx, ex, lease)
	}
	// The sandbox's health check (cached; a bwrap start on a run's first
	// call) runs while the repository is fetched, but a sandbox that
	// cannot work says so first, with how to fix it. The repository
	// comes before the sandbox: none is wasted on a failed fetch, and the
	// commit names the E2B snapshot to start from.
	health := make(chan error, 1)
	go func() { health <- w.manager.Health(ctx) }()
	var src sandbox.Source
	var srcErr error
	if sandbox.IsLocal(p.RepoURL) {
		// Checked at every start, not only when the project was saved: the
		// directory, its links and the operator's root may have changed.
		dir, err := w.local.Resolve(p.RepoURL, w.operator)
		if err != nil {
			srcErr = fmt.Errorf("project %s: %w", p.Name, err)
		}
		src.Path = dir
		continues = false
	} else {
		src, srcErr = w.fetch(ctx, p, work, continues)
		// Filled from a prepared checkout, the workspace is put on the
		// run's branch in the same sandbox command (else ready does it).
		src.WorkBranch = work
		if !continues || w.manager.CanReattach() {
			src.BaseRef = baseRef
		}
	}
	src.AllowNetwork, src.Install = p.Sandbox.NetworkAllowed, true
	if err := <-health; errors.Is(err, sandbox.ErrUnavailable) {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	if srcErr != nil {
		return nil, srcErr
	}
	snapKey := w.snapshotKey(ctx, p, src, spec.Template)
	if snapKey != "" {
		if lease, rep, ok := w.fromSnapshot(ctx, spec, src, snapKey); ok {
			return w.ready(ctx, ex, lease, rep, work, continues, func(err error) (sandbox.Sandbox, error) {
				_ = w.manager.Release(context.WithoutCancel(ctx), lease)
				return nil, err
			})
		}
	}
	lease, err := w.manager.Acquire(ctx, spec, nil)
	if err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	fail := func(err error) (sandbox.Sandbox, error) {
		_ = w.manager.Release(context.WithoutCancel(ctx), lease)
		return nil, err
	}
	rep, err := sandbox.Hydrate(ctx, lease, src, w.log)
	if err != nil {
		return fail(fmt.Errorf("fill the workspace from %s: %w", mirror.Clean(p.RepoURL), err))
	}
	if rep.Release != nil {
		inner := fail
		fail = func(err error) (sandbox.Sandbox, error) {
			defer rep.Release()
			return inner(err)
		}
	}
	if snapKey != "" {
		w.takeSnapshot(ctx, lease, src, snapKey)
	}
	return w.ready(ctx, ex, lease, rep, work, continues, fail)
}

// baseRef keeps the commit a run started from, in its workspace, for a
// process that reattaches.
const baseRef = "refs/hero/base"

// ready puts a filled workspace on the run's branch and remembers what
// Close needs.
func (w *workspaces) ready(ctx context.Context, ex *store.Execution, lease *sandbox.Lease, rep sandbox.Report, work string, continues bool, fail func(error) (sandbox.Sandbox, error)) (sandbox.Sandbox, error) {
	var err error
	base := rep.Commit
	if base == "" {
		// Not a git repository: commit what is there so the changes can
		// be shown as a diff at the end.
		if base, err = initRepo(ctx, lease); err != nil {
			return fail(err)
		}
	}
	switch {
	case rep.WorkBranch == work:
		// Hydrate made the branch and the base ref.
	case !continues:
		if _, err := gitIn(ctx, lease, "sh", "-c", `git switch -q -c "$1" && git update-ref "$3" "$2"`, "sh", work, base, baseRef); err != nil {
			return fail(fmt.Errorf("create the work branch %s: %w", work, err))
		}
	case w.manager.CanReattach():
		if _, err := gitIn(ctx, lease, "git", "update-ref", baseRef, base); err != nil {
			return fail(fmt.Errorf("record the run's base: %w", err))
		}
	}
	w.log.Info("workspace ready", "execution", ex.ID, "branch", work, "report", rep.String())
	w.mu.Lock()
	w.bases[ex.ID] = base
	if rep.Release != nil {
		w.releases[ex.ID] = rep.Release
	}
	w.mu.Unlock()
	return lease, nil
}

// reattached takes back a run's workspace from an earlier process: it
// is on the run's branch already; its base is where ready recorded it.
func (w *workspaces) reattached(ctx context.Context, ex *store.Execution, lease *sandbox.Lease) (sandbox.Sandbox, error) {
	out, err := gitIn(ctx, lease, "git", "rev-parse", "-q", "--verify", baseRef+"^{commit}")
	if err != nil {
		w.log.Warn("reattached workspace has no recorded base; its changes cannot be summarised", "execution", ex.ID, "err", err)
	}
	w.log.Info("workspace reattached", "execution", ex.ID, "sandbox", lease.ID())
	w.mu.Lock()
	w.bases[ex.ID] = strings.TrimSpace(out)
	w.mu.Unlock()
	return lease, nil
}

// warmUp starts what the Open of p's next run waits for first, the
// sandbox health check and the fetch of p's default branch, so that they
// overlap with recording the run (`hero run` calls it as soon as it
// knows the project). Open takes the fetch over; a health check in
// flight is shared. stop ends whatever is still going and waits for it.
func (w *workspaces) warmUp(ctx context.Context, p *store.Project) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.manager.Health(ctx)
	}()
	if w.mirrors != nil && !sandbox.IsLocal(p.RepoURL) {
		f := &earlyFetch{ctx: ctx, branch: strings.TrimPrefix(p.DefaultBranch, "refs/heads/"), done: make(chan struct{})}
		w.mu.Lock()
		w.early[p.ID] = f
		w.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(f.done)
			f.src, f.err = w.fetchBranch(ctx, p, f.branch)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
		w.mu.Lock()
		if f := w.early[p.ID]; f != nil && f.ctx == ctx {
			delete(w.early, p.ID)
		}
		w.mu.Unlock()
	}
}

// fetch brings the branch the run starts from into the project's mirror
// and returns the source pointing at it, or takes over warmUp's fetch of
// that branch.
func (w *workspaces) fetch(ctx context.Context, p *store.Project, work string, continues bool) (sandbox.Source, error) {
	from := strings.TrimPrefix(p.DefaultBranch, "refs/heads/")
	if continues {
		from = work
	}
	w.mu.Lock()
	f := w.early[p.ID]
	delete(w.early, p.ID)
	w.mu.Unlock()
	if f != nil && f.branch == from {
		select {
		case <-f.done:
		case <-ctx.Done():
			return sandbox.Source{}, fmt.Errorf("clone %s: %w", mirror.Clean(p.RepoURL), ctx.Err())
		}
		// Unless it was cut short by its own context (hero run
		// interrupted): then this run fetches for itself.
		if f.ctx.Err() == nil {
			return f.src, f.err
		}
	}
	return w.fetchBranch(ctx, p, from)
}

// fetchBranch brings branch from (of p's repository) into the project's
// mirror and returns the source pointing at it: the mirror, the branch
// and commit fetched.
func (w *workspaces) fetchBranch(ctx context.Context, p *store.Project, from string) (sandbox.Source, error) {
	if w.mirrors == nil {
		if w.mirrorsErr != nil {
			return sandbox.Source{}, fmt.Errorf("clone %s: %w", mirror.Clean(p.RepoURL), w.mirrorsErr)
		}
		return sandbox.Source{}, errors.New("hero has no mirror directory, so it cannot clone repositories")
	}
	if err := mirror.CheckURL(p.RepoURL); err != nil {
		return sandbox.Source{}, fmt.Errorf("project %s: %w", p.Name, err)
	}
	var cred *mirror.Credential
	if w.credential != nil {
		var err error
		if cred, err = w.credential(ctx, p); err != nil {
			return sandbox.Source{}, fmt.Errorf("authenticate the clone of %s: %w", mirror.Clean(p.RepoURL), err)
		}
	}
	repo, err := w.mirrors.Repo(ctx, p.ID)
	if err != nil {
		return sandbox.Source{}, err
	}
	// Within the freshness window (and without a push delivery since) the
	// mirror is used as it is; otherwise an incremental fetch.
	branch, commit, _, err := repo.Update(ctx, mirror.Remote{URL: p.RepoURL, Credential: cred}, from)
	if err != nil {
		return sandbox.Source{}, fmt.Errorf("clone %s: %w", mirror.Clean(p.RepoURL), err)
	}
	return sandbox.Source{Git: repo, Branch: branch, Commit: commit, Origin: mirror.Clean(p.RepoURL), Deps: repo}, nil
}

// pushed hears of a GitHub push delivery: the project's next run fetches
// again even within the freshness window, and a push to the default
// branch is fetched now, so the next run need not wait for it.
func (w *workspaces) pushed(ctx context.Context, p *store.Project, branch string) {
	if w.mirrors == nil || sandbox.IsLocal(p.RepoURL) {
		return
	}
	w.mirrors.MarkStale(p.ID)
	if branch != strings.TrimPrefix(p.DefaultBranch, "refs/heads/") {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	src, err := w.fetchBranch(ctx, p, branch)
	if err != nil {
		w.log.Warn("fetch after a push delivery", "project", p.Name, "branch", branch, "err", err)
		return
	}
	w.log.Info("mirror fetched after a push", "project", p.Name, "branch", branch, "commit", src.Commit)
}

func (w *workspaces) Close(ctx context.Context, ex *store.Execution, sb sandbox.Sandbox) error {
	w.mu.Lock()
	base := w.bases[ex.ID]
	delete(w.bases, ex.ID)
	release := w.releases[ex.ID]
	delete(w.releases, ex.ID)
	w.mu.Unlock()
	var derr error
	if w.deliver != nil {
		derr = w.deliver(ctx, ex, sb, base)
	}
	lease, ok := sb.(*sandbox.Lease)
	var err error
	switch {
	case !ok:
		err = sb.Close(ctx)
	case !finished(ex.Status):
		// hero is stopping mid-run: the run continues after the restart,
		// in its own sandbox where the provider can keep it (E2B).
		err = w.manager.Detach(ctx, lease)
	default:
		err = w.manager.Release(ctx, lease)
	}
	// Only once the sandbox (and its overlay) is gone may the prepared
	// checkout under it be evicted.
	if release != nil && err == nil {
		release()
	}
	if err != nil {
		return err
	}
	return derr
}

// finished says whether a run with this status is over.
func finished(status string) bool {
	switch status {
	case store.StatusQueued, store.StatusRunning, store.StatusWaiting:
		return false
	}
	return true
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

// snapshotter is a sandbox that can be snapshotted into a template
// (*e2b.Sandbox).
type snapshotter interface {
	Snapshot(ctx context.Context, name string) (string, error)
}

// snapshotKey names the E2B snapshot a run of p can start from: the
// project, the commit, its lockfiles, the version of its secrets and the
// template. "" when snapshots are not used (local sandboxes, local
// repositories, no mirror).
func (w *workspaces) snapshotKey(ctx context.Context, p *store.Project, src sandbox.Source, template string) string {
	repo, ok := src.Git.(*mirror.Repo)
	if w.snapshots == nil || !ok || src.Commit == "" {
		return ""
	}
	locks, err := repo.KeyFiles(ctx, src.Commit, sandbox.LockFiles())
	if err != nil {
		w.log.Warn("snapshot key: lockfiles", "project", p.Name, "err", err)
		return ""
	}
	secrets := ""
	if w.secretVersion != nil {
		if secrets, err = w.secretVersion(ctx, p.ID); err != nil {
			w.log.Warn("snapshot key: secret version", "project", p.Name, "err", err)
			return ""
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s\x00%s\x00%s", p.ID, src.Commit, src.Branch, locks, secrets, template)
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// fromSnapshot starts the run's sandbox from the snapshot recorded under
// key: the workspace, with its dependencies, is already there.
func (w *workspaces) fromSnapshot(ctx context.Context, spec sandbox.Spec, src sandbox.Source, key string) (*sandbox.Lease, sandbox.Report, bool) {
	repo := src.Git.(*mirror.Repo)
	id, ok := repo.Snapshot(key)
	if !ok {
		return nil, sandbox.Report{}, false
	}
	spec.Template = id
	lease, err := w.manager.Acquire(ctx, spec, nil)
	if err != nil {
		w.log.Warn("start from the E2B snapshot failed; filling a new sandbox instead", "snapshot", id, "err", err)
		return nil, sandbox.Report{}, false
	}
	head, err := sandbox.Head(ctx, lease)
	if err != nil || head != src.Commit {
		w.log.Warn("the E2B snapshot is not at the run's commit; filling a new sandbox instead", "snapshot", id, "head", head, "err", err)
		_ = w.manager.Release(context.WithoutCancel(ctx), lease)
		return nil, sandbox.Report{}, false
	}
	return lease, sandbox.Report{Source: src.Origin, Method: "snapshot", Commit: head}, true
}

// takeSnapshot records the freshly filled workspace (dependencies
// installed) as an E2B snapshot for the next run at the same commit;
// snapshots that fall out of the project's few are deleted at E2B.
// Failing costs only the next run's warm start.
func (w *workspaces) takeSnapshot(ctx context.Context, lease *sandbox.Lease, src sandbox.Source, key string) {
	var sn snapshotter
	for sb := sandbox.Sandbox(lease); sb != nil; {
		if s, ok := sb.(snapshotter); ok {
			sn = s
			break
		}
		u, ok := sb.(interface{ Unwrap() sandbox.Sandbox })
		if !ok {
			break
		}
		sb = u.Unwrap()
	}
	if sn == nil {
		return
	}
	id, err := sn.Snapshot(ctx, "")
	if err != nil {
		w.log.Warn("snapshot the filled workspace", "err", err)
		return
	}
	gone, err := src.Git.(*mirror.Repo).SetSnapshot(key, id)
	if err != nil {
		w.log.Warn("record the snapshot", "err", err)
	}
	for _, old := range gone {
		if err := w.snapshots(ctx, old); err != nil {
			w.log.Warn("delete an old snapshot", "snapshot", old, "err", err)
		}
	}
}
