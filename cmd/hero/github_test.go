package main

import (
	"bytes"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// The GitHub surface's branch hook makes the workspace check out the
// branch of hero's own pull request instead of the default branch (real
// bubblewrap sandbox, real git over HTTP).
func TestWorkspaceChecksOutTheRunsBranch(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed: run scripts/install-deps.sh bwrap")
	}
	dir := t.TempDir()
	db, err := store.Open(t.Context(), "", dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	git := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "main\n"}, func(string) bool { return false })
	git.AnonymousRead()
	tip := git.Commit("hero/7-fix", "earlier work", map[string]string{"a.txt": "branch\n"})

	prov, err := bwrap.New(filepath.Join(dir, "sb"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m, err := sandbox.NewManager(prov, leaseStore{db}, sandbox.ManagerConfig{Owner: "test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(t.Context()) })
	w := &workspaces{manager: m, log: slog.New(slog.DiscardHandler), bases: map[string]string{},
		branchFor: func(ex *store.Execution) string {
			if ex.ID == "continues" {
				return "hero/7-fix"
			}
			return ""
		}}
	p := &store.Project{ID: 1, Name: "p", RepoURL: git.RepoURL("o", "r"), DefaultBranch: "main"}

	for _, c := range []struct{ id, branch, content string }{
		{"continues", "hero/7-fix", "branch"},
		{"fresh", "main", "main"},
	} {
		ex := &store.Execution{ID: c.id}
		sb, err := w.Open(t.Context(), p, ex, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		var out bytes.Buffer
		res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", "git symbolic-ref --short HEAD && cat a.txt && git rev-parse HEAD"}, Stdout: &out, Stderr: &out})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%s: %v %d %s", c.id, err, res.ExitCode, out.String())
		}
		lines := strings.Fields(out.String())
		if len(lines) != 3 || lines[0] != c.branch || lines[1] != c.content || (c.id == "continues" && lines[2] != tip) {
			t.Fatalf("%s: workspace is on %q, want branch %s with %q (tip %s)", c.id, lines, c.branch, c.content, tip)
		}
		if err := w.Close(t.Context(), ex, sb); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRedeliveryConfig(t *testing.T) {
	t.Parallel()
	envOf := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	r, err := redeliveryConfig(envOf("HERO_PUBLIC_URL", "https://hero.example.com/"), nil)
	if err != nil || !r.RepoHooks || r.HookID != 0 || r.HookURL != "https://hero.example.com/github/webhook" {
		t.Fatalf("token setup: %+v %v", r, err)
	}
	if r, err := redeliveryConfig(envOf("GITHUB_HOOK_ID", "4242"), nil); err != nil || !r.RepoHooks || r.HookID != 4242 {
		t.Fatalf("hook id: %+v %v", r, err)
	}
	if r, err := redeliveryConfig(envOf("GITHUB_HOOK_ID", "off"), nil); err != nil || r.RepoHooks {
		t.Fatalf("off: %+v %v", r, err)
	}
	if _, err := redeliveryConfig(envOf("GITHUB_HOOK_ID", "abc"), nil); err == nil || !strings.Contains(err.Error(), "GITHUB_HOOK_ID must be") {
		t.Fatalf("bad id: %v", err)
	}
}
