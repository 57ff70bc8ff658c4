package tools

import (
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine"
)

// gitRepo turns the workspace into a git repository on branch main with
// one commit, and returns a function running git there.
func gitRepo(t *testing.T, e *env) func(args ...string) string {
	t.Helper()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = e.sb.root
		cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
			"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q", "-b", "main")
	e.write("README.md", "# app\n")
	run("add", "-A")
	run("commit", "-q", "-m", "initial")
	return run
}

func TestGitCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	git := gitRepo(t, e)
	e.write("src/new.go", "package src\n")
	e.write("README.md", "# app\n\nMore.\n")

	got := e.mustCall("git_commit", `{"message": "-Add src package\n\nAnd a README line.", "confidence": 0.95}`)
	m := regexp.MustCompile(`^committed ([0-9a-f]{7,}) on branch main: "-Add src package"\n`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("git_commit = %q", got)
	}
	wantContains(t, "stat", got, "README.md", "src/new.go", "2 files changed")
	if head := git("rev-parse", "--short", "HEAD"); head != m[1] {
		t.Errorf("reported %s, HEAD is %s", m[1], head)
	}
	if who := git("log", "-1", "--format=%an <%ae> / %cn <%ce>"); who != "hero <hero@localhost> / hero <hero@localhost>" {
		t.Errorf("author/committer = %q", who)
	}
	if msg := git("log", "-1", "--format=%B"); msg != "-Add src package\n\nAnd a README line." {
		t.Errorf("message = %q", msg)
	}

	got = e.mustCall("git_commit", `{"message": "again"}`)
	if got != "nothing to commit: the workspace has no changes since the last commit" {
		t.Errorf("second git_commit = %q", got)
	}
	if n := git("rev-list", "--count", "HEAD"); n != "2" {
		t.Errorf("commits = %s; want 2", n)
	}

	// Deletions are staged too, and a detached HEAD is reported.
	git("checkout", "-q", "--detach")
	e.mustCall("delete_file", `{"path": "src/new.go"}`)
	wantContains(t, "detached", e.mustCall("git_commit", `{"message": "Remove src"}`), "on a detached HEAD", "1 file changed")
}

func TestGitCommitNotARepo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("a.txt", "a")
	_, err := e.call("git_commit", `{"message": "x"}`)
	wantErr(t, "no repo", err, "git_commit: the workspace is not a git repository")
}

func TestGitPush(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	git := gitRepo(t, e)

	for _, b := range []string{"trunk", "main", "master", "refs/heads/main"} {
		_, err := e.call("git_push", `{"branch": "`+b+`"}`)
		wantErr(t, "push "+b, err, "refusing to push", "default or a protected branch (trunk, main, master)", "without a branch")
	}
	bad := map[string]string{
		"feature..x":             `contains ".."`,
		"a b":                    `contains ' '`,
		"-x":                     `starts with "-"`,
		"x.lock":                 `ends with ".lock"`,
		"x/":                     `ends with "/"`,
		"a//b":                   `"//"`,
		".hidden":                `starts with "."`,
		"a/.b":                   `starts with "."`,
		"a:b":                    `contains ':'`,
		"x~1":                    `contains '~'`,
		"x^":                     `contains '^'`,
		"x?":                     `contains '?'`,
		"x*":                     `contains '*'`,
		"x[":                     `contains '['`,
		`a\b`:                    `contains '\\'`,
		"a@{1}":                  `contains "@{"`,
		"HEAD":                   "reserved name",
		"x.":                     `ends with "."`,
		"refs/tags/v1":           "not a ref path",
		"a\tb":                   `contains '\t'`,
		strings.Repeat("x", 300): "longer than 255",
	}
	for b, want := range bad {
		_, err := e.call("git_push", jsonArgs(map[string]any{"branch": b}))
		wantErr(t, "push "+b, err, "is not a valid branch name", want)
	}
	if len(e.forge.pushes) != 0 {
		t.Fatalf("refused pushes reached the forge: %v", e.forge.pushes)
	}

	// HEAD goes to a named branch without any local branch of that name,
	// and to the run's work branch without a name.
	e.write("fix.txt", "fixed\n")
	e.mustCall("git_commit", `{"message": "Fix"}`)
	got := e.mustCall("git_push", `{"branch": "refs/heads/hero/12-fix", "reason": "publish the fix"}`)
	if want := "pushed branch hero/12-fix (at " + git("rev-parse", "--short", "HEAD") + ")"; got != want {
		t.Errorf("git_push = %q; want %q", got, want)
	}
	got = e.mustCall("git_push", `{}`)
	wantContains(t, "work branch", got, "pushed branch hero/work (at ")
	if len(e.forge.pushes) != 2 || e.forge.pushes[0] != "hero/12-fix" || e.forge.pushes[1] != "hero/work" {
		t.Errorf("forge pushes = %v", e.forge.pushes)
	}

	e.forge.err = errors.New("remote rejected: protected branch hook declined")
	_, err := e.call("git_push", `{"branch": "hero/12-fix"}`)
	wantErr(t, "forge error", err, "git_push: push hero/12-fix: remote rejected")

	// A project without a known default branch still protects main/master.
	e.tc.Project = nil
	_, err = e.call("git_push", `{"branch": "master"}`)
	wantErr(t, "nil project", err, "refusing to push")
}

