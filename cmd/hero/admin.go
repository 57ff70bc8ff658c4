package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hero-dev/hero/store"
)

// parseFlags parses fs allowing flags after positional arguments
// (`hero project add web --repo URL`), which Go's flag package stops at.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func cmdMigrate(ctx context.Context, cfg config, std stdio) error {
	a, err := openApp(ctx, cfg, std)
	if err != nil {
		return err
	}
	defer a.close()
	fmt.Fprintln(std.out, "database is up to date")
	return nil
}

func cmdProject(ctx context.Context, cfg config, args []string, std stdio) error {
	if len(args) == 0 {
		return usageError{"usage: hero project add NAME --repo URL [--branch B] | list | rm NAME"}
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("project "+sub, flag.ContinueOnError)
	repo := fs.String("repo", "", "repository URL or local path")
	branch := fs.String("branch", "", "default branch (default: main)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, std)
	if err != nil {
		return err
	}
	defer a.close()
	switch sub {
	case "add":
		if len(pos) != 1 || *repo == "" {
			return usageError{"usage: hero project add NAME --repo URL [--branch B]"}
		}
		if err := validProjectName(pos[0]); err != nil {
			return err
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
		fmt.Fprintf(std.out, "added project %s (%s, branch %s)\n", p.Name, p.RepoURL, p.DefaultBranch)
	case "list", "ls":
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
	case "rm", "remove":
		if len(pos) != 1 {
			return usageError{"usage: hero project rm NAME"}
		}
		if err := a.db.DeleteProject(ctx, pos[0]); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no project named %q (see hero project list)", pos[0])
			}
			return fmt.Errorf("remove project: %w", err)
		}
		fmt.Fprintf(std.out, "removed project %s (its run history is kept)\n", pos[0])
	default:
		return usageError{fmt.Sprintf("unknown project command %q: use add, list or rm", sub)}
	}
	return nil
}

func validProjectName(n string) error {
	if n == "" || len(n) > 64 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		return fmt.Errorf("project name %q: use 1-64 letters, digits, '-', '_' or '.'", n)
	}
	return nil
}

func cmdSecrets(ctx context.Context, cfg config, args []string, std stdio) error {
	if len(args) == 0 {
		return usageError{"usage: hero secrets set|list|rm|rotate --project NAME [KEY]"}
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("secrets "+sub, flag.ContinueOnError)
	projectName := fs.String("project", "", "project name")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, std)
	if err != nil {
		return err
	}
	defer a.close()
	if sub == "rotate" {
		n, err := a.db.RotateSecrets(ctx)
		if err != nil {
			return fmt.Errorf("rotate secrets: %w", err)
		}
		fmt.Fprintf(std.out, "re-encrypted %d secrets with key version %d\n", n, a.keyring.Version())
		return nil
	}
	if *projectName == "" {
		return usageError{fmt.Sprintf("hero secrets %s needs --project NAME", sub)}
	}
	p, err := a.db.ProjectByName(ctx, *projectName)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no project named %q (see hero project list)", *projectName)
		}
		return fmt.Errorf("find project: %w", err)
	}
	switch sub {
	case "set":
		if len(pos) != 1 {
			return usageError{"usage: echo -n VALUE | hero secrets set --project NAME KEY   (the value is read from stdin, never from the command line)"}
		}
		if std.interactive {
			fmt.Fprintf(std.err, "value for %s (end with Ctrl-D): ", pos[0])
		}
		value, err := readSecretValue(std.in)
		if err != nil {
			return err
		}
		if err := a.db.SetSecret(ctx, p.ID, pos[0], value, "cli"); err != nil {
			return fmt.Errorf("set secret %s: %w", pos[0], err)
		}
		fmt.Fprintf(std.out, "secret %s set for project %s\n", pos[0], p.Name)
	case "list", "ls":
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
	case "rm", "remove":
		if len(pos) != 1 {
			return usageError{"usage: hero secrets rm --project NAME KEY"}
		}
		if err := a.db.DeleteSecret(ctx, p.ID, pos[0]); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("project %s has no secret %s", p.Name, pos[0])
			}
			return fmt.Errorf("remove secret: %w", err)
		}
		fmt.Fprintf(std.out, "secret %s removed from project %s\n", pos[0], p.Name)
	default:
		return usageError{fmt.Sprintf("unknown secrets command %q: use set, list, rm or rotate", sub)}
	}
	return nil
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
