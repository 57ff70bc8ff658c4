package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/e2b/e2btest"
)

// HERO_SANDBOX=e2b runs the agent in an E2B sandbox (here E2B's fake,
// reached through E2B_API_URL and E2B_SANDBOX_URL): the repository is
// streamed in, commands run there, the work comes back as a branch, and
// the sandbox is killed at the end.
func TestRunOnE2B(t *testing.T) {
	fake := e2btest.NewServer(t)
	repo := gitRepo(t)
	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("run_command", `{"command":"cat calc.go | head -1; echo $HERO_PROBE"}`)),
		openaitest.Tools(openaitest.Call("edit_file", `{"path":"calc.go","old":"return a - b","new":"return a + b"}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"Fixed Add."}`)),
	)
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini",
		"HERO_SANDBOX": "e2b", "E2B_API_KEY": e2btest.APIKey, "E2B_API_URL": fake.URL, "E2B_SANDBOX_URL": fake.URL}
	out, errOut, err := hero(t, env, "", false, "run", "--yes", "--repo", repo, "fix Add")
	if err != nil {
		t.Fatalf("hero run on e2b: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "package calc") {
		t.Errorf("the command's output is missing:\n%s", out)
	}
	branch := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(git(t, repo, "branch", "--list", "hero/*")), "*"))
	if branch == "" || !strings.Contains(git(t, repo, "show", branch+":calc.go"), "return a + b") {
		t.Fatalf("the work did not come back as a branch (%q):\n%s\n%s", branch, out, errOut)
	}
	if live := fake.Live(); len(live) != 0 {
		t.Fatalf("sandboxes left running: %v", live)
	}
	if len(fake.Starts()) == 0 {
		t.Fatal("nothing ran on E2B")
	}
}

func TestE2BConfiguration(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(func(k string) string { return map[string]string{"HERO_SANDBOX": "e2b"}[k] })
	if err == nil || !strings.Contains(err.Error(), "E2B_API_KEY") {
		t.Fatalf("e2b without a key: %v", err)
	}
	a, err := loadConfig(func(k string) string {
		return map[string]string{"HERO_SANDBOX": "e2b", "E2B_API_KEY": "k", "DATABASE_URL": "mysql://hero:pw1@db:3306/hero"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := loadConfig(func(k string) string {
		return map[string]string{"HERO_SANDBOX": "e2b", "E2B_API_KEY": "k", "DATABASE_URL": "mysql://hero:other@db:3306/hero"}[k]
	})
	if a.installID() != b.installID() || a.installID() == "" {
		t.Fatalf("replicas of one database disagree on the installation id: %q %q", a.installID(), b.installID())
	}
}

// The orphan killer runs on the replica holding the singleton lease and
// spares sandboxes a lease holds.
func TestE2BOrphansKilledByOneReplica(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	env := func(k string) string {
		return map[string]string{"HERO_DATA_DIR": t.TempDir(), "HERO_SANDBOX": "e2b", "E2B_API_KEY": e2btest.APIKey, "E2B_API_URL": fake.URL, "E2B_SANDBOX_URL": fake.URL}[k]
	}
	cfg, err := loadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(t.Context(), cfg, stdio{in: strings.NewReader(""), out: &syncBuffer{}, err: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.withAgent("replica-a", 0, nil); err != nil {
		t.Fatal(err)
	}
	held, err := a.manager.Acquire(t.Context(), sandbox.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := a.e2b.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	// Another replica holds the lease: this one does nothing.
	if ok, err := a.db.ClaimSingleton(t.Context(), e2bOrphanLease, "replica-b", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if n := a.killE2BOrphans(t.Context(), "replica-a", 0); n != 0 {
		t.Fatalf("a replica without the lease killed %d", n)
	}
	if err := a.db.ReleaseSingleton(t.Context(), e2bOrphanLease, "replica-b"); err != nil {
		t.Fatal(err)
	}
	// Young sandboxes are spared (their lease may not be written yet).
	if n := a.killE2BOrphans(t.Context(), "replica-a", time.Hour); n != 0 {
		t.Fatalf("a young sandbox was killed (%d)", n)
	}
	if n := a.killE2BOrphans(t.Context(), "replica-a", 0); n != 1 {
		t.Fatalf("killed %d orphans, want 1", n)
	}
	live := fake.Live()
	if _, ok := live[orphan.ID()]; ok {
		t.Fatal("the orphan lives")
	}
	if _, ok := live[held.ID()]; !ok {
		t.Fatal("the leased sandbox was killed")
	}
}
