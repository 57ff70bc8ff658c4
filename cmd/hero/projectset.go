package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// viaCLI is where the command line's changes are recorded as made.
const viaCLI = "command line (local operator)"

// onOff is a flag that reads on/off (and true/false, yes/no).
type onOff struct{ v *bool }

func (o onOff) String() string {
	if o.v != nil && *o.v {
		return "on"
	}
	return "off"
}

func (o onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "1":
		*o.v = true
	case "off", "false", "no", "0":
		*o.v = false
	default:
		return fmt.Errorf("want on or off, got %q", s)
	}
	return nil
}

// projectSettingFlags are `hero project set`'s flags, named as
// `hero project show` prints them.
type projectSettingFlags struct {
	budgetRun, budgetDay, threshold float64
	maxSteps, memoryMB, cpu, procs  int
	diskMB                          int
	wallClock, confirmTTL           time.Duration
	network, installSecrets         bool
	issuesBecomeCards               bool
	policyFile                      string
}

func (f *projectSettingFlags) declare(fs *flag.FlagSet) {
	fs.Float64Var(&f.budgetRun, "budget-run", 0, "a run pauses to ask once it has cost `USD` dollars (0: the server default)")
	fs.Float64Var(&f.budgetDay, "budget-day", 0, "runs pause to ask once the project has spent `USD` dollars today (0: the server default)")
	fs.IntVar(&f.maxSteps, "max-steps", 0, "a run pauses to ask after `N` steps (0: the server default)")
	fs.DurationVar(&f.wallClock, "wall-clock", 0, "a run pauses to ask after this `DURATION`, like 30m (0: the server default)")
	fs.Float64Var(&f.threshold, "threshold", 0, "a change the model is less sure of than this `0..1` needs a confirmation (0: the server default)")
	fs.DurationVar(&f.confirmTTL, "confirm-ttl", 0, "an unanswered confirmation expires after this `DURATION`, like 24h (0: the server default)")
	fs.Var(onOff{&f.network}, "network", "`on|off`: on lets the dependency install step reach the internet; off keeps the sandbox offline")
	fs.Var(onOff{&f.installSecrets}, "install-secrets", "`on|off`: on gives the project's secrets to the dependency install step, which has network; off keeps them from it")
	fs.IntVar(&f.memoryMB, "memory-mb", 0, "memory limit of the sandbox in `MB` (0: the server default)")
	fs.IntVar(&f.cpu, "cpu-seconds", 0, "CPU time limit of each command in seconds, `N` (0: the server default)")
	fs.IntVar(&f.procs, "processes", 0, "process limit of the sandbox, `N` (0: the server default)")
	fs.IntVar(&f.diskMB, "disk-mb", 0, "disk limit of the workspace and HOME in `MB`, at least 16 (0: the server default)")
	fs.Var(onOff{&f.issuesBecomeCards}, "issues-become-cards", "`on|off`: on makes every issue a trusted author opens on the project's GitHub repository a card in the board's first column, without the trigger label")
	fs.StringVar(&f.policyFile, "policy-file", "", "replace the confirmation rules with those in `FILE` (- for stdin): one \"tool action [pattern]\" a line, # comments; an empty file leaves the default policy only")
}

// apply writes the flags that were set into p, validating them as the
// settings page does.
func (f *projectSettingFlags) apply(fs *flag.FlagSet, p *store.Project, stdin io.Reader) error {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if len(set) == 0 {
		return usagef("project set", "nothing to change: pass at least one setting, like --max-steps 30")
	}
	seconds := func(name string, d time.Duration) (int, error) {
		if d < 0 {
			return 0, usagef("project set", "--%s must not be negative, got %s", name, d)
		}
		if d > 0 && d < time.Second {
			return 0, usagef("project set", "--%s must be at least 1s (or 0 for the default), got %s", name, d)
		}
		return int(d.Round(time.Second) / time.Second), nil
	}
	g, sb, cards := p.Governance, p.Sandbox, p.IssuesBecomeCards
	var err error
	for name := range set {
		switch name {
		case "budget-run":
			g.BudgetPerRunUSD = f.budgetRun
		case "budget-day":
			g.BudgetPerDayUSD = f.budgetDay
		case "max-steps":
			g.MaxSteps = f.maxSteps
		case "wall-clock":
			g.WallClockS, err = seconds(name, f.wallClock)
		case "threshold":
			g.UncertaintyThreshold = f.threshold
		case "confirm-ttl":
			g.ConfirmationTTLS, err = seconds(name, f.confirmTTL)
		case "network":
			sb.NetworkAllowed = f.network
		case "install-secrets":
			sb.InstallSecrets = f.installSecrets
		case "memory-mb":
			sb.MemoryMB = f.memoryMB
		case "cpu-seconds":
			sb.CPUSeconds = f.cpu
		case "processes":
			sb.MaxProcesses = f.procs
		case "disk-mb":
			sb.DiskMB = f.diskMB
		case "issues-become-cards":
			cards = f.issuesBecomeCards
		}
		if err != nil {
			return err
		}
	}
	if err := g.Validate(); err != nil {
		return usagef("project set", "--%v", err)
	}
	if err := sb.Validate(); err != nil {
		return usagef("project set", "--%v", err)
	}
	rules := p.PolicyRules
	if set["policy-file"] {
		text, err := readPolicyFile(f.policyFile, stdin)
		if err != nil {
			return err
		}
		if rules, err = engine.ParsePolicyRules(text); err != nil {
			return fmt.Errorf("--policy-file %s, %w", f.policyFile, err)
		}
	}
	p.Governance, p.Sandbox, p.PolicyRules, p.IssuesBecomeCards = g, sb, rules, cards
	return nil
}

