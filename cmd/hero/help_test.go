package main

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

// TestEveryCommandExplainsItself asks every subcommand for help both ways
// (`hero X --help`, `hero help X`, and -h): the help goes to stdout, the
// command does nothing else (serve does not start, nothing touches the
// database), and it names every flag and gives an example.
func TestEveryCommandExplainsItself(t *testing.T) {
	// A configuration that would make any real command fail: help must not
	// need it.
	env := map[string]string{"HERO_SANDBOX": "docker", "HERO_DATA_DIR": "/nonexistent/hero-help"}
	for _, c := range commands() {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(fs)
		var flags []string
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, "--"+f.Name) })
		words := strings.Fields(c.name)
		for _, args := range [][]string{
			append(append([]string{}, words...), "--help"),
			append(append([]string{}, words...), "-h"),
			append([]string{"help"}, words...),
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				start := time.Now()
				out, errOut, err := hero(t, env, "", false, args...)
				if err != nil {
					t.Fatalf("err = %v (stderr %q)", err, errOut)
				}
				if errOut != "" {
					t.Errorf("stderr = %q, want nothing", errOut)
				}
				for _, want := range append([]string{"hero " + c.name + " — ", "Usage:\n  hero " + c.name, "Example:\n  "}, flags...) {
					if !strings.Contains(out, want) {
						t.Errorf("help lacks %q:\n%s", want, out)
					}
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("help took %s: did it start something?", d)
				}
			})
		}
	}
	for _, g := range groups {
		for _, args := range [][]string{{g.name, "--help"}, {"help", g.name}} {
			out, errOut, err := hero(t, env, "", false, args...)
			if err != nil || errOut != "" {
				t.Fatalf("%v: err = %v, stderr %q", args, err, errOut)
			}
			for _, sub := range subcommandsOf(g.name) {
				if !strings.Contains(out, "hero "+g.name+" "+sub) {
					t.Errorf("%v does not list %s:\n%s", args, sub, out)
				}
			}
		}
	}
}

func TestHelpOverviewListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{nil, {"help"}, {"--help"}} {
		out, _, err := hero(t, nil, "", false, args...)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range commands() {
			if !strings.Contains(out, "hero "+c.name+" ") {
				t.Errorf("%v: overview lacks %q:\n%s", args, c.name, out)
			}
		}
	}
}

func TestCommandLineMistakesAreUsageErrors(t *testing.T) {
	env := map[string]string{"HERO_DATA_DIR": t.TempDir()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"project"}, "hero project needs a subcommand: add, list, rm"},
		{[]string{"project", "frob"}, `unknown command "hero project frob"`},
		{[]string{"project", "add", "web", "--repo", "x", "--colour", "red"}, "flag provided but not defined: -colour (see `hero help project add`)"},
		{[]string{"project", "add", "web"}, "usage: hero project add NAME --repo URL"},
		{[]string{"secrets", "list"}, "hero secrets list needs --project NAME"},
		{[]string{"serve", "now"}, "hero serve takes no arguments"},
		{[]string{"help", "project", "add", "web"}, "hero help takes one command"},
	} {
		_, _, err := hero(t, env, "", false, tc.args...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		} else if !errors.As(err, &ue) {
			t.Errorf("%v: %v is not a usage error (exit 2)", tc.args, err)
		}
	}
}
