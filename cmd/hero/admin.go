package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
)

func migrateCommand() *command {
	return &command{
		name: "migrate", summary: "apply database migrations (every command does this too)",
		example: "DATABASE_URL=mysql://hero:pw@db:3306/hero hero migrate",
		flags: func(*flag.FlagSet) action {
			return func(ctx context.Context, cfg config, pos []string, std stdio) error {
				if len(pos) != 0 {
					return usagef("migrate", "hero migrate takes no arguments")
				}
				a, err := openApp(ctx, cfg, std)
				if err != nil {
					return err
				}
				defer a.close()
				fmt.Fprintln(std.out, "database is up to date")
				return nil
			}
		},
	}
}

func versionCommand() *command {
	return &command{
		name: "version", summary: "print hero's version", example: "hero version", noConfig: true,
		flags: func(*flag.FlagSet) action {
			return func(_ context.Context, _ config, _ []string, std stdio) error {
				fmt.Fprintf(std.out, "hero %s\n", version)
				return nil
			}
		},
	}
}

func projectCommands() []*command {
	add := &command{
		name: "project add", args: "NAME --repo URL [--branch B]",
		summary: "add a project: a repository hero works on",
		example: "hero project add web --repo https://github.com/acme/web.git --branch main",
		flags: func(fs *flag.FlagSet) action {
			repo := fs.String("repo", "", "repository: `URL` (https or ssh) or a local path")
			branch := fs.String("branch", "main", "the `BRANCH` runs start from and pull requests target")
			return func(ctx context.Context, cfg config, pos []string, std stdio) error {
				if len(pos) != 1 || *repo == "" {
					return usagef("project add", "usage: hero project add NAME --repo URL [--branch B]")
				}
				if err := validProjectName(pos[0]); err != nil {
					return err
				}
				a, err := openApp(ctx, cfg, std)
				if err != nil {
					return err
				}
				defer a.close()
				var note string
				if r := normaliseRepo(*repo); sandbox.IsLocal(r) {
					if _, err := cfg.localRepos().Resolve(r, true); err != nil {
						return fmt.Errorf("--repo: %w", err)
					}
					if _, err := cfg.localRepos().Resolve(r, false); err != nil {
						note = fmt.Sprintf("note: only `hero run` in a terminal may use it; chat and GitHub refuse it (%v)\n", err)
					}
					*repo = r
				}
				p := &store.Project{Name: pos[0], RepoURL: *repo, DefaultBranch: *branch}
				if p.DefaultBranch == "" {
					p.DefaultBranch = "main"
				}
				if err := a.db.CreateProject(ctx, p); err != nil {
					if errors.Is(err, store.ErrConflict) {
						return fmt.Errorf("a project named %q already exists", p.Name)
					}
					return fmt.Errorf("add project: %w", err)
				}
				fmt.Fprintf(std.out, "added project %s (%s, branch %s)\n%s", p.Name, p.RepoURL, p.DefaultBranch, note)
				return nil
			}
		},
	}
	list := &command{
		name: "project list", summary: "list the projects", example: "hero project list",
		flags: func(*flag.FlagSet) action {
			return func(ctx context.Context, cfg config, pos []string, std stdio) error {
				if len(pos) != 0 {
					return usagef("project list", "hero project list takes no arguments")
				}
				a, err := openApp(ctx, cfg, std)
				if err != nil {
					return err
				}
				defer a.close()
				ps, err := a.db.ListProjects(ctx)
				if err != nil {
					return fmt.Errorf("list projects: %w", err)
				}
				if len(ps) == 0 {
					fmt.Fprintln(std.out, "no projects yet; add one with: hero project add NAME --repo URL")
					return nil
				}
				tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tREPOSITORY\tBRANCH")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.RepoURL, p.DefaultBranch)
				}
				return tw.Flush()
			}
		},
	}
	rm := &command{
		name: "project rm", args: "NAME", summary: "remove a project (its run history is kept)",
		example: "hero project rm web",
		flags: func(*flag.FlagSet) action {
			return func(ctx context.Context, cfg config, pos []string, std stdio) error {
				if len(pos) != 1 {
					return usagef("project rm", "usage: hero project rm NAME")
				}
				a, err := openApp(ctx, cfg, std)
				if err != nil {
					return err
				}
				defer a.close()
				p, err := a.db.ProjectByName(ctx, pos[0])
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no project named %q (see hero project list)", pos[0])
				}
				if err != nil {
					return fmt.Errorf("remove project: %w", err)
				}
				if err := a.db.DeleteProject(ctx, pos[0]); err != nil {
					if errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("no project named %q (see hero project list)", pos[0])
					}
					return fmt.Errorf("remove project: %w", err)
				}
				// Its mirror and caches on this host go with it (other
				// hosts' servers sweep theirs).
				if ms, err := a.openMirrors(); err == nil {
					if err := ms.Remove(ctx, p.ID); err != nil {
						a.log.Warn("remove the project's mirror", "err", err)
					}
				}
				fmt.Fprintf(std.out, "removed project %s (its run history is kept)\n", pos[0])
				return nil
			}
		},
	}
	return []*command{add, list, rm, projectSetCommand(), projectShowCommand()}
}