func TestNoForge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gitRepo(t, e)
	e.tc.Forge = nil
	for _, c := range []struct{ tool, args string }{
		{"git_push", `{"branch": "hero/x"}`},
		{"create_pull_request", `{"title": "x"}`},
		{"comment", `{"body": "x"}`},
	} {
		_, err := e.call(c.tool, c.args)
		if !errors.Is(err, engine.ErrNoForge) {
			t.Errorf("%s without a forge: %v; want ErrNoForge", c.tool, err)
		}
	}
}

func TestCreatePullRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	git := gitRepo(t, e)
	_, err := e.call("create_pull_request", `{"title": "Fix"}`)
	wantErr(t, "nothing pushed", err, "pushed no branch yet")

	// The head is the branch pushed last, whatever the workspace is on.
	git("commit", "-q", "--allow-empty", "-m", "docs")
	e.mustCall("git_push", `{"branch": "hero/7-docs"}`)
	git("checkout", "-q", "--detach")
	got := e.mustCall("create_pull_request", `{"title": "  Improve docs ", "body": "Adds a section.\n\nVerified by reading.", "draft": true}`)
	if got != "opened draft pull request: https://github.example/acme/app/pull/1" {
		t.Errorf("create_pull_request = %q", got)
	}
	want := recordedPR{Head: "hero/7-docs", Title: "Improve docs", Body: "Adds a section.\n\nVerified by reading.", Draft: true}
	if len(e.forge.prs) != 1 || e.forge.prs[0] != want {
		t.Errorf("forge PRs = %+v; want %+v", e.forge.prs, want)
	}
	got = e.mustCall("create_pull_request", `{"title": "Second"}`)
	wantContains(t, "non-draft", got, "opened pull request: https://github.example/acme/app/pull/2")
	if e.forge.prs[1].Head != "hero/7-docs" {
		t.Errorf("second PR head %q", e.forge.prs[1].Head)
	}
}

func TestComment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	got := e.mustCall("comment", `{"body": "Working on it: **step 1** done."}`)
	if got != "comment posted (31 characters)" {
		t.Errorf("comment = %q", got)
	}
	if len(e.forge.comments) != 1 || e.forge.comments[0] != "Working on it: **step 1** done." {
		t.Errorf("forge comments = %q", e.forge.comments)
	}
	e.forge.err = errors.New("403 Forbidden")
	_, err := e.call("comment", `{"body": "x"}`)
	wantErr(t, "forge error", err, "comment: 403 Forbidden")
}
