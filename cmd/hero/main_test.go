package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a run.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hero runs the binary's run() in-process with env and stdin.
func hero(t *testing.T, env map[string]string, stdin string, interactive bool, args ...string) (string, string, error) {
	t.Helper()
	var out, errb syncBuffer
	err := run(t.Context(), args, stdio{in: strings.NewReader(stdin), out: &out, err: &errb, interactive: interactive}, func(k string) string { return env[k] })
	return out.String(), errb.String(), err
}

func gitRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"calc.go": "package calc\n\nfunc Add(a, b int) int { return a - b }\n", "go.mod": "module calc\n\ngo 1.22\n"}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "add", "-A")
	git(t, dir, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
	return dir
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return string(out)
}

func TestRunFixesRepoAndCommitsOnABranchAfterYes(t *testing.T) {
	enginetest.RequireBwrap(t)
	repo := gitRepo(t)
	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("edit_file", `{"path":"calc.go","old":"return a - b","new":"return a + b"}`)),
		openaitest.Tools(openaitest.Call("git_push", `{"branch":"hero/fix"}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"Fixed Add."}`)),
	)
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini"}
	// Answers: approve the push (it fails: a terminal run has no remote), then yes to the branch.
	out, errOut, err := hero(t, env, "y\ny\n", true, "run", "--repo", repo, "fix the Add function")
	if err != nil {
		t.Fatalf("hero run: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, want := range []string{"On it: run", "edit_file", "confirmation", "push branch hero/fix", "Fixed Add.", "steps 3", "cost $", "calc.go | 2 +-", "-func Add(a, b int) int { return a - b }", "committed on branch hero/"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The work came back on a new branch; the checked-out branch is untouched.
	branches := git(t, repo, "branch", "--list", "hero/*")
	name := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(branches), "*"))
	if !strings.HasPrefix(name, "hero/r") {
		t.Fatalf("branches = %q", branches)
	}
	if got := git(t, repo, "show", name+":calc.go"); !strings.Contains(got, "return a + b") {
		t.Errorf("branch %s calc.go = %s", name, got)
	}
	if got, _ := os.ReadFile(filepath.Join(repo, "calc.go")); !strings.Contains(string(got), "a - b") {
		t.Errorf("working tree was changed without asking: %s", got)
	}
}

func TestRunNonInteractiveDeniesAndKeepsBundle(t *testing.T) {
	enginetest.RequireBwrap(t)
	repo := gitRepo(t)
	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("write_file", `{"path":"NOTES.md","content":"hi\n"}`)),
		openaitest.Tools(openaitest.Call("delete_file", `{"path":"go.mod"}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"wrote notes"}`)),
	)
	data := t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": data, "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini"}
	out, errOut, err := hero(t, env, "", false, "run", "--repo", repo, "write notes")
	if err != nil {
		t.Fatalf("hero run: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "stdin is not a terminal") || !strings.Contains(out, "denied") {
		t.Errorf("no denial message:\n%s", out)
	}
	if !strings.Contains(out, "not applied") {
		t.Errorf("changes were not kept aside:\n%s", out)
	}
	bundles, _ := filepath.Glob(filepath.Join(data, "runs", "*.bundle"))
	if len(bundles) != 1 {
		t.Fatalf("bundles = %v", bundles)
	}
	if b := git(t, repo, "branch", "--list", "hero/*"); strings.TrimSpace(b) != "" {
		t.Errorf("a branch was created without a yes: %s", b)
	}
	// The bundle applies as the message says.
	git(t, repo, "fetch", "-q", bundles[0], "HEAD:refs/heads/hero/later")
	if got := git(t, repo, "show", "hero/later:NOTES.md"); got != "hi\n" {
		t.Errorf("bundle content = %q", got)
	}
	if got := git(t, repo, "ls-tree", "--name-only", "hero/later"); !strings.Contains(got, "go.mod") {
		t.Errorf("denied delete happened: %s", got)
	}
}

