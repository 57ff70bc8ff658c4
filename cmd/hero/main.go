// Command hero is the one binary of hero: the server (`hero serve`), the
// agent in a terminal (`hero run`), and the admin commands for projects,
// secrets and the database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
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

func run(ctx context.Context, args []string, std stdio, getenv func(string) string) error {
	if len(args) == 0 {
		printOverview(std.out)
		return nil
	}
	switch args[0] {
	case "help", "--help", "-h", "-help":
		return help(std.out, args[1:])
	case "--version", "-v":
		args = []string{"version"}
	}
	c, g, rest, err := lookup(args)
	if err != nil {
		return err
	}
	if g != nil {
		if wantsHelp(rest) {
			printGroup(std.out, g)
			return nil
		}
		return usageError{fmt.Sprintf("hero %s needs a subcommand: %s (see `hero help %s`)", g.name, strings.Join(subcommandsOf(g.name), ", "), g.name)}
	}
	if wantsHelp(rest) {
		printCommand(std.out, c)
		return nil
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	act := c.flags(fs)
	pos, err := parseFlags(fs, rest)
	if errors.Is(err, flag.ErrHelp) { // --help=…, which wantsHelp does not spell out
		printCommand(std.out, c)
		return nil
	}
	if err != nil {
		return err
	}
	var cfg config
	if !c.noConfig {
		if cfg, err = loadConfig(getenv); err != nil {
			return err
		}
	}
	return act(ctx, cfg, pos, std)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
