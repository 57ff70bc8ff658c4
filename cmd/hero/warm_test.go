package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// sh runs a shell script in a workspace and returns its output.
func sh(t *testing.T, sb sandbox.Sandbox, script string) string {
	t.Helper()
	var out bytes.Buffer
	res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", script}, Stdout: &out, Stderr: &out})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%s: %v exit %d: %s", script, err, res.ExitCode, out.String())
	}
	return out.String()
}

// A second run of a project starts from the host's mirror and prepared
// checkout (an overlay: nothing is fetched or written again), and still
// sees a commit pushed since: GitHub's push delivery makes the mirror
// fetch, and the new commit gets its own prepared checkout.
func TestWarmRunSeesCommitPushedSinceTheMirrorWasMade(t *testing.T) {
	t.Parallel()
	git := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "one\n", "dir/b.txt": "b\n"}, func(string) bool { return false })
	git.AnonymousRead()
	w, _ := newTestWorkspaces(t, "", "")
	p := &store.Project{ID: 3, Name: "p", RepoURL: git.RepoURL("o", "r"), DefaultBranch: "main"}

	open := func(id string) (sandbox.Sandbox, *store.Execution) {
		ex := &store.Execution{ID: id}
		sb, err := w.Open(t.Context(), p, ex, nil)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return sb, ex
	}
	sb, ex := open("cold")
	if got := sh(t, sb, "cat a.txt"); got != "one\n" {
		t.Fatalf("cold run sees %q", got)
	}
	// The fill put the workspace on the run's branch, clean, with the
	// default branch, its remote-tracking ref and the run's base all at
	// the commit fetched, and git works on it as on any clone.
	if st := sh(t, sb, "git status --porcelain; git symbolic-ref --short HEAD"); st != "hero/cold\n" {
		t.Errorf("cold workspace: %q", st)
	}
	refs := strings.Fields(sh(t, sb, "git rev-parse HEAD main origin/main refs/hero/base"))
	if len(refs) != 4 || refs[0] != refs[1] || refs[1] != refs[2] || refs[2] != refs[3] {
		t.Errorf("cold workspace refs: %q", refs)
	}
	if got := sh(t, sb, "git -c user.name=t -c user.email=t@x commit -q --allow-empty -m mine && git rev-list --count main..hero/cold"); got != "1\n" {
		t.Errorf("a commit in the run: %q", got)
	}
	if got := sh(t, sb, "git rev-parse main refs/hero/base"); got != refs[0]+"\n"+refs[0]+"\n" {
		t.Errorf("a commit in the run moved main or the base: %q", got)
	}
	if err := w.Close(t.Context(), ex, sb); err != nil {
		t.Fatal(err)
	}

	sb, ex = open("warm")
	// The workspace is a layer over the prepared checkout, clean, on the
	// run's own branch.
	if fs := strings.TrimSpace(sh(t, sb, "stat -f -c %T /repo")); fs != "overlayfs" {
		t.Errorf("warm workspace is on %s, want an overlay", fs)
	}
	if st := sh(t, sb, "git status --porcelain; git symbolic-ref --short HEAD"); st != "hero/warm\n" {
		t.Errorf("warm workspace: %q", st)
	}
	// A directory of the base layer can be renamed with rename(2) itself
	// (redirect_dir; without it overlayfs answers EXDEV, which mv hides
	// by copying but other tools do not).
	if got := sh(t, sb, `perl -e 'rename("dir", "moved") or die "rename: $!\n"' && cat moved/b.txt`); got != "b\n" {
		t.Errorf("rename in the overlay: %q", got)
	}
	if err := w.Close(t.Context(), ex, sb); err != nil {
		t.Fatal(err)
	}
	st := w.mirrors.Stats()
	if st.Hits[mirror.KindCheckout] != 1 || st.Misses[mirror.KindCheckout] != 1 || st.Hits[mirror.KindMirror] != 1 {
		t.Errorf("after a cold and a warm run: hits %v misses %v", st.Hits, st.Misses)
	}

	tip := git.Commit("main", "two", map[string]string{"a.txt": "two\n", "b.txt": "new\n"})
	w.pushed(t.Context(), p, "main")
	sb, ex = open("after-push")
	if got := sh(t, sb, "cat a.txt b.txt; git rev-parse HEAD~0"); got != "two\nnew\n"+tip+"\n" {
		t.Fatalf("after a push the run sees %q, want the new commit %s", got, tip)
	}
	if err := w.Close(t.Context(), ex, sb); err != nil {
		t.Fatal(err)
	}
}

