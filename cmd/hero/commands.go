package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// action is what a subcommand does once its flags are parsed: pos are the
// positional arguments.
type action func(ctx context.Context, cfg config, pos []string, std stdio) error

// command is one subcommand. flags declares its flags on fs and returns
// the action that reads them, so `--help` and parsing come from one
// declaration and cannot drift apart.
type command struct {
	name     string // "project add"
	args     string // what follows the name in the usage line
	summary  string
	detail   string // optional paragraph after the summary
	example  string // one or more lines
	noConfig bool   // runs without reading the environment (version)
	flags    func(fs *flag.FlagSet) action
}

// group is a word that only leads to subcommands (`hero project …`).
type group struct {
	name, summary string
}

// commands is every subcommand of hero, in the order help lists them.
func commands() []*command {
	cmds := []*command{serveCommand(), runCommand()}
	cmds = append(cmds, projectCommands()...)
	cmds = append(cmds, secretsCommands()...)
	cmds = append(cmds, memberCommands()...)
	cmds = append(cmds, boardCommands()...)
	cmds = append(cmds, scheduleCommands()...)
	cmds = append(cmds, discordCommands()...)
	return append(cmds, migrateCommand(), versionCommand())
}

var groups = []group{
	{"project", "projects: the repositories hero works on and their settings"},
	{"secrets", "a project's secrets (write-only; values never printed)"},
	{"member", "who may use a project, and in which role"},
	{"board", "a project's kanban board"},
	{"card", "cards on a project's board: add, move, show"},
	{"schedule", "scheduled work: recurring runs, board digests, reminders"},
	{"discord", "the Discord application: install its slash command"},
}

// aliases are accepted spellings of command words.
var aliases = map[string]string{
	"projects": "project", "secret": "secrets", "members": "member",
	"ls": "list", "remove": "rm", "cards": "card", "boards": "board", "schedules": "schedule",
}

func canonical(word string) string {
	if a, ok := aliases[word]; ok {
		return a
	}
	return word
}

func findGroup(name string) *group {
	for i := range groups {
		if groups[i].name == name {
			return &groups[i]
		}
	}
	return nil
}

// lookup finds the command args name. It returns the command and the
// arguments after its name, or a group when args name only a group.
func lookup(args []string) (*command, *group, []string, error) {
	if len(args) == 0 {
		return nil, nil, nil, nil
	}
	first := canonical(args[0])
	cmds := commands()
	if g := findGroup(first); g != nil {
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			return nil, g, args[1:], nil
		}
		name := first + " " + canonical(args[1])
		for _, c := range cmds {
			if c.name == name {
				return c, nil, args[2:], nil
			}
		}
		return nil, g, nil, usageError{fmt.Sprintf("unknown command %q: hero %s takes %s; see `hero help %s`", "hero "+first+" "+args[1], first, strings.Join(subcommandsOf(first), ", "), first)}
	}
	for _, c := range cmds {
		if c.name == first {
			return c, nil, args[1:], nil
		}
	}
	return nil, nil, nil, usageError{fmt.Sprintf("unknown command %q; run `hero help`", args[0])}
}

func subcommandsOf(group string) []string {
	var out []string
	for _, c := range commands() {
		if rest, ok := strings.CutPrefix(c.name, group+" "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// wantsHelp reports whether args ask for help (before any "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// help prints the help for the command args name (all of hero when
// empty) to w.
func help(w io.Writer, args []string) error {
	if len(args) == 0 {
		printOverview(w)
		return nil
	}
	c, g, rest, err := lookup(args)
	if err != nil {
		return err
	}
	if c != nil && len(rest) > 0 && !wantsHelp(rest) {
		return usageError{fmt.Sprintf("hero help takes one command, like `hero help %s`", c.name)}
	}
	if g != nil {
		printGroup(w, g)
		return nil
	}
	printCommand(w, c)
	return nil
}

func printOverview(w io.Writer) {
	fmt.Fprint(w, "hero — an AI coding agent you talk to from Slack, Discord, GitHub or a terminal.\n\nUsage:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  hero %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\n`hero help COMMAND` or `hero COMMAND --help` shows a command's flags and an example.\n"+
		"Configuration is read from the environment; see README.md.\n")
}

func printGroup(w io.Writer, g *group) {
	fmt.Fprintf(w, "hero %s — %s\n\nCommands:\n", g.name, g.summary)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var examples []string
	for _, c := range commands() {
		if strings.HasPrefix(c.name, g.name+" ") {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace("hero "+c.name+" "+c.args), c.summary)
			examples = append(examples, strings.Split(c.example, "\n")[0])
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\nExample:\n")
	for _, e := range examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
	fmt.Fprintf(w, "\n`hero help %s SUBCOMMAND` shows a subcommand's flags.\n", g.name)
}

func printCommand(w io.Writer, c *command) {
	fmt.Fprintf(w, "hero %s — %s\n\nUsage:\n  %s\n", c.name, c.summary, strings.TrimSpace("hero "+c.name+" "+c.args))
	if c.detail != "" {
		fmt.Fprintf(w, "\n%s\n", c.detail)
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.flags(fs)
	var lines [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if name != "" {
			left += " " + name
		}
		if isBoolFlag(f) {
			left = "--" + f.Name
		} else if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "off" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		lines = append(lines, [2]string{left, usage})
	})
	if len(lines) > 0 {
		sort.Slice(lines, func(i, j int) bool { return lines[i][0] < lines[j][0] })
		fmt.Fprint(w, "\nFlags:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, l := range lines {
			fmt.Fprintf(tw, "  %s\t%s\n", l[0], l[1])
		}
		tw.Flush()
	}
	fmt.Fprint(w, "\nExample:\n")
	for _, e := range strings.Split(c.example, "\n") {
		fmt.Fprintf(w, "  %s\n", e)
	}
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parseFlags parses fs allowing flags after positional arguments
// (`hero project add web --repo URL`), which Go's flag package stops at.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{fmt.Sprintf("%s: %v (see `hero help %s`)", fs.Name(), err, fs.Name())}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// usagef is a usage error that points at the command's help.
func usagef(c string, format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...) + fmt.Sprintf(" (see `hero help %s`)", c)}
}