func validProjectName(n string) error {
	if n == "" || len(n) > 64 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		return fmt.Errorf("project name %q: use 1-64 letters, digits, '-', '_' or '.'", n)
	}
	return nil
}

// findProject opens the named project with an error that says what to do.
func findProject(ctx context.Context, db *store.DB, name string) (*store.Project, error) {
	p, err := db.ProjectByName(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("no project named %q (see hero project list)", name)
		}
		return nil, fmt.Errorf("find project: %w", err)
	}
	return p, nil
}

// withProject is the common part of the commands that work on one
// project: --project is required and must name a project; do runs with
// the app open.
func withProject(name string, fs *flag.FlagSet, do func(ctx context.Context, a *app, p *store.Project, pos []string, std stdio) error) action {
	projectName := fs.String("project", "", "the project's `NAME`")
	return func(ctx context.Context, cfg config, pos []string, std stdio) error {
		if *projectName == "" {
			return usagef(name, "hero %s needs --project NAME", name)
		}
		a, err := openApp(ctx, cfg, std)
		if err != nil {
			return err
		}
		defer a.close()
		p, err := findProject(ctx, a.db, *projectName)
		if err != nil {
			return err
		}
		return do(ctx, a, p, pos, std)
	}
}

// withNamedProject is the common part of the commands whose one argument
// names a project: do runs with the app open and the project found.
func withNamedProject(name, usage string, do func(ctx context.Context, a *app, p *store.Project, std stdio) error) action {
	return func(ctx context.Context, cfg config, pos []string, std stdio) error {
		if len(pos) != 1 {
			return usagef(name, "%s", usage)
		}
		a, err := openApp(ctx, cfg, std)
		if err != nil {
			return err
		}
		defer a.close()
		p, err := findProject(ctx, a.db, pos[0])
		if err != nil {
			return err
		}
		return do(ctx, a, p, std)
	}
}