func readPolicyFile(name string, stdin io.Reader) (string, error) {
	if name == "" {
		return "", usagef("project set", "--policy-file needs a file name (or - for stdin)")
	}
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", fmt.Errorf("--policy-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return "", fmt.Errorf("--policy-file %s: %w", name, err)
	}
	if len(b) > 1<<20 {
		return "", fmt.Errorf("--policy-file %s is larger than 1 MiB", name)
	}
	return string(b), nil
}

func projectSetCommand() *command {
	return &command{
		name: "project set", args: "NAME [--budget-run USD] [--max-steps N] [--network on|off] [--policy-file FILE] …",
		summary: "change a project's governance, sandbox and confirmation settings (as on the settings page)",
		detail: "Only the settings given change; 0 puts a setting back to the server's default.\n" +
			"Changes are checked as the settings page checks them and recorded in the project's audit log\n" +
			"as made by the local operator.",
		example: "hero project set web --budget-run 0.50 --max-steps 30 --wall-clock 20m --network on\n" +
			"printf 'run_command confirm ^npm publish\\ngit_push allow\\n' | hero project set web --policy-file -",
		flags: func(fs *flag.FlagSet) action {
			var f projectSettingFlags
			f.declare(fs)
			return withNamedProject("project set", "usage: hero project set NAME --SETTING VALUE …", func(ctx context.Context, a *app, p *store.Project, std stdio) error {
				before := p.Settings()
				if err := f.apply(fs, p, std.in); err != nil {
					return err
				}
				changes := store.SettingsChanges(before, p.Settings())
				if changes == "" {
					fmt.Fprintf(std.out, "project %s: nothing changed\n", p.Name)
					return nil
				}
				if err := a.db.UpdateProject(ctx, p); err != nil {
					return fmt.Errorf("save project %s: %w", p.Name, err)
				}
				if err := a.db.AddProjectAudit(ctx, &store.ProjectAudit{ProjectID: p.ID, Action: store.AuditSettingsSaved, Subject: p.Name, Detail: changes, Actor: operator(), Via: viaCLI}); err != nil {
					return err
				}
				a.log.Info("project saved", "project", p.Name, "changes", changes, "by", operator(), "via", viaCLI)
				fmt.Fprintf(std.out, "project %s: %s\n", p.Name, changes)
				return nil
			})
		},
	}
}

func projectShowCommand() *command {
	return &command{
		name: "project show", args: "NAME", summary: "print a project's settings as key: value lines",
		detail: "Keys are the flags of hero project set. A value the project leaves at 0 shows the\n" +
			"default that applies, marked (default); each confirmation rule is a policy: line.",
		example: "hero project show web",
		flags: func(*flag.FlagSet) action {
			return withNamedProject("project show", "usage: hero project show NAME", func(ctx context.Context, a *app, p *store.Project, std stdio) error {
				fmt.Fprint(std.out, showProject(p))
				return nil
			})
		},
	}
}

// showProject is `hero project show`'s output.
func showProject(p *store.Project) string {
	d := engine.DefaultLimits()
	flt := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	defaults := map[string]string{
		"budget-run": flt(d.BudgetPerRunUSD), "budget-day": flt(d.BudgetPerDayUSD),
		"max-steps": strconv.Itoa(d.MaxSteps), "wall-clock": store.ShortDuration(d.WallClock),
		"threshold": flt(d.UncertaintyThreshold), "confirm-ttl": store.ShortDuration(d.ConfirmationTTL),
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nrepo: %s\nbranch: %s\n", p.Name, p.RepoURL, p.DefaultBranch)
	rules := 0
	for _, s := range p.Settings() {
		v := s.Value
		if v == "0" {
			if def, ok := defaults[s.Key]; ok {
				v = def + " (default)"
			} else {
				v = "0 (the server's default)"
			}
		}
		if s.Key == "policy" {
			rules++
		}
		fmt.Fprintf(&b, "%s: %s\n", s.Key, v)
	}
	if rules == 0 {
		fmt.Fprintln(&b, "policy: none (the default policy applies)")
	}
	return b.String()
}
