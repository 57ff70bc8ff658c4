package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hero-dev/hero/store/storetest"
)

// auditOf reads a project's audit log straight from the data directory's
// database, oldest first, as "action subject (detail) by actor via via".
func auditOf(t *testing.T, dataDir, project string) []string {
	t.Helper()
	db := storetest.OpenIn(t, dataDir)
	p, err := db.ProjectByName(t.Context(), project)
	if err != nil {
		t.Fatal(err)
	}
	list, err := db.ListProjectAudit(t.Context(), p.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(list) - 1; i >= 0; i-- {
		a := list[i]
		out = append(out, a.Action+" "+a.Subject+" ("+a.Detail+") by "+a.Actor+" via "+a.Via)
	}
	return out
}

func TestProjectSetAndShow(t *testing.T) {
	data := t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": data}
	if _, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", "https://example.com/web.git"); err != nil {
		t.Fatal(err)
	}
	out, _, err := hero(t, env, "", false, "project", "show", "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: web\n", "repo: https://example.com/web.git\n", "branch: main\n", "budget-run: 2 (default)\n", "max-steps: 50 (default)\n",
		"wall-clock: 30m (default)\n", "confirm-ttl: 24h (default)\n", "network: off\n", "install-secrets: off\n", "memory-mb: 0 (the server's default)\n", "disk-mb: 0 (the server's default)\n",
		"issues-become-cards: off\n", "policy: none (the default policy applies)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	policy := filepath.Join(t.TempDir(), "rules.txt")
	if err := os.WriteFile(policy, []byte("# ours\nrun_command confirm ^npm publish\ngit_push allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err = hero(t, env, "", false, "project", "set", "web", "--budget-run", "0.5", "--budget-day", "7", "--max-steps", "30", "--wall-clock", "20m",
		"--threshold", "0.8", "--confirm-ttl", "2h", "--network", "on", "--install-secrets", "on", "--memory-mb", "2048", "--cpu-seconds", "600", "--processes", "128", "--disk-mb", "512",
		"--issues-become-cards", "on", "--policy-file", policy)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "project web: budget-run 0 → 0.5; budget-day 0 → 7; max-steps 0 → 30; wall-clock 0 → 20m") || !strings.Contains(out, "policy (none) → run_command confirm ^npm publish | git_push allow") {
		t.Errorf("set said %q", out)
	}
	out, _, err = hero(t, env, "", false, "project", "show", "web")
	if err != nil {
		t.Fatal(err)
	}
	want := "name: web\nrepo: https://example.com/web.git\nbranch: main\nbudget-run: 0.5\nbudget-day: 7\nmax-steps: 30\nwall-clock: 20m\nthreshold: 0.8\nconfirm-ttl: 2h\n" +
		"network: on\ninstall-secrets: on\nmemory-mb: 2048\ncpu-seconds: 600\nprocesses: 128\ndisk-mb: 512\nissues-become-cards: on\npolicy: run_command confirm ^npm publish\npolicy: git_push allow\n"
	if out != want {
		t.Errorf("show:\n%s\nwant:\n%s", out, want)
	}

	// Only what is given changes; 0 goes back to the default; the rules
	// come from stdin with -, and an empty file clears them.
	if out, _, err = hero(t, env, "", false, "project", "set", "web", "--max-steps", "0", "--network", "off", "--policy-file", "-"); err != nil || out != "project web: max-steps 30 → 0; network on → off; policy run_command confirm ^npm publish | git_push allow → (none)\n" {
		t.Fatalf("set: %v %q", err, out)
	}
	if out, _, err = hero(t, env, "", false, "project", "set", "web", "--max-steps", "0"); err != nil || out != "project web: nothing changed\n" {
		t.Fatalf("set again: %v %q", err, out)
	}

	// Bad input: a clear error, and nothing is saved.
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
		usage bool
	}{
		{[]string{"web"}, "", "nothing to change", true},
		{[]string{"web", "--threshold", "2"}, "", "--threshold must be a number from 0 to 1, got 2", true},
		{[]string{"web", "--budget-run", "-1"}, "", "--budget-run must be from 0 to 1000000", true},
		{[]string{"web", "--disk-mb", "8"}, "", "--disk-mb must be at least 16", true},
		{[]string{"web", "--issues-become-cards", "maybe"}, "", `want on or off, got "maybe"`, true},
		{[]string{"web", "--wall-clock", "-5m"}, "", "--wall-clock must not be negative", true},
		{[]string{"web", "--wall-clock", "20"}, "", `invalid value "20" for flag -wall-clock`, true},
		{[]string{"web", "--network", "maybe"}, "", "want on or off", true},
		{[]string{"web", "--install-secrets", "sometimes"}, "", `invalid value "sometimes" for flag -install-secrets: want on or off`, true},
		{[]string{"web", "--max-steps", "5", "--policy-file", "-"}, "git_push allow\nrun_command sometimes rm\n", `--policy-file -, line 2 (run_command sometimes rm): unknown action "sometimes"`, false},
		{[]string{"web", "--policy-file", "/nonexistent/rules"}, "", "no such file", false},
		{[]string{"ghost", "--max-steps", "5"}, "", `no project named "ghost"`, false},
	} {
		_, _, err := hero(t, env, tc.stdin, false, append([]string{"project", "set"}, tc.args...)...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ue) != tc.usage {
			t.Errorf("project set %v: err = %v, want %q (usage error %v)", tc.args, err, tc.want, tc.usage)
		}
	}
	if out, _, _ := hero(t, env, "", false, "project", "show", "web"); !strings.Contains(out, "max-steps: 50 (default)\n") || !strings.Contains(out, "threshold: 0.8\n") {
		t.Errorf("a refused change was saved:\n%s", out)
	}

	audit := auditOf(t, data, "web")
	if len(audit) != 2 || !strings.HasPrefix(audit[0], "settings.saved web (budget-run 0 → 0.5;") || !strings.HasSuffix(audit[1], "by "+operator()+" via command line (local operator)") {
		t.Errorf("audit log:\n%s", strings.Join(audit, "\n"))
	}
}