// Two runs of one project at the same time share the prepared checkout
// but never each other's changes.
func TestConcurrentRunsOfOneProjectAreApart(t *testing.T) {
	t.Parallel()
	git := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "base\n"}, func(string) bool { return false })
	git.AnonymousRead()
	w, _ := newTestWorkspaces(t, "", "")
	p := &store.Project{ID: 4, Name: "p", RepoURL: git.RepoURL("o", "r"), DefaultBranch: "main"}

	var wg sync.WaitGroup
	boxes := make([]sandbox.Sandbox, 2)
	errs := make([]error, 2)
	for i := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			boxes[i], errs[i] = w.Open(t.Context(), p, &store.Execution{ID: []string{"one", "two"}[i]}, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	sh(t, boxes[0], "echo mine > a.txt && echo only-one > one.txt && rm -f nothing")
	sh(t, boxes[1], "echo theirs > a.txt && mkdir d && echo only-two > d/two.txt")
	if got := sh(t, boxes[0], "cat a.txt; ls"); got != "mine\na.txt\none.txt\n" {
		t.Errorf("run one sees %q", got)
	}
	if got := sh(t, boxes[1], "cat a.txt; ls"); got != "theirs\na.txt\nd\n" {
		t.Errorf("run two sees %q", got)
	}
	for i, sb := range boxes {
		if err := w.Close(t.Context(), &store.Execution{ID: []string{"one", "two"}[i]}, sb); err != nil {
			t.Fatal(err)
		}
	}
	// A third run starts clean: neither run's files are there.
	ex := &store.Execution{ID: "three"}
	sb, err := w.Open(t.Context(), p, ex, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sh(t, sb, "cat a.txt; ls; git status --porcelain"); got != "base\na.txt\n" {
		t.Errorf("a later run sees %q", got)
	}
	if err := w.Close(t.Context(), ex, sb); err != nil {
		t.Fatal(err)
	}
}

// Deleting a project (settings page, hero project rm, or the sweep for
// deletions made elsewhere) leaves no mirror, run refs, prepared
// checkout or dependency cache of it on the host.
func TestDeletedProjectLeavesNoMirror(t *testing.T) {
	t.Parallel()
	git := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "x\n"}, func(string) bool { return false })
	git.AnonymousRead()
	w, db := newTestWorkspaces(t, "", "")
	a := &app{db: db, mirrors: w.mirrors, log: w.log}
	var projects []*store.Project
	for _, name := range []string{"gone", "kept"} {
		p := &store.Project{Name: name, RepoURL: git.RepoURL("o", "r"), DefaultBranch: "main"}
		if err := db.CreateProject(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		projects = append(projects, p)
		ex := &store.Execution{ID: "run-" + name}
		sb, err := w.Open(t.Context(), p, ex, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(t.Context(), ex, sb); err != nil {
			t.Fatal(err)
		}
	}
	files := func(id int64) []string {
		var out []string
		ents, _ := os.ReadDir(w.mirrors.Root())
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), strconv.FormatInt(id, 10)+".") {
				out = append(out, e.Name())
			}
		}
		return out
	}
	if got := files(projects[0].ID); len(got) != 3 {
		t.Fatalf("before deletion the project has %v", got)
	}
	if err := db.DeleteProject(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	a.sweepMirrors(context.Background())
	if got := files(projects[0].ID); len(got) != 0 {
		t.Fatalf("a deleted project left %v behind", got)
	}
	if got := files(projects[1].ID); len(got) != 3 {
		t.Fatalf("the other project lost its mirror: %v", got)
	}
	if st := w.mirrors.Stats(); st.Projects != 1 {
		t.Fatalf("the cache still accounts for %d projects", st.Projects)
	}
}

// /metrics shows the caches' hits, misses and bytes by kind.
func TestCacheMetrics(t *testing.T) {
	t.Parallel()
	git := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "x\n"}, func(string) bool { return false })
	git.AnonymousRead()
	w, _ := newTestWorkspaces(t, "", "")
	p := &store.Project{ID: 8, Name: "p", RepoURL: git.RepoURL("o", "r"), DefaultBranch: "main"}
	for _, id := range []string{"m1", "m2"} {
		ex := &store.Execution{ID: id}
		sb, err := w.Open(t.Context(), p, ex, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(t.Context(), ex, sb); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(cacheCollector{w.mirrors})
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`hero_cache_hits_total{kind="checkout"} 1`,
		`hero_cache_misses_total{kind="checkout"} 1`,
		`hero_cache_hits_total{kind="mirror"} 1`,
		`hero_cache_misses_total{kind="mirror"} 1`,
		`hero_cache_evictions_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	for _, kind := range []string{"mirror", "checkout"} {
		if strings.Contains(body, `hero_cache_bytes{kind="`+kind+`"} 0`) || !strings.Contains(body, `hero_cache_bytes{kind="`+kind+`"}`) {
			t.Errorf("no bytes for %s:\n%s", kind, body)
		}
	}
}

// hero run starts the fetch before the engine has recorded the run; the
// run's Open takes that fetch over (no second look at the remote or the
// mirror) and its workspace is at the commit fetched.
func TestOpenTakesOverTheEarlyFetch(t *testing.T) {
	t.Parallel()
	git := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "early\n"}, func(string) bool { return false })
	git.AnonymousRead()
	w, _ := newTestWorkspaces(t, "", "")
	p := &store.Project{ID: 5, Name: "p", RepoURL: git.RepoURL("o", "r"), DefaultBranch: "main"}

	stop := w.warmUp(t.Context(), p)
	defer stop()
	ex := &store.Execution{ID: "early"}
	sb, err := w.Open(t.Context(), p, ex, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sh(t, sb, "cat a.txt; git status --porcelain; git symbolic-ref --short HEAD"); got != "early\nhero/early\n" {
		t.Errorf("workspace: %q", got)
	}
	if err := w.Close(t.Context(), ex, sb); err != nil {
		t.Fatal(err)
	}
	// One fetch, and no second freshness check by Open.
	if st := w.mirrors.Stats(); st.Misses[mirror.KindMirror] != 1 || st.Hits[mirror.KindMirror] != 0 {
		t.Errorf("mirror hits %v misses %v, want the one fetch warmUp started", st.Hits, st.Misses)
	}
	w.mu.Lock()
	left := len(w.early)
	w.mu.Unlock()
	if left != 0 {
		t.Errorf("%d early fetches left behind", left)
	}
	// A run that never opens (its start failed): stop ends the fetch and
	// forgets it.
	w.warmUp(t.Context(), p)()
	w.mu.Lock()
	left = len(w.early)
	w.mu.Unlock()
	if left != 0 {
		t.Errorf("stop left %d early fetches", left)
	}
}
