package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/e2b"
	"github.com/hero-dev/hero/sandbox/e2b/e2btest"
	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
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
	// The repository went in as one upload, not chunk by chunk on stdin.
	if calls := fake.EnvdCalls(); calls["POST /process.Process/SendInput"] != 0 || calls["POST /files"] == 0 {
		t.Fatalf("envd calls: %v", calls)
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
	if a.E2BReapEvery != time.Minute || a.E2BOrphanAge != 10*time.Minute {
		t.Fatalf("orphan killer defaults: every %s, age %s", a.E2BReapEvery, a.E2BOrphanAge)
	}
	for k, v := range map[string]string{"HERO_E2B_REAP_INTERVAL": "500ms", "HERO_E2B_ORPHAN_AGE": "soon"} {
		_, err := loadConfig(func(key string) string {
			return map[string]string{"HERO_SANDBOX": "e2b", "E2B_API_KEY": "k", k: v}[key]
		})
		if err == nil || !strings.Contains(err.Error(), k) || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}

// The orphan killer spares sandboxes a lease holds and young ones. (That
// it runs on one replica, and moves, TestSingletons and
// TestE2BOrphanKillerReplicas prove.)
func TestE2BOrphanKiller(t *testing.T) {
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
	if err := a.withAgent(agentConfig{owner: "replica-a"}); err != nil {
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
	// Young sandboxes are spared (their lease may not be written yet).
	if n := a.killE2BOrphans(t.Context(), time.Hour); n != 0 {
		t.Fatalf("a young sandbox was killed (%d)", n)
	}
	if n := a.killE2BOrphans(t.Context(), 0); n != 1 {
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

// On E2B the filled workspace of a commit (dependencies installed) is
// snapshotted, and the next run at the same commit, lockfiles and secret
// version starts from that snapshot; a new commit or a secret change
// starts a fresh one.
func TestE2BWarmStartFromSnapshot(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	gitSrv := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "one\n", "go.mod": "module x\n\ngo 1.22\n"}, func(string) bool { return false })
	gitSrv.AnonymousRead()
	dir := t.TempDir()
	db := storetest.OpenIn(t, dir)
	prov, err := e2b.New(e2b.Config{APIKey: e2btest.APIKey, APIURL: fake.URL, SandboxURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	m, err := sandbox.NewManager(prov, leaseStore{db}, sandbox.ManagerConfig{Owner: "test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	mirrors, err := mirror.New(filepath.Join(dir, "mirrors"), nil, mirror.WithFreshness(0))
	if err != nil {
		t.Fatal(err)
	}
	version := "v1"
	w := newWorkspaces(workspacesConfig{manager: m, mirrors: mirrors, log: slog.New(slog.DiscardHandler),
		snapshots:     prov.API().DeleteSnapshot,
		secretVersion: func(context.Context, int64) (string, error) { return version, nil }})
	p := &store.Project{ID: 1, Name: "p", RepoURL: gitSrv.RepoURL("o", "r"), DefaultBranch: "main"}
	runOnce := func(id, want string) {
		t.Helper()
		ex := &store.Execution{ID: id}
		sb, err := w.Open(t.Context(), p, ex, map[string]string{"TOKEN": "t0k"})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		var out bytes.Buffer
		res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", `cat a.txt; git symbolic-ref --short HEAD; git status --porcelain; printf %s "$TOKEN"`}, Stdout: &out, Stderr: &out})
		if err != nil || res.ExitCode != 0 || out.String() != want+"hero/"+id+"\nt0k" {
			t.Fatalf("%s: %v %+v %q", id, err, res, out.String())
		}
		if err := w.Close(t.Context(), ex, sb); err != nil {
			t.Fatal(err)
		}
	}
	hits := func() uint64 { return mirrors.Stats().Hits[mirror.KindSnapshot] }
	runOnce("r1", "one\n")
	if hits() != 0 {
		t.Fatal("a first run started from a snapshot")
	}
	runOnce("r2", "one\n")
	if hits() != 1 {
		t.Fatalf("the second run did not start from the snapshot: %+v", mirrors.Stats())
	}
	version = "v2" // a secret changed
	runOnce("r3", "one\n")
	if hits() != 1 {
		t.Fatal("a run after a secret change started from the old snapshot")
	}
	gitSrv.Commit("main", "two", map[string]string{"a.txt": "two\n"})
	runOnce("r4", "two\n")
	if hits() != 1 {
		t.Fatal("a run at a new commit started from an old snapshot")
	}
	runOnce("r5", "two\n")
	if hits() != 2 {
		t.Fatal("the new commit's snapshot was not used")
	}
	// Only the last three snapshots are kept; the oldest is deleted at
	// E2B when a fourth is made.
	first := mirrors.Snapshots(p.ID)
	version = "v3"
	runOnce("r6", "two\n")
	kept := mirrors.Snapshots(p.ID)
	if len(first) != 3 || len(kept) != 3 {
		t.Fatalf("snapshots recorded: %v then %v", first, kept)
	}
	if got := fake.Templates(); len(got) != 4 { // base and the three kept
		t.Fatalf("templates at E2B: %v (kept %v)", got, kept)
	}
}

// Removing a project on E2B deletes its snapshots there too.
func TestRemovedProjectsSnapshotsDeleted(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	prov, err := e2b.New(e2b.Config{APIKey: e2btest.APIKey, APIURL: fake.URL, SandboxURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := prov.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := sb.(*e2b.Sandbox).Snapshot(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := mirror.New(filepath.Join(t.TempDir(), "mirrors"), nil, mirror.WithSnapshotDeleter(prov.API().DeleteSnapshot))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := ms.Repo(t.Context(), 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.SetSnapshot("k", snap); err != nil {
		t.Fatal(err)
	}
	if err := ms.Remove(t.Context(), 4); err != nil {
		t.Fatal(err)
	}
	if got := fake.Templates(); len(got) != 1 || got[0] != "base" {
		t.Fatalf("templates left at E2B: %v", got)
	}
}

// A run on E2B keeps its sandbox across a restart: hero stopping mid-run
// pauses the sandbox and keeps its lease; the replica that continues the
// run gets the same sandbox back, with the run's work and branch, while
// the orphan killer spares it; once the run is over and its replica gone,
// the killer removes it.
func TestE2BRunContinuesInItsSandboxAfterRestart(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	gitSrv := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "one\n"}, func(string) bool { return false })
	gitSrv.AnonymousRead()
	dir := t.TempDir()
	db := storetest.OpenIn(t, dir)
	mirrors, err := mirror.New(filepath.Join(dir, "mirrors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &store.Project{Name: "p", RepoURL: gitSrv.RepoURL("o", "r"), DefaultBranch: "main"}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	ex := &store.Execution{ProjectID: p.ID, Status: store.StatusRunning, Surface: "slack", Task: "t"}
	if err := db.CreateExecution(t.Context(), ex); err != nil {
		t.Fatal(err)
	}
	// replica starts one hero process: its provider, manager, workspaces.
	replica := func(owner string) (*app, *workspaces) {
		prov, err := e2b.New(e2b.Config{APIKey: e2btest.APIKey, APIURL: fake.URL, SandboxURL: fake.URL, Install: "inst"})
		if err != nil {
			t.Fatal(err)
		}
		m, err := sandbox.NewManager(prov, leaseStore{db}, sandbox.ManagerConfig{Owner: owner}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(context.Background()) })
		a := &app{db: db, manager: m, e2b: prov, log: slog.New(slog.DiscardHandler)}
		return a, newWorkspaces(workspacesConfig{manager: m, mirrors: mirrors, log: a.log})
	}
	// goneReplica makes the run's lease look like a dead replica's.
	goneReplica := func() {
		ls, err := db.ListLeases(t.Context())
		if err != nil || len(ls) != 1 {
			t.Fatalf("leases: %+v %v", ls, err)
		}
		old := time.Now().Add(-time.Hour)
		ls[0].Host, ls[0].HeartbeatAt, ls[0].LastUsedAt = "gone-host", &old, old
		if err := db.PutLease(t.Context(), &ls[0]); err != nil {
			t.Fatal(err)
		}
	}
	run := func(sb sandbox.Sandbox, script string) string {
		t.Helper()
		var out bytes.Buffer
		res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", script}, Stdout: &out, Stderr: &out})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%s: %v %+v %s", script, err, res, out.String())
		}
		return out.String()
	}

	_, w1 := replica("replica-a")
	sb1, err := w1.Open(t.Context(), p, ex, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(sb1, "echo half done > work.txt")
	// hero stops while the run is in progress.
	if err := w1.Close(t.Context(), ex, sb1); err != nil {
		t.Fatal(err)
	}
	if st := fake.Live()[sb1.ID()]; st != "paused" {
		t.Fatalf("after hero stopped the run's sandbox is %q; want paused", st)
	}
	goneReplica()

	// Another replica: its orphan killer spares the live run's sandbox,
	// and the run continues in it.
	b, w2 := replica("replica-b")
	if n := b.killE2BOrphans(t.Context(), 0); n != 0 {
		t.Fatalf("the orphan killer killed %d", n)
	}
	if st := fake.Live()[sb1.ID()]; st != "paused" {
		t.Fatalf("after the orphan killer the run's sandbox is %q", st)
	}
	sb2, err := w2.Open(t.Context(), p, ex, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sb2.ID() != sb1.ID() {
		t.Fatalf("the continued run got sandbox %s; want its own %s", sb2.ID(), sb1.ID())
	}
	if got := run(sb2, "cat work.txt; git symbolic-ref --short HEAD"); got != "half done\nhero/"+ex.ID+"\n" {
		t.Fatalf("the continued run sees %q", got)
	}
	if stat, err := w2.DiffStat(t.Context(), ex, sb2); err != nil || !strings.Contains(stat, "work.txt") {
		t.Fatalf("the continued run's changes: %q %v", stat, err)
	}
	if n := len(fake.Live()); n != 1 {
		t.Fatalf("%d sandboxes at E2B: %v", n, fake.Live())
	}

	// Replica b dies too, and the run is closed elsewhere: the sandbox goes.
	goneReplica()
	ex.Status = store.StatusInterrupted
	if err := db.UpdateExecution(t.Context(), ex, "status"); err != nil {
		t.Fatal(err)
	}
	c, _ := replica("replica-c")
	if n := c.killE2BOrphans(t.Context(), 0); n != 0 {
		t.Errorf("%d more sandboxes killed as unrecorded", n)
	}
	if _, ok := fake.Live()[sb1.ID()]; ok {
		t.Fatal("the sandbox of a finished run of a gone replica was not killed")
	}
	if ls, _ := db.ListLeases(t.Context()); len(ls) != 0 {
		t.Fatalf("lease records left: %+v", ls)
	}
}
