package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/hero-dev/hero/bot/terminal"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
)

func runCommand() *command {
	return &command{
		name: "run", args: `[--repo PATH|URL] [--project NAME] [flags] "task"`,
		summary: "run the agent here, in a sandbox, and watch it",
		detail: "Steps stream to the terminal; actions that need a confirmation ask y/N on stdin.\n" +
			"When stdin is not a terminal nobody can answer, so they are denied; --yes or --no answer\n" +
			"without asking.\n" +
			"At the end the changes are shown and, after a yes, committed to a new branch hero/<run id>.",
		example: `hero run --repo . "make the tests pass"` + "\n" + `hero run --project web --max-steps 20 --budget 0.50 "fix the typo in README.md"`,
		flags: func(fs *flag.FlagSet) action {
			o := runOptions{}
			fs.StringVar(&o.repo, "repo", "", "local `PATH` or git URL of the repository (default: the current directory)")
			fs.StringVar(&o.project, "project", "", "the project to run in (its repository, secrets and limits), by `NAME`")
			fs.IntVar(&o.limits.MaxSteps, "max-steps", 0, "stop after `N` steps (default: the project's limit)")
			fs.Float64Var(&o.limits.BudgetUSD, "budget", 0, "stop when the run has cost `USD` dollars (default: the project's limit)")
			fs.DurationVar(&o.limits.WallClock, "timeout", 0, "stop after this much wall-clock time (a `DURATION` like 10m or 1h30m) (default: the project's limit)")
			fs.BoolVar(&o.yes, "yes", false, "approve every action that needs a confirmation, and commit the changes to a new branch at the end (limits still stop the run)")
			fs.BoolVar(&o.no, "no", false, "deny every confirmation and keep the changes as a bundle (the default when stdin is not a terminal)")
			return func(ctx context.Context, cfg config, pos []string, std stdio) error {
				return cmdRun(ctx, cfg, o, pos, std)
			}
		},
	}
}

// runOptions are `hero run`'s flags.
type runOptions struct {
	repo, project string
	limits        engine.RunLimits
	yes, no       bool
}