func TestRunWithoutAPIKeyNamesTheVariable(t *testing.T) {
	_, _, err := hero(t, map[string]string{"HERO_DATA_DIR": t.TempDir()}, "", false, "run", "do it")
	if err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunUnknownProject(t *testing.T) {
	_, _, err := hero(t, map[string]string{"HERO_DATA_DIR": t.TempDir(), "OPENAI_API_KEY": "k"}, "", false, "run", "--project", "ghost", "do it")
	if err == nil || !strings.Contains(err.Error(), `no project named "ghost"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestProjectsAndSecretsCommands(t *testing.T) {
	const k1, k2, salt = "1111111111111111111111111111111111111111111111111111111111111111", "2222222222222222222222222222222222222222222222222222222222222222", "00112233445566778899aabbccddeeff"
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "SECRETS_ENCRYPTION_KEY": k1, "SECRETS_KDF_SALT": salt}
	if out, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", "https://example.com/web.git", "--branch", "dev"); err != nil || !strings.Contains(out, "added project web") {
		t.Fatalf("add: %v %s", err, out)
	}
	if _, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", "https://example.com/x.git"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate add: %v", err)
	}
	out, _, _ := hero(t, env, "", false, "project", "list")
	if !strings.Contains(out, "https://example.com/web.git") || !strings.Contains(out, "dev") {
		t.Fatalf("list: %s", out)
	}
	const value = "tok-4f9a8b7c6d5e"
	if _, _, err := hero(t, env, value+"\n", false, "secrets", "set", "--project", "web", "DEPLOY_TOKEN"); err != nil {
		t.Fatal(err)
	}
	out, logs, _ := hero(t, env, "", false, "secrets", "list", "--project", "web")
	if !strings.Contains(out, "DEPLOY_TOKEN") || strings.Contains(out+logs, value) {
		t.Fatalf("secrets list must show the name only: %s", out)
	}
	if _, _, err := hero(t, env, "", false, "secrets", "set", "--project", "web", "EMPTY"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty value: %v", err)
	}
	if _, _, err := hero(t, env, "v", false, "secrets", "set", "--project", "web", "bad-name"); err == nil {
		t.Fatal("a bad secret name was accepted")
	}
	if _, _, err := hero(t, env, "/tmp/x.so", false, "secrets", "set", "--project", "web", "LD_PRELOAD"); err == nil ||
		!strings.Contains(err.Error(), "reserved because the dynamic loader") {
		t.Fatalf("LD_PRELOAD as a secret name: %v", err)
	}
	// Rotation: a new key version seals, the old one still opens until re-encrypted.
	env["SECRETS_ENCRYPTION_KEY"] = "2:" + k2 + ",1:" + k1
	if out, _, err := hero(t, env, "", false, "secrets", "rotate"); err != nil || !strings.Contains(out, "re-encrypted 1 secrets with key version 2") {
		t.Fatalf("rotate: %v %s", err, out)
	}
	if _, _, err := hero(t, env, "", false, "secrets", "rm", "--project", "web", "DEPLOY_TOKEN"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := hero(t, env, "", false, "project", "rm", "web"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := hero(t, env, "", false, "project", "rm", "web"); err == nil || !strings.Contains(err.Error(), "no project named") {
		t.Fatalf("rm twice: %v", err)
	}
}

func TestBadConfigurationIsNamed(t *testing.T) {
	_, _, err := hero(t, map[string]string{"HERO_SANDBOX": "docker"}, "", false, "migrate")
	if err == nil || !strings.Contains(err.Error(), "HERO_SANDBOX") {
		t.Fatalf("err = %v", err)
	}
	_, _, err = hero(t, map[string]string{"HERO_DATA_DIR": t.TempDir(), "SECRETS_ENCRYPTION_KEY": "zz"}, "", false, "migrate")
	if err == nil || !strings.Contains(err.Error(), "SECRETS_ENCRYPTION_KEY") {
		t.Fatalf("err = %v", err)
	}
	_, _, err = hero(t, map[string]string{"HERO_DATA_DIR": t.TempDir(), "DATABASE_URL": "postgres://x"}, "", false, "migrate")
	if err == nil || !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunCtrlCCancelsAndKillsTheCommand(t *testing.T) {
	enginetest.RequireBwrap(t)
	repo := gitRepo(t)
	model := openaitest.NewServer(t, openaitest.Tools(openaitest.Call("run_command", `{"command":"echo started; sleep 120","timeout_s":600}`)))
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini"}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"run", "--repo", repo, "wait"}, stdio{in: strings.NewReader(""), out: &out, err: &errb}, func(k string) string { return env[k] })
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("command did not start:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	begin := time.Now()
	cancel() // what Ctrl-C does
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "cancelled") {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Ctrl-C did not stop the run")
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("cancelling took %s", d)
	}
	if !strings.Contains(out.String(), "cancelled") {
		t.Errorf("no closing summary:\n%s", out.String())
	}
}

func TestRunShowsNoSecretValue(t *testing.T) {
	enginetest.RequireBwrap(t)
	repo := gitRepo(t)
	const secret = "pa55-w0rd-9c8b7a6"
	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("run_command", `{"command":"echo $DB_PASSWORD; echo $DB_PASSWORD >&2; exit 3"}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"done"}`)),
	)
	model.ForbidSubstrings(secret)
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini"}
	if _, _, err := hero(t, env, "", false, "project", "add", "app", "--repo", repo); err != nil {
		t.Fatal(err)
	}
	if _, _, err := hero(t, env, secret, false, "secrets", "set", "--project", "app", "DB_PASSWORD"); err != nil {
		t.Fatal(err)
	}
	out, logs, err := hero(t, env, "", false, "run", "--project", "app", "print the password")
	if err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out, logs)
	}
	if strings.Contains(out+logs, secret) {
		t.Fatalf("the secret value was shown:\n%s\n%s", out, logs)
	}
	if !strings.Contains(out, "[REDACTED:DB_PASSWORD]") {
		t.Errorf("output does not show where the secret was hidden:\n%s", out)
	}
}

// hero run --yes answers every action confirmation and the final "commit
// to a branch" question without a terminal; a limit from the command line
// still stops the run.
func TestRunYesApprovesActionsAndCommits(t *testing.T) {
	enginetest.RequireBwrap(t)
	repo := gitRepo(t)
	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("write_file", `{"path":"NOTES.md","content":"hi\n"}`)),
		openaitest.Tools(openaitest.Call("delete_file", `{"path":"go.mod"}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"notes written, go.mod gone"}`)),
	)
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini"}
	out, errOut, err := hero(t, env, "", false, "run", "--yes", "--repo", repo, "tidy up")
	if err != nil {
		t.Fatalf("hero run --yes: %v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"--yes: approved.", "--yes: yes.", "committed on branch hero/"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	name := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(git(t, repo, "branch", "--list", "hero/*")), "*"))
	if files := git(t, repo, "ls-tree", "--name-only", name); !strings.Contains(files, "NOTES.md") || strings.Contains(files, "go.mod") {
		t.Errorf("branch %q holds %q; want NOTES.md and no go.mod", name, files)
	}
}

func TestRunNoDeniesEvenOnATerminal(t *testing.T) {
	enginetest.RequireBwrap(t)
	repo := gitRepo(t)
	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("write_file", `{"path":"NOTES.md","content":"hi\n"}`)),
		openaitest.Tools(openaitest.Call("delete_file", `{"path":"go.mod"}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"done"}`)),
	)
	data := t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": data, "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini"}
	// An interactive stdin that would say yes to everything: --no wins.
	out, errOut, err := hero(t, env, "y\ny\ny\n", true, "run", "--no", "--repo", repo, "tidy up")
	if err != nil {
		t.Fatalf("hero run --no: %v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"--no: denied.", "--no: no.", "not applied"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if b := git(t, repo, "branch", "--list", "hero/*"); strings.TrimSpace(b) != "" {
		t.Errorf("--no created a branch: %s", b)
	}
	bundles, _ := filepath.Glob(filepath.Join(data, "runs", "*.bundle"))
	if len(bundles) != 1 {
		t.Fatalf("bundles = %v", bundles)
	}
	git(t, repo, "fetch", "-q", bundles[0], "HEAD:refs/heads/later")
	if got := git(t, repo, "ls-tree", "--name-only", "later"); !strings.Contains(got, "go.mod") || !strings.Contains(got, "NOTES.md") {
		t.Errorf("bundle tree = %q: the write is kept, the denied delete did not happen", got)
	}
}

func TestRunMaxStepsStopsEvenWithYes(t *testing.T) {
	enginetest.RequireBwrap(t)
	repo := gitRepo(t)
	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("list_files", `{"path":""}`)),
		openaitest.Tools(openaitest.Call("read_file", `{"path":"calc.go"}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"not reached"}`)),
	)
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini"}
	out, _, err := hero(t, env, "", false, "run", "--yes", "--max-steps", "1", "--budget", "0.5", "--timeout", "5m", "--repo", repo, "look")
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("err = %v\n%s", err, out)
	}
	for _, want := range []string{"1 steps, its limit", "--yes approves actions, not more steps", "Stopped at the steps limit", "steps 1 "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "not reached") {
		t.Errorf("the run went past --max-steps:\n%s", out)
	}
}

func TestRunFlagMistakes(t *testing.T) {
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "OPENAI_API_KEY": "k"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--yes", "--no"}, "--yes and --no contradict each other"},
		{[]string{"--max-steps", "-3"}, "--max-steps must be a positive number"},
		{[]string{"--max-steps", "many"}, `invalid value "many" for flag -max-steps`},
		{[]string{"--budget", "-1"}, "--budget must be a positive amount"},
		{[]string{"--timeout", "10"}, `invalid value "10" for flag -timeout`},
		{[]string{"--timeout", "10ms"}, "--timeout must be at least 1s"},
	} {
		_, _, err := hero(t, env, "", false, append(append([]string{"run"}, tc.args...), "do it")...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ue) {
			t.Errorf("hero run %v: err = %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
}