func TestMemberCommands(t *testing.T) {
	data := t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": data}
	if _, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", "https://example.com/web.git"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := hero(t, env, "", false, "member", "list", "--project", "web"); !strings.Contains(out, "project web has no members") {
		t.Errorf("empty list: %q", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ana@example.com", "owner"}, "ana@example.com is an owner of project web"},
		{[]string{"Bob@Example.com"}, "bob@example.com is a member of project web"},
		{[]string{"bob@example.com", "approver"}, "bob@example.com is an approver of project web"},
	} {
		out, _, err := hero(t, env, "", false, append([]string{"member", "add", "--project", "web"}, tc.args...)...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Fatalf("member add %v: %v %q", tc.args, err, out)
		}
	}
	out, _, err := hero(t, env, "", false, "members", "ls", "--project", "web")
	if err != nil || !strings.Contains(out, "ana@example.com  owner") || !strings.Contains(out, "bob@example.com  approver") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{"add", "--project", "web", "carl@example.com", "god"}, "Role must be one of owner, admin, approver, member, viewer", true},
		{[]string{"add", "--project", "web", "carl"}, `"carl" is not an email address`, true},
		{[]string{"add", "--project", "web", "ana@example.com", "admin"}, "at least one owner", false},
		{[]string{"rm", "--project", "web", "ana@example.com"}, "at least one owner", false},
		{[]string{"rm", "--project", "web", "carl@example.com"}, "carl@example.com is not a member of project web", false},
		{[]string{"add", "ana@example.com"}, "needs --project NAME", true},
		{[]string{"add", "--project", "ghost", "ana@example.com"}, `no project named "ghost"`, false},
	} {
		_, _, err := hero(t, env, "", false, append([]string{"member"}, tc.args...)...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ue) != tc.usage {
			t.Errorf("member %v: err = %v, want %q (usage error %v)", tc.args, err, tc.want, tc.usage)
		}
	}
	if out, _, err := hero(t, env, "", false, "member", "rm", "--project", "web", "bob@example.com"); err != nil || !strings.Contains(out, "bob@example.com removed from project web") {
		t.Fatalf("rm: %v %q", err, out)
	}
	by := " by " + operator() + " via command line (local operator)"
	want := []string{
		"member.set ana@example.com (added as owner)" + by,
		"member.set bob@example.com (added as member)" + by,
		"member.set bob@example.com (member → approver)" + by,
		"member.removed bob@example.com (was approver)" + by,
	}
	if got := auditOf(t, data, "web"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