// cmdRun is `hero run`: the engine driven from this terminal.
func cmdRun(ctx context.Context, cfg config, o runOptions, pos []string, std stdio) error {
	task := strings.TrimSpace(strings.Join(pos, " "))
	if task == "" {
		return usagef("run", `usage: hero run [--repo PATH|URL] [--project NAME] "task"`)
	}
	switch {
	case o.yes && o.no:
		return usagef("run", "--yes and --no contradict each other: pass one")
	case o.limits.MaxSteps < 0:
		return usagef("run", "--max-steps must be a positive number of steps, got %d", o.limits.MaxSteps)
	case o.limits.BudgetUSD < 0 || math.IsNaN(o.limits.BudgetUSD) || math.IsInf(o.limits.BudgetUSD, 0):
		return usagef("run", "--budget must be a positive amount of US dollars, like 0.50, got %g", o.limits.BudgetUSD)
	case o.limits.WallClock < 0 || o.limits.WallClock > 0 && o.limits.WallClock < time.Second:
		return usagef("run", "--timeout must be at least 1s, like 10m, got %s", o.limits.WallClock)
	}
	answer := ""
	if o.yes {
		answer = "yes"
	} else if o.no {
		answer = "no"
	}
	if cfg.OpenAIKey == "" {
		return errors.New("no model is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible server, HERO_MODEL to pick the model)")
	}
	a, err := openApp(ctx, cfg, std)
	if err != nil {
		return err
	}
	defer a.close()
	p, err := runProject(ctx, a.db, cfg.localRepos(), o.project, o.repo)
	if err != nil {
		return err
	}
	// The local user runs hero with the machine's rights: the operator.
	who := engine.Operator(operator())
	owner := "terminal-" + fmt.Sprint(os.Getpid())
	// Built in order: the console, what hands a local checkout's changes
	// back on it, the workspaces and engine that take that, then the
	// surface on the console deciding through the engine.
	console, err := terminal.NewConsole(std.out, std.in, terminal.Options{Interactive: std.interactive, Answer: answer})
	if err != nil {
		return err
	}
	var deliver func(context.Context, *store.Execution, sandbox.Sandbox, string) error
	if sandbox.IsLocal(p.RepoURL) {
		dir, err := cfg.localRepos().Resolve(p.RepoURL, true)
		if err != nil {
			return fmt.Errorf("project %s: %w", p.Name, err)
		}
		secrets, err := a.db.SecretValues(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("load the secrets of project %s: %w", p.Name, err)
		}
		deliver = (&delivery{console: console, repoDir: dir, dataDir: cfg.DataDir, scrub: a.runScrubber(secrets)}).deliver
	}
	if err := a.withAgent(agentConfig{owner: owner, operator: true, deliver: deliver}); err != nil {
		return err
	}
	if a.sandboxErr != nil {
		return fmt.Errorf("%w (scripts/install-deps.sh git bwrap installs what the local sandbox needs)", a.sandboxErr)
	}
	// The health check and the fetch overlap with what comes before the
	// run's workspace is opened.
	stopWarmUp := a.ws.warmUp(ctx, p)
	defer stopWarmUp()
	// Sandboxes of earlier terminal runs that were killed (and of a dead
	// server on this host) go now, not only when a server runs here.
	if _, err := a.manager.RecoverOrphans(ctx, owner); err != nil {
		a.log.Warn("recover orphaned sandboxes", "err", err)
	}
	term, err := terminal.New(console, who, a.engine)
	if err != nil {
		return err
	}
	a.engine.AddSurface(term)

	// The engine runs on its own context: Ctrl-C cancels the run (killing
	// its command) and then waits for it to close cleanly.
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	ex, err := a.engine.Start(engineCtx, engine.StartRequest{Project: p, Task: task, Surface: terminal.Name, By: who, Limits: o.limits})
	if err != nil {
		return err
	}
	var outcome *engine.Outcome
	select {
	case outcome = <-term.Finished():
	case <-ctx.Done():
		fmt.Fprintln(std.err, "\nhero: cancelling…")
		if err := a.engine.Cancel(engineCtx, ex.ID, who); err != nil && !errors.Is(err, engine.ErrFinished) {
			return fmt.Errorf("cancel run %s: %w", ex.ID, err)
		}
		select {
		case outcome = <-term.Finished():
		case <-time.After(30 * time.Second):
			return fmt.Errorf("run %s did not stop within 30 s", ex.ID)
		}
	}
	a.engine.Wait() // the sandbox is released and the changes delivered
	switch outcome.Status {
	case store.StatusSucceeded:
		return nil
	case store.StatusCancelled:
		return fmt.Errorf("run %s was cancelled", ex.ID)
	}
	return fmt.Errorf("run %s %s", ex.ID, outcome.Status)
}

// runProject finds the project a terminal run works in: the named one,
// or the one whose repository is --repo (created on first use, named
// after the directory). A local directory is the user's own checkout:
// any directory but hero's data directory (local.Resolve says why not).
func runProject(ctx context.Context, db *store.DB, local sandbox.LocalRepos, name, repo string) (*store.Project, error) {
	if name != "" {
		p, err := db.ProjectByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("no project named %q: add it with `hero project add %s --repo URL`, or run with --repo PATH", name, name)
		}
		if err != nil {
			return nil, fmt.Errorf("find project: %w", err)
		}
		if repo != "" && normaliseRepo(repo) != p.RepoURL {
			return nil, fmt.Errorf("project %s works on %s, not %s: drop --repo, or drop --project", p.Name, p.RepoURL, repo)
		}
		return p, nil
	}
	if repo == "" {
		repo = "."
	}
	repo = normaliseRepo(repo)
	if sandbox.IsLocal(repo) {
		if _, err := local.Resolve(repo, true); err != nil {
			return nil, fmt.Errorf("--repo: %w", err)
		}
	} else if !strings.Contains(repo, "://") && !strings.HasPrefix(repo, "git@") {
		return nil, fmt.Errorf("--repo %s: not a directory or a git URL", repo)
	}
	ps, err := db.ListProjects(ctx)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	for i := range ps {
		if ps[i].RepoURL == repo {
			return &ps[i], nil
		}
	}
	base := strings.TrimSuffix(filepath.Base(strings.TrimRight(repo, "/")), ".git")
	if validProjectName(base) != nil {
		base = "repo"
	}
	p := &store.Project{Name: base, RepoURL: repo, DefaultBranch: "main"}
	for i := 2; ; i++ {
		err := db.CreateProject(ctx, p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, store.ErrConflict) || i > 50 {
			return nil, fmt.Errorf("create project for %s: %w", repo, err)
		}
		p.Name = fmt.Sprintf("%s-%d", base, i)
	}
}

