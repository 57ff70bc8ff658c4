package mirror_test

import (
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox/mirror"
)

// tick is a clock that moves a second per reading, so that every use has
// its own time.
type tick struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tick) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// commits adds n commits of one 256 KB incompressible file each to the
// served repository and returns them, oldest first.
func commits(t *testing.T, s *server, n int) []string {
	t.Helper()
	work := t.TempDir()
	git(t, "", "clone", "-q", s.bare, work)
	var out []string
	for i := range n {
		buf := make([]byte, 256<<10)
		rand.Read(buf)
		if err := os.WriteFile(filepath.Join(work, "blob.bin"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
		git(t, work, "add", "-A")
		git(t, work, "commit", "-qm", "c"+string(rune('0'+i)))
		git(t, work, "push", "-q", "origin", "HEAD:main")
		out = append(out, git(t, work, "rev-parse", "HEAD"))
	}
	return out
}

// Prepared checkouts and dependency caches stay within the project's
// budget by dropping the least recently used; the order and sizes
// survive a restart; a pinned checkout is never dropped.
func TestBudgetEvictsLeastRecentlyUsedAcrossRestarts(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	cs := commits(t, srv, 3)
	root := filepath.Join(t.TempDir(), "mirrors")
	clk := &tick{t: time.Unix(1_700_000_000, 0)}
	m, err := mirror.New(root, nil, mirror.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := m.Repo(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	remote := mirror.Remote{URL: srv.URL + "/r.git"}
	if _, _, err := repo.Fetch(t.Context(), remote, "main"); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, c := range cs {
		co, err := repo.Checkout(t.Context(), c, "https://example.com/r.git")
		if err != nil {
			t.Fatal(err)
		}
		dirs[c] = co.Dir
		co.Release()
	}
	st := m.Stats()
	if st.Misses[mirror.KindCheckout] != 3 || st.Bytes[mirror.KindCheckout] < 3*256<<10 {
		t.Fatalf("stats after three checkouts: %+v", st)
	}
	// Room for the mirror and about two checkouts.
	budget := st.Bytes[mirror.KindMirror] + st.Bytes[mirror.KindCheckout]*2/3 + 64<<10

	// A restart with that budget: nothing is lost by opening.
	m2, err := mirror.New(root, nil, mirror.WithClock(clk.Now), mirror.WithBudget(budget, 1<<40))
	if err != nil {
		t.Fatal(err)
	}
	if got := m2.Stats().Bytes; got[mirror.KindCheckout] != st.Bytes[mirror.KindCheckout] {
		t.Fatalf("sizes after a restart: %v, before %v", got, st.Bytes)
	}
	repo2, err := m2.Repo(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	// Using the oldest makes the second the least recently used.
	co, err := repo2.Checkout(t.Context(), cs[0], "https://example.com/r.git")
	if err != nil {
		t.Fatal(err)
	}
	if m2.Stats().Hits[mirror.KindCheckout] != 1 {
		t.Fatalf("a prepared checkout was not reused after a restart: %+v", m2.Stats())
	}
	// A new entry pushes the project over its budget.
	if err := repo2.SaveDeps(t.Context(), "npm-"+string(make64('a')), func(w io.Writer) error {
		_, err := w.Write(make([]byte, 32<<10))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirs[cs[1]]); !os.IsNotExist(err) {
		t.Fatalf("the least recently used checkout is still there: %v", err)
	}
	for _, c := range []string{cs[0], cs[2]} {
		if _, err := os.Stat(dirs[c]); err != nil {
			t.Fatalf("checkout %.7s was evicted: %v", c, err)
		}
	}
	if m2.Stats().Evictions != 1 {
		t.Fatalf("evictions %d", m2.Stats().Evictions)
	}

	// A tiny total budget, in another Mirrors on the same directory (as
	// hero run beside hero serve): everything unpinned goes; the checkout
	// pinned here and the one pinned by the other instance (co, through
	// its shared lock) stay until released.
	m3, err := mirror.New(root, nil, mirror.WithClock(clk.Now), mirror.WithBudget(1<<20, 1))
	if err != nil {
		t.Fatal(err)
	}
	repo3, _ := m3.Repo(t.Context(), 5)
	pinned, err := repo3.Checkout(t.Context(), cs[2], "https://example.com/r.git")
	if err != nil {
		t.Fatal(err)
	}
	save := func(key string) {
		t.Helper()
		if err := repo3.SaveDeps(t.Context(), key, func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }); err != nil {
			t.Fatal(err)
		}
	}
	save("go-" + string(make64('b')))
	for _, dir := range []string{pinned.Dir, co.Dir} {
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("a pinned checkout was evicted: %v", err)
		}
	}
	if npm, _ := filepath.Glob(filepath.Join(root, "5.cache", "deps", "npm-*")); len(npm) != 0 {
		t.Fatalf("unpinned dependency caches survived a total budget of one byte: %v", npm)
	}
	pinned.Release()
	co.Release()
	save("go-" + string(make64('c')))
	for _, dir := range []string{pinned.Dir, co.Dir} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("a released checkout survived a total budget of one byte: %v", err)
		}
	}
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}

// The freshness window holds across processes (each `hero run` is one):
// a new Mirrors on the same directory within the window asks the remote
// nothing and answers with the mirror's branch; a push delivery heard by
// any process, or the window passing, makes the next one fetch.
func TestFreshnessAcrossProcesses(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	root := filepath.Join(t.TempDir(), "mirrors")
	clk := &tick{t: time.Unix(1_700_000_000, 0)}
	process := func() *mirror.Mirrors {
		m, err := mirror.New(root, nil, mirror.WithClock(clk.Now), mirror.WithFreshness(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	remote := mirror.Remote{URL: srv.URL + "/r.git"}
	update := func(m *mirror.Mirrors) (string, bool) {
		t.Helper()
		r, err := m.Repo(t.Context(), 5)
		if err != nil {
			t.Fatal(err)
		}
		_, sha, fetched, err := r.Update(t.Context(), remote, "main")
		if err != nil {
			t.Fatal(err)
		}
		return sha, fetched
	}
	first, fetched := update(process())
	if !fetched {
		t.Fatal("an empty mirror was not fetched")
	}
	asked := len(srv.headers())
	sha, fetched := update(process())
	if fetched || sha != first || len(srv.headers()) != asked {
		t.Fatalf("a second process within the window: fetched %v, %s (want %s), %d requests (had %d)", fetched, sha, first, len(srv.headers()), asked)
	}
	// A push arrives; the process that hears it marks the mirror stale.
	next := commits(t, srv, 1)[0]
	process().MarkStale(5)
	if sha, fetched := update(process()); !fetched || sha != next {
		t.Fatalf("after a push delivery: fetched %v, %s; want %s", fetched, sha, next)
	}
	// The window passes.
	if _, fetched := update(process()); fetched {
		t.Fatal("fetched again within the window")
	}
	for range 70 {
		clk.Now()
	}
	if _, fetched := update(process()); !fetched {
		t.Fatal("not fetched after the window")
	}
}