func secretsCommands() []*command {
	set := &command{
		name: "secrets set", args: "--project NAME KEY", summary: "set a secret; the value is read from stdin, never from the command line",
		detail:  "The run's commands see the secret as the environment variable KEY; its value is hidden\nin everything hero shows or sends to the model. One trailing newline is dropped.",
		example: "printf %s \"$DEPLOY_TOKEN\" | hero secrets set --project web DEPLOY_TOKEN",
		flags: func(fs *flag.FlagSet) action {
			return withProject("secrets set", fs, func(ctx context.Context, a *app, p *store.Project, pos []string, std stdio) error {
				if len(pos) != 1 {
					return usagef("secrets set", "usage: echo -n VALUE | hero secrets set --project NAME KEY   (the value is read from stdin, never from the command line)")
				}
				if err := store.ValidateSecretName(pos[0]); err != nil {
					return err
				}
				if std.interactive {
					fmt.Fprintf(std.err, "value for %s (end with Ctrl-D): ", pos[0])
				}
				value, err := readSecretValue(std.in)
				if err != nil {
					return err
				}
				if _, err := a.db.SetSecretAudited(ctx, p.ID, pos[0], value, operator()); err != nil {
					return fmt.Errorf("set secret %s: %w", pos[0], err)
				}
				fmt.Fprintf(std.out, "secret %s set for project %s\n", pos[0], p.Name)
				return nil
			})
		},
	}
	list := &command{
		name: "secrets list", args: "--project NAME", summary: "list a project's secret names (never the values)",
		example: "hero secrets list --project web",
		flags: func(fs *flag.FlagSet) action {
			return withProject("secrets list", fs, func(ctx context.Context, a *app, p *store.Project, pos []string, std stdio) error {
				if len(pos) != 0 {
					return usagef("secrets list", "usage: hero secrets list --project NAME")
				}
				list, err := a.db.ListSecrets(ctx, p.ID)
				if err != nil {
					return fmt.Errorf("list secrets: %w", err)
				}
				if len(list) == 0 {
					fmt.Fprintf(std.out, "project %s has no secrets\n", p.Name)
					return nil
				}
				tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tUPDATED\tBY")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.UpdatedAt.UTC().Format("2006-01-02 15:04"), s.UpdatedBy)
				}
				return tw.Flush()
			})
		},
	}
	rm := &command{
		name: "secrets rm", args: "--project NAME KEY", summary: "remove a secret",
		example: "hero secrets rm --project web DEPLOY_TOKEN",
		flags: func(fs *flag.FlagSet) action {
			return withProject("secrets rm", fs, func(ctx context.Context, a *app, p *store.Project, pos []string, std stdio) error {
				if len(pos) != 1 {
					return usagef("secrets rm", "usage: hero secrets rm --project NAME KEY")
				}
				if err := a.db.DeleteSecretAudited(ctx, p.ID, pos[0], operator()); err != nil {
					if errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("project %s has no secret %s", p.Name, pos[0])
					}
					return fmt.Errorf("remove secret: %w", err)
				}
				fmt.Fprintf(std.out, "secret %s removed from project %s\n", pos[0], p.Name)
				return nil
			})
		},
	}
	rotate := &command{
		name: "secrets rotate", summary: "re-encrypt every secret with the newest key version",
		detail:  "Put the new key first in SECRETS_ENCRYPTION_KEY as VERSION:HEX, keeping the old ones\nafter it (2:NEWHEX,1:OLDHEX), run this, then drop the old key.",
		example: "SECRETS_ENCRYPTION_KEY=2:$NEW,1:$OLD hero secrets rotate",
		flags: func(*flag.FlagSet) action {
			return func(ctx context.Context, cfg config, pos []string, std stdio) error {
				if len(pos) != 0 {
					return usagef("secrets rotate", "hero secrets rotate takes no arguments")
				}
				a, err := openApp(ctx, cfg, std)
				if err != nil {
					return err
				}
				defer a.close()
				n, err := a.db.RotateSecrets(ctx)
				if err != nil {
					return fmt.Errorf("rotate secrets: %w", err)
				}
				fmt.Fprintf(std.out, "re-encrypted %d secrets with key version %d\n", n, a.keyring.Version())
				return nil
			}
		},
	}
	return []*command{set, list, rm, rotate}
}

// readSecretValue reads the whole of stdin, dropping one trailing newline
// (what `echo` adds); an empty value is refused.
func readSecretValue(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("read the secret value from stdin: %w", err)
	}
	if len(b) > 1<<20 {
		return nil, errors.New("the secret value is larger than 1 MiB")
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return nil, errors.New("the secret value is empty: pipe it on stdin, e.g. `printf %s \"$TOKEN\" | hero secrets set --project P NAME`")
	}
	return []byte(s), nil
}
