// Command hero is the one binary of hero: the server (`hero serve`), the
// agent in a terminal (`hero run`), and the admin commands for projects,
// secrets and the database.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, interactive: isTerminal(os.Stdin)}, os.Getenv)
	stop()
	if err != nil {
		var ue usageError
		fmt.Fprintf(os.Stderr, "hero: %v\n", err)
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// stdio is the process's standard streams, passed in so tests can drive
// every subcommand in-process.
type stdio struct {
	in          io.Reader
	out, err    io.Writer
	interactive bool
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `hero — an AI coding agent you talk to from Slack, Discord, GitHub or a terminal.

Usage:
  hero serve                                   run the server (HTTP, surfaces, workers, cron)
  hero run [--repo PATH|URL] [--project NAME] "task"
                                               run the agent here, in a sandbox, and watch it
  hero project add NAME --repo URL [--branch B] | list | rm NAME
  hero secrets set|list|rm|rotate --project NAME [KEY]   (set reads the value from stdin)
  hero migrate                                 apply database migrations
  hero version

Configuration is read from the environment; see README.md.
`

func run(ctx context.Context, args []string, std stdio, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(std.out, usage)
		return nil
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintf(std.out, "hero %s\n", version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(std.out, usage)
		return nil
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	switch cmd {
	case "serve":
		return cmdServe(ctx, cfg, rest, std)
	case "run":
		return cmdRun(ctx, cfg, rest, std)
	case "project", "projects":
		return cmdProject(ctx, cfg, rest, std)
	case "secrets", "secret":
		return cmdSecrets(ctx, cfg, rest, std)
	case "migrate":
		return cmdMigrate(ctx, cfg, std)
	}
	return usageError{fmt.Sprintf("unknown command %q; run `hero help`", cmd)}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