func normaliseRepo(repo string) string {
	if strings.Contains(repo, "://") || strings.HasPrefix(repo, "git@") {
		return repo
	}
	if abs, err := filepath.Abs(repo); err == nil {
		return abs
	}
	return repo
}

// operator is the principal of everything done from this machine's command
// line (runs, approvals, settings): the local user, recorded as
// local:USERNAME in runs and audit logs.
func operator() string { return "local:" + currentUser() }

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "me"
}

// delivery hands a terminal run's changes back: the diff is shown, and
// only after a yes are they committed on a new branch hero/<run id> of the
// local repository (never onto the checked-out branch). Declined changes
// are kept as a git bundle in the data directory, so nothing is lost.
type delivery struct {
	console *terminal.Console
	repoDir string
	dataDir string
	// scrub is the run's redactor: the diff shows what the model wrote,
	// which may hold a secret it read.
	scrub func(string) string
}

func (d *delivery) deliver(ctx context.Context, ex *store.Execution, sb sandbox.Sandbox, base string) error {
	if base == "" {
		return nil
	}
	msg := "hero: " + terminal.Line(ex.Task, 60)
	_, err := gitIn(ctx, sb, "sh", "-c", `git add -A && if ! git diff --cached --quiet; then git -c user.name=hero -c user.email=hero@localhost commit -q -m "$1"; fi`, "sh", msg)
	if err != nil {
		return fmt.Errorf("collect the run's changes: %w", err)
	}
	diff, err := gitIn(ctx, sb, "git", "diff", base, "HEAD")
	if err != nil {
		return fmt.Errorf("diff the run's changes: %w", err)
	}
	if strings.TrimSpace(diff) == "" {
		d.console.Printf("no changes to the repository.\n")
		return nil
	}
	d.console.Printf("\n%s\n", terminal.Text(capLines(d.scrub(diff), 400)))

	// Carry the commits out of the sandbox as a bundle (works for any
	// provider, local or remote).
	if _, err := gitIn(ctx, sb, "git", "bundle", "create", "-q", ".git/hero-run.bundle", base+"..HEAD"); err != nil {
		return fmt.Errorf("package the run's commits: %w", err)
	}
	bundle, err := sb.ReadFile(ctx, ".git/hero-run.bundle")
	if err != nil {
		return fmt.Errorf("copy the run's commits out of the sandbox: %w", err)
	}
	dir := filepath.Join(d.dataDir, "runs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save the run's commits: %w", err)
	}
	path := filepath.Join(dir, ex.ID+".bundle")
	if err := os.WriteFile(path, bundle, 0o600); err != nil {
		return fmt.Errorf("save the run's commits: %w", err)
	}
	branch := "hero/" + ex.ID
	if _, err := os.Stat(filepath.Join(d.repoDir, ".git")); err != nil {
		d.console.Printf("%s is not a git repository; the changes are saved in %s (git bundle).\n", d.repoDir, path)
		return nil
	}
	if !d.console.Confirm(ctx, fmt.Sprintf("commit these changes to a new branch %s in %s?", branch, d.repoDir)) {
		d.console.Printf("not applied. They are kept in %s; to apply later:\n  git -C %s fetch %s HEAD:%s\n", path, d.repoDir, path, branch)
		return nil
	}
	cmd := exec.CommandContext(ctx, "git", "-C", d.repoDir, "fetch", "-q", path, "HEAD:refs/heads/"+branch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("create branch %s: %v: %s", branch, err, strings.TrimSpace(string(out)))
	}
	d.console.Printf("committed on branch %s. Review with `git diff HEAD...%s`, then merge or switch to it.\n", branch, branch)
	return nil
}

func capLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return strings.Join(lines[:n], "") + fmt.Sprintf("[… %d more lines …]\n", len(lines)-n)
}
