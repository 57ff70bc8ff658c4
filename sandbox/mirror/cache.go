package mirror

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What a project keeps besides its mirror, under <root>/<id>.cache:
//
//	checkouts/<commit>/   a prepared checkout of one commit: the read-only
//	                      base layer of every workspace that starts there
//	                      (sandbox.Hydrate mounts it under a per-run
//	                      overlay, or copies it where it cannot)
//	deps/<key>.tar        dependency installs, keyed by installer and
//	                      lockfile hash (sandbox.Hydrate restores them)
//	index.json            sizes, last use and the remote URL: budgets and
//	                      LRU order survive restarts
//
// Measured here on a generated 10,000-file repository (68 MB tree, 50 MB
// pack), per workspace: `git clone --no-local` from the mirror into the
// sandbox's volume 5.8 s, copying a prepared checkout 1.5 s, an overlay
// mount of it 0.01 s. Preparing the checkout itself (hard-linked objects,
// one checkout) is paid once per commit.

// Kinds of cache entries, as /metrics names them.
const (
	KindMirror   = "mirror"
	KindCheckout = "checkout"
	KindDeps     = "deps"
	// KindSnapshot counts E2B warm starts (a snapshot reused or not); the
	// snapshots live at E2B and take no space here.
	KindSnapshot = "snapshot"
)

// Defaults of the budgets and the freshness window.
const (
	DefaultProjectBudget = 10 << 30
	DefaultTotalBudget   = 50 << 30
	DefaultFreshness     = 15 * time.Second
)

// Option configures Mirrors.
type Option func(*Mirrors) error

// WithBudget caps the bytes one project's mirror and caches may take, and
// all projects' together; the least recently used entries go first.
func WithBudget(perProject, total int64) Option {
	return func(m *Mirrors) error {
		if perProject <= 0 || total <= 0 {
			return errors.New("cache budgets must be positive")
		}
		m.perProject, m.total = perProject, total
		return nil
	}
}

// WithFreshness sets how long after a fetch a run starts from the mirror
// without asking the remote again (0: always ask).
func WithFreshness(d time.Duration) Option {
	return func(m *Mirrors) error {
		if d < 0 {
			return errors.New("the freshness window must not be negative")
		}
		m.fresh = d
		return nil
	}
}

// WithSnapshotDeleter deletes a project's E2B snapshots (recorded with
// Repo.SetSnapshot) when the project is removed.
func WithSnapshotDeleter(del func(ctx context.Context, id string) error) Option {
	return func(m *Mirrors) error { m.deleteSnapshot = del; return nil }
}

// WithClock replaces the clock (tests).
func WithClock(now func() time.Time) Option {
	return func(m *Mirrors) error { m.now = now; return nil }
}

// entry is one accounted item: a project's mirror, a prepared checkout or
// a dependency archive.
type entry struct {
	Kind  string    `json:"kind"`
	Key   string    `json:"key,omitempty"`
	Bytes int64     `json:"bytes"`
	Used  time.Time `json:"used"`

	project int64
	pins    int
	doomed  bool // evicted or invalidated while pinned: deleted at the last release
}

// projectState is what Mirrors knows about one project's files.
type projectState struct {
	URL     string            `json:"url,omitempty"`
	Entries map[string]*entry `json:"entries"`

	// Fetched is kept in the index so that the freshness window holds
	// across processes too: each `hero run` is a new one.
	Fetched map[string]fetchState `json:"fetched,omitempty"` // by requested branch ("" = default)
}

type fetchState struct {
	Branch string    `json:"branch"`
	SHA    string    `json:"sha"`
	At     time.Time `json:"at"`
	// loaded: read from the index, written by another process, whose
	// mirror may have moved since.
	loaded bool
}

// Stats are the cache counters and sizes for /metrics.
type Stats struct {
	Hits, Misses map[string]uint64 // by kind; for KindMirror, a hit is a run that needed no fetch
	Bytes        map[string]int64  // by kind
	Evictions    uint64
	Projects     int
}

func entryKey(kind, key string) string { return kind + "/" + key }

func (m *Mirrors) projectDir(id int64) string {
	return filepath.Join(m.root, strconv.FormatInt(id, 10)+".cache")
}

func (m *Mirrors) repoDir(id int64) string {
	return filepath.Join(m.root, strconv.FormatInt(id, 10)+".git")
}

func (m *Mirrors) runsDir(id int64) string {
	return filepath.Join(m.root, strconv.FormatInt(id, 10)+".runs.git")
}

var projectFileRe = regexp.MustCompile(`^([1-9][0-9]{0,18})\.(git|runs\.git|cache)$`)

// load reads every project's index at start; a mirror without one (made
// by an older hero) is measured.
func (m *Mirrors) load() error {
	ents, err := os.ReadDir(m.root)
	if err != nil {
		return fmt.Errorf("mirrors: %w", err)
	}
	for _, e := range ents {
		sm := projectFileRe.FindStringSubmatch(e.Name())
		if sm == nil {
			continue
		}
		id, _ := strconv.ParseInt(sm[1], 10, 64)
		if m.projects[id] != nil {
			continue
		}
		ps := &projectState{Entries: map[string]*entry{}, Fetched: map[string]fetchState{}}
		if data, err := os.ReadFile(filepath.Join(m.projectDir(id), "index.json")); err == nil {
			if err := json.Unmarshal(data, ps); err != nil || ps.Entries == nil {
				m.log.Warn("cache index unreadable; re-measuring", "project", id, "err", err)
				ps.Entries = map[string]*entry{}
			}
		}
		if ps.Fetched == nil {
			ps.Fetched = map[string]fetchState{}
		}
		for b, fs := range ps.Fetched {
			fs.loaded = true
			ps.Fetched[b] = fs
		}
		// Entries whose files are gone are forgotten; files without an
		// entry are measured (or removed, for half-made ones).
		for k, en := range ps.Entries {
			en.project = id
			if _, err := os.Stat(m.entryPath(id, en.Kind, en.Key)); err != nil {
				delete(ps.Entries, k)
			}
		}
		m.adopt(id, ps, KindMirror, "", m.repoDir(id))
		for _, kind := range []string{KindCheckout, KindDeps} {
			dir := filepath.Join(m.projectDir(id), kind+"s")
			if kind == KindDeps {
				dir = filepath.Join(m.projectDir(id), "deps")
			}
			list, _ := os.ReadDir(dir)
			for _, f := range list {
				name := f.Name()
				if strings.HasSuffix(name, ".lock") {
					continue
				}
				if strings.HasPrefix(name, ".tmp-") {
					// Left by a crash; a recent one may be another
					// process's work in progress.
					if info, err := f.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
						_ = removeAll(filepath.Join(dir, name))
					}
					continue
				}
				m.adopt(id, ps, kind, strings.TrimSuffix(name, ".tar"), filepath.Join(dir, name))
			}
		}
		m.projects[id] = ps
	}
	return nil
}

func (m *Mirrors) adopt(id int64, ps *projectState, kind, key, path string) {
	if _, err := os.Stat(path); err != nil {
		return
	}
	if _, ok := ps.Entries[entryKey(kind, key)]; ok {
		return
	}
	ps.Entries[entryKey(kind, key)] = &entry{Kind: kind, Key: key, Bytes: diskBytes(path), Used: m.now(), project: id}
}

// entryPath is where an entry's files are.
func (m *Mirrors) entryPath(id int64, kind, key string) string {
	switch kind {
	case KindMirror:
		return m.repoDir(id)
	case KindCheckout:
		return filepath.Join(m.projectDir(id), "checkouts", key)
	default:
		return filepath.Join(m.projectDir(id), "deps", key+".tar")
	}
}

// state returns project id's state, creating it. Callers hold m.mu.
func (m *Mirrors) stateLocked(id int64) *projectState {
	ps := m.projects[id]
	if ps == nil {
		ps = &projectState{Entries: map[string]*entry{}, Fetched: map[string]fetchState{}}
		m.projects[id] = ps
	}
	return ps
}

// saveLocked writes project id's index. Callers hold m.mu.
func (m *Mirrors) saveLocked(id int64) {
	ps := m.projects[id]
	if ps == nil {
		return
	}
	dir := m.projectDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		m.log.Warn("save cache index", "project", id, "err", err)
		return
	}
	data, _ := json.Marshal(ps)
	tmp := filepath.Join(dir, ".index.json.tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		m.log.Warn("save cache index", "project", id, "err", err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(dir, "index.json")); err != nil {
		m.log.Warn("save cache index", "project", id, "err", err)
	}
}

// record sets an entry's size and last use, pins it when asked, and
// enforces the budgets.
func (m *Mirrors) record(id int64, kind, key string, bytes int64, pin bool) *entry {
	m.mu.Lock()
	ps := m.stateLocked(id)
	en := ps.Entries[entryKey(kind, key)]
	if en == nil {
		en = &entry{Kind: kind, Key: key, project: id}
		ps.Entries[entryKey(kind, key)] = en
	}
	en.Bytes, en.Used = bytes, m.now()
	if pin {
		en.pins++
	}
	doomed, locks := m.enforceLocked(id)
	m.saveLocked(id)
	m.mu.Unlock()
	m.removePaths(doomed)
	unlockAll(locks)
	return en
}

// lookup returns a live entry, pinned and marked used, counting a hit or
// a miss.
func (m *Mirrors) lookup(id int64, kind, key string) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	en := m.stateLocked(id).Entries[entryKey(kind, key)]
	if en == nil || en.doomed {
		m.misses[kind]++
		return nil
	}
	m.hits[kind]++
	en.pins++
	en.Used = m.now()
	return en
}

// release unpins an entry; a doomed one is deleted with its last pin.
func (m *Mirrors) release(en *entry) {
	m.mu.Lock()
	en.pins--
	del := en.doomed && en.pins == 0
	if !del {
		m.saveLocked(en.project)
	}
	m.mu.Unlock()
	if del {
		m.removePaths([]string{m.entryPath(en.project, en.Kind, en.Key)})
	}
}

// enforceLocked evicts least recently used, unpinned entries until
// project id and the total are within budget, and returns the paths to
// delete (after m.mu is released) and the exclusive locks to drop once
// they are gone. A mirror goes only with everything of its project, and
// only when nothing of the project is pinned. A checkout pinned by
// another process (hero run and hero serve on one data directory) holds
// a shared lock on it and is skipped.
func (m *Mirrors) enforceLocked(id int64) ([]string, []*os.File) {
	var doomed []string
	var locks []*os.File
	skip := map[*entry]bool{} // held by another process: not this time
	sum := func(only int64) int64 {
		var n int64
		for pid, ps := range m.projects {
			if only != 0 && pid != only {
				continue
			}
			for _, en := range ps.Entries {
				n += en.Bytes
			}
		}
		return n
	}
	evict := func(only int64) bool {
		var cands []*entry
		for pid, ps := range m.projects {
			if only != 0 && pid != only {
				continue
			}
			for _, en := range ps.Entries {
				if en.pins > 0 || en.doomed || skip[en] {
					continue
				}
				if en.Kind == KindMirror && (only != 0 || m.pinnedLocked(pid) || !m.lockFree(pid)) {
					continue
				}
				cands = append(cands, en)
			}
		}
		if len(cands) == 0 {
			return false
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i].Used.Before(cands[j].Used) })
		en := cands[0]
		var held []*os.File
		if en.Kind == KindMirror {
			ok := true
			for _, other := range m.projects[en.project].Entries {
				if other.Kind != KindCheckout {
					continue
				}
				f := exclusive(m.lockPath(en.project, other.Key))
				if f == nil {
					ok = false
					break
				}
				held = append(held, f)
			}
			if !ok {
				unlockAll(held)
				skip[en] = true
				return true
			}
		} else if en.Kind == KindCheckout {
			f := exclusive(m.lockPath(en.project, en.Key))
			if f == nil {
				skip[en] = true
				return true
			}
			held = append(held, f)
		}
		locks = append(locks, held...)
		m.evictions++
		ps := m.projects[en.project]
		if en.Kind == KindMirror {
			doomed = append(doomed, m.repoDir(en.project), m.runsDir(en.project), m.projectDir(en.project))
			delete(m.projects, en.project)
			m.log.Info("mirror evicted (cache budget)", "project", en.project, "bytes", en.Bytes)
			return true
		}
		delete(ps.Entries, entryKey(en.Kind, en.Key))
		doomed = append(doomed, m.entryPath(en.project, en.Kind, en.Key))
		m.log.Info("cache entry evicted (budget)", "project", en.project, "kind", en.Kind, "key", en.Key, "bytes", en.Bytes)
		return true
	}
	for sum(id) > m.perProject && evict(id) {
	}
	for sum(0) > m.total && evict(0) {
	}
	if sum(id) > m.perProject {
		m.log.Warn("project's cache is over its budget; what is left is in use or the mirror itself", "project", id, "budget", m.perProject)
	}
	return doomed, locks
}

// lockPath is the lock file of a prepared checkout: shared while a
// sandbox uses it, exclusive while it is deleted.
func (m *Mirrors) lockPath(id int64, commit string) string {
	return filepath.Join(m.projectDir(id), "checkouts", commit+".lock")
}

// exclusive takes an exclusive lock on path without waiting; nil when
// someone holds it.
func exclusive(path string) *os.File {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil
	}
	return f
}

// shared takes a shared lock on path, waiting for a deletion in progress.
func shared(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func unlockAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

func (m *Mirrors) pinnedLocked(id int64) bool {
	if ps := m.projects[id]; ps != nil {
		for _, en := range ps.Entries {
			if en.pins > 0 {
				return true
			}
		}
	}
	return false
}

// lockFree reports whether nobody is working on project id's mirror now.
func (m *Mirrors) lockFree(id int64) bool {
	mu := m.locks[id]
	if mu == nil {
		return true
	}
	if !mu.TryLock() {
		return false
	}
	mu.Unlock()
	return true
}

// removePaths deletes evicted files: first renamed into the trash (so a
// new entry of the same name can be made at once), then removed.
func (m *Mirrors) removePaths(paths []string) {
	for _, p := range paths {
		if err := removeAll(p); err != nil {
			m.log.Warn("remove cache files", "path", p, "err", err)
		}
	}
}

// removeAll deletes a tree even where git left read-only directories
// (Go's module cache does too).
func removeAll(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}

// diskBytes is the disk space under path, each inode counted once.
func diskBytes(path string) int64 {
	seen := map[uint64]bool{}
	var n int64
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			if st.Nlink > 1 {
				if seen[st.Ino] {
					return nil
				}
				seen[st.Ino] = true
			}
			n += st.Blocks * 512
			return nil
		}
		n += info.Size()
		return nil
	})
	return n
}

// Remove deletes everything hero keeps for project id: its mirror, run
// refs, prepared checkouts and dependency caches. Checkouts still mounted
// under a running sandbox go when it releases them.
func (m *Mirrors) Remove(ctx context.Context, id int64) error {
	mu := m.lock(id)
	mu.Lock()
	defer mu.Unlock()
	var errs []error
	if m.deleteSnapshot != nil {
		for _, snap := range m.Snapshots(id) {
			if err := m.deleteSnapshot(ctx, snap); err != nil {
				errs = append(errs, fmt.Errorf("delete snapshot %s: %w", snap, err))
			}
		}
	}
	m.mu.Lock()
	var keep []string
	if ps := m.projects[id]; ps != nil {
		for _, en := range ps.Entries {
			if en.pins > 0 {
				en.doomed = true
				keep = append(keep, m.entryPath(id, en.Kind, en.Key))
			}
		}
	}
	delete(m.projects, id)
	m.mu.Unlock()
	for _, p := range []string{m.repoDir(id), m.runsDir(id)} {
		if err := removeAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	// The cache directory goes except what is pinned.
	pdir := m.projectDir(id)
	if len(keep) == 0 {
		if err := removeAll(pdir); err != nil {
			errs = append(errs, err)
		}
	} else {
		_ = filepath.WalkDir(pdir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == pdir {
				return nil
			}
			for _, k := range keep {
				if p == k || strings.HasPrefix(k, p+string(filepath.Separator)) {
					if p == k {
						return fs.SkipDir
					}
					return nil
				}
			}
			_ = removeAll(p)
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		})
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove the mirror of project %d: %w", id, err)
	}
	return nil
}

// Retain removes the mirrors of every project not in ids (deleted
// projects: the settings page, `hero project rm` on another host). It
// returns how many it removed.
func (m *Mirrors) Retain(ctx context.Context, ids []int64) (int, error) {
	keep := map[int64]bool{}
	for _, id := range ids {
		keep[id] = true
	}
	ents, err := os.ReadDir(m.root)
	if err != nil {
		return 0, fmt.Errorf("list mirrors: %w", err)
	}
	gone := map[int64]bool{}
	for _, e := range ents {
		if sm := projectFileRe.FindStringSubmatch(e.Name()); sm != nil {
			id, _ := strconv.ParseInt(sm[1], 10, 64)
			if !keep[id] {
				gone[id] = true
			}
		}
	}
	var errs []error
	for id := range gone {
		if err := m.Remove(ctx, id); err != nil {
			errs = append(errs, err)
		} else {
			m.log.Info("mirror of a deleted project removed", "project", id)
		}
	}
	return len(gone), errors.Join(errs...)
}

// Stats returns hit and miss counters and bytes by kind.
func (m *Mirrors) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Stats{Hits: map[string]uint64{}, Misses: map[string]uint64{}, Bytes: map[string]int64{}, Evictions: m.evictions, Projects: len(m.projects)}
	for _, k := range []string{KindMirror, KindCheckout, KindDeps, KindSnapshot} {
		s.Hits[k], s.Misses[k], s.Bytes[k] = m.hits[k], m.misses[k], 0
	}
	for _, ps := range m.projects {
		for _, en := range ps.Entries {
			s.Bytes[en.Kind] += en.Bytes
		}
	}
	return s
}

// MarkStale makes the next run of project id fetch from the remote even
// within the freshness window (a GitHub push delivery arrived).
func (m *Mirrors) MarkStale(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ps := m.projects[id]; ps != nil {
		ps.Fetched = map[string]fetchState{}
		m.saveLocked(id)
	}
}

// Update is Fetch, skipped when branch was fetched from the same remote
// within the freshness window and the project was not marked stale since.
// fetched says whether the remote was asked.
func (r *Repo) Update(ctx context.Context, remote Remote, branch string) (name, sha string, fetched bool, err error) {
	m := r.m
	m.mu.Lock()
	ps := m.stateLocked(r.id)
	fs, ok := ps.Fetched[branch]
	fresh := ok && ps.URL == remote.URL && m.fresh > 0 && m.now().Sub(fs.At) < m.fresh
	m.mu.Unlock()
	if fresh && fs.loaded {
		// Another process fetched: the mirror's branch is the answer
		// (it may have fetched again since), if it still has it.
		if fresh = checkBranch(fs.Branch) == nil; fresh {
			tip, err := r.revParse(ctx, "refs/heads/"+fs.Branch)
			fs.SHA, fresh = tip, err == nil
		}
	}
	m.mu.Lock()
	if fresh {
		m.hits[KindMirror]++
		m.mu.Unlock()
		return fs.Branch, fs.SHA, false, nil
	}
	m.misses[KindMirror]++
	m.mu.Unlock()
	name, sha, err = r.Fetch(ctx, remote, branch)
	if err != nil {
		return "", "", true, err
	}
	m.mu.Lock()
	if ps := m.projects[r.id]; ps != nil {
		ps.Fetched[branch] = fetchState{Branch: name, SHA: sha, At: m.now()}
		m.saveLocked(r.id)
	}
	m.mu.Unlock()
	return name, sha, true, nil
}

// bindURL makes sure the mirror holds only what was fetched from url: a
// project whose repository URL changed (or a new project given a deleted
// one's id) starts from an empty mirror. Callers hold r.mu.
func (r *Repo) bindURL(ctx context.Context, url string) error {
	m := r.m
	m.mu.Lock()
	ps := m.stateLocked(r.id)
	if ps.URL == url {
		m.mu.Unlock()
		return nil
	}
	first := ps.URL == ""
	ps.URL = url
	m.saveLocked(r.id)
	m.mu.Unlock()
	if first && !r.hasRefs(ctx) {
		return nil
	}
	m.log.Info("repository URL changed: starting a new mirror", "project", r.id)
	m.mu.Lock()
	var doomed []string
	for k, en := range ps.Entries {
		if en.Kind == KindMirror {
			continue
		}
		if en.pins > 0 {
			en.doomed = true
		} else {
			doomed = append(doomed, m.entryPath(r.id, en.Kind, en.Key))
		}
		delete(ps.Entries, k)
	}
	ps.Fetched = map[string]fetchState{}
	m.saveLocked(r.id)
	m.mu.Unlock()
	m.removePaths(doomed)
	for _, d := range []string{r.dir, r.runs} {
		if err := removeAll(d); err != nil {
			return fmt.Errorf("reset the mirror: %w", err)
		}
	}
	return r.init(ctx)
}

// hasRefs reports whether the mirror holds any ref. It reads the files
// of the repository initBare made (loose refs, packed-refs) rather than
// starting git: a project's first run pays for every process.
func (r *Repo) hasRefs(ctx context.Context) bool {
	if _, err := os.Lstat(filepath.Join(r.dir, "packed-refs")); !errors.Is(err, fs.ErrNotExist) {
		return true
	}
	found := false
	err := filepath.WalkDir(filepath.Join(r.dir, "refs"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.IsDir() {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	// Unreadable: count it as holding refs, so it is started afresh.
	return found || err != nil
}

// Checkout is a prepared checkout of one commit, pinned until Release:
// its files must not change while a workspace uses them as its base.
type Checkout struct {
	// Dir holds the commit's tree and a .git whose objects are the
	// mirror's (hard links to its immutable pack files), HEAD detached at
	// the commit, origin the project's URL without credentials. Nothing
	// may write to it.
	Dir  string
	m    *Mirrors
	en   *entry
	lock *os.File // shared: other processes do not evict it either
	rel  bool
}

// Release unpins the checkout. It is idempotent.
func (c *Checkout) Release() {
	if c == nil || c.rel {
		return
	}
	c.rel = true
	if c.lock != nil {
		c.lock.Close()
	}
	c.m.release(c.en)
}

// pinned returns the checkout with its shared lock, or nil when another
// process deleted it meanwhile (then the pin is dropped).
func (r *Repo) pinned(en *entry, commit string) *Checkout {
	dir := r.m.entryPath(r.id, KindCheckout, commit)
	f, err := shared(r.m.lockPath(r.id, commit))
	if err != nil {
		r.m.release(en)
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, ".git", "HEAD")); err != nil {
		f.Close()
		r.m.mu.Lock()
		if ps := r.m.projects[r.id]; ps != nil && ps.Entries[entryKey(KindCheckout, commit)] == en {
			delete(ps.Entries, entryKey(KindCheckout, commit))
		}
		en.pins--
		r.m.mu.Unlock()
		return nil
	}
	return &Checkout{Dir: dir, m: r.m, en: en, lock: f}
}

var checkoutRe = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// Checkout returns the prepared checkout of commit (which the mirror
// must hold), making it on first use; originURL is what its origin
// remote says.
func (r *Repo) Checkout(ctx context.Context, commit, originURL string) (*Checkout, error) {
	if !checkoutRe.MatchString(commit) {
		return nil, fmt.Errorf("checkout: %q is not a commit id", commit)
	}
	if strings.HasPrefix(originURL, "-") || strings.ContainsAny(originURL, "\x00\n") {
		return nil, errors.New("checkout: invalid origin URL")
	}
	if en := r.m.lookup(r.id, KindCheckout, commit); en != nil {
		if co := r.pinned(en, commit); co != nil {
			return co, nil
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Another run may have made it while this one waited.
	r.m.mu.Lock()
	if en := r.m.stateLocked(r.id).Entries[entryKey(KindCheckout, commit)]; en != nil && !en.doomed {
		en.pins++
		en.Used = r.m.now()
		r.m.mu.Unlock()
		if co := r.pinned(en, commit); co != nil {
			return co, nil
		}
	} else {
		r.m.mu.Unlock()
	}
	if _, err := r.revParse(ctx, commit); err != nil {
		return nil, fmt.Errorf("checkout %.12s: the mirror does not have it: %w", commit, err)
	}
	final := r.m.entryPath(r.id, KindCheckout, commit)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return nil, fmt.Errorf("checkout: %w", err)
	}
	// Made by another process on this data directory (complete: it was
	// renamed into place): adopt it.
	if _, err := os.Stat(filepath.Join(final, ".git", "HEAD")); err == nil {
		en := r.m.record(r.id, KindCheckout, commit, diskBytes(final), true)
		if co := r.pinned(en, commit); co != nil {
			return co, nil
		}
	}
	_ = removeAll(final) // half-deleted
	tmp := filepath.Join(filepath.Dir(final), ".tmp-"+randomHex())
	if err := r.prepare(ctx, tmp, commit, originURL); err != nil {
		_ = removeAll(tmp)
		return nil, fmt.Errorf("prepare the checkout of %.12s: %w", commit, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = removeAll(tmp)
		return nil, fmt.Errorf("checkout: %w", err)
	}
	// Readable by the sandbox's users, writable by none of them.
	_ = os.Chmod(filepath.Dir(final), 0o711)
	_ = os.Chmod(filepath.Dir(filepath.Dir(final)), 0o711)
	en := r.m.record(r.id, KindCheckout, commit, diskBytes(final), true)
	if co := r.pinned(en, commit); co != nil {
		return co, nil
	}
	return nil, fmt.Errorf("checkout %.12s: deleted as soon as it was made (cache budget too small?)", commit)
}

// prepare makes dir a checkout of commit whose objects are hard links to
// the mirror's (pack files never change once written, and nothing writes
// to a prepared checkout, so sharing them is safe). The repository is
// laid out here rather than by `git clone`: two git processes in all.
func (r *Repo) prepare(ctx context.Context, dir, commit, originURL string) error {
	m := r.m
	gitDir := filepath.Join(dir, ".git")
	for _, d := range []string{"refs/heads", "refs/tags", "objects"} {
		if err := os.MkdirAll(filepath.Join(gitDir, d), 0o755); err != nil {
			return err
		}
	}
	src := filepath.Join(r.dir, "objects")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." || rel == filepath.Join("info", "alternates") {
			return nil
		}
		target := filepath.Join(gitDir, "objects", rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return os.Link(p, target)
	})
	if err != nil {
		return fmt.Errorf("link the mirror's objects: %w", err)
	}
	config := "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n" +
		"[remote \"origin\"]\n\turl = " + gitConfigValue(originURL) + "\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
	for name, body := range map[string]string{"HEAD": commit + "\n", "config": config} {
		if err := os.WriteFile(filepath.Join(gitDir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	if _, err := m.worktree(ctx, dir, "reset", "-q", "--hard", commit); err != nil {
		return err
	}
	// Files written in the same tick as the index are "racily clean":
	// every git status in every workspace would read them again (0.35 s
	// on 10,000 files). One refresh here, after the tick, re-reads only
	// those and writes an index newer than all of them.
	if _, err := m.worktree(ctx, dir, "update-index", "-q", "--refresh"); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// gitConfigValue quotes a value for a git config file.
func gitConfigValue(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// worktree runs git in a work tree hero made (a prepared checkout).
func (m *Mirrors) worktree(ctx context.Context, dir string, args ...string) (string, error) {
	full := append([]string{"--work-tree=" + dir}, args...)
	return m.run(ctx, filepath.Join(dir, ".git"), opts{}, full...)
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// depsKeyRe is what a dependency cache key may look like.
var depsKeyRe = regexp.MustCompile(`^[a-z0-9]{1,16}-[0-9a-f]{64}$`)

// ErrNoDeps is returned by OpenDeps on a miss.
var ErrNoDeps = fmt.Errorf("no cached dependencies for this lockfile: %w", fs.ErrNotExist)

// OpenDeps opens the dependency archive stored under key (ErrNoDeps on a
// miss). The caller closes it.
func (r *Repo) OpenDeps(ctx context.Context, key string) (io.ReadCloser, error) {
	if !depsKeyRe.MatchString(key) {
		return nil, fmt.Errorf("dependency cache: invalid key %q", key)
	}
	en := r.m.lookup(r.id, KindDeps, key)
	if en == nil {
		return nil, ErrNoDeps
	}
	f, err := os.Open(r.m.entryPath(r.id, KindDeps, key))
	if err != nil {
		r.m.release(en)
		return nil, fmt.Errorf("dependency cache: %w", err)
	}
	return &pinnedFile{File: f, release: func() { r.m.release(en) }}, nil
}

type pinnedFile struct {
	*os.File
	release func()
	done    bool
}

func (p *pinnedFile) Close() error {
	err := p.File.Close()
	if !p.done {
		p.done = true
		p.release()
	}
	return err
}

// SaveDeps stores the archive write produces under key, replacing what
// was there; a failed write stores nothing.
func (r *Repo) SaveDeps(ctx context.Context, key string, write func(io.Writer) error) error {
	if !depsKeyRe.MatchString(key) {
		return fmt.Errorf("dependency cache: invalid key %q", key)
	}
	final := r.m.entryPath(r.id, KindDeps, key)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return fmt.Errorf("dependency cache: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(final), ".tmp-*")
	if err != nil {
		return fmt.Errorf("dependency cache: %w", err)
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("dependency cache: %w", err)
	}
	// The old archive stays readable by whoever has it open.
	if err := os.Rename(f.Name(), final); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("dependency cache: %w", err)
	}
	r.m.record(r.id, KindDeps, key, diskBytes(final), false)
	return nil
}

// Prepared is Checkout in the form sandbox.Hydrate takes
// (sandbox.PreparedSource).
func (r *Repo) Prepared(ctx context.Context, commit, originURL string) (string, func(), error) {
	co, err := r.Checkout(ctx, commit, originURL)
	if err != nil {
		return "", nil, err
	}
	return co.Dir, co.Release, nil
}

// Root is the mirrors directory.
func (m *Mirrors) Root() string { return m.root }

// KeyFiles hashes what the files at paths are in commit (their blob ids;
// absent ones count as absent): the part of a cache key that says "same
// lockfiles". It runs one git process on the mirror.
func (r *Repo) KeyFiles(ctx context.Context, commit string, paths []string) (string, error) {
	if !checkoutRe.MatchString(commit) {
		return "", fmt.Errorf("key files: %q is not a commit id", commit)
	}
	args := append([]string{"ls-tree", "--full-tree", commit, "--"}, paths...)
	out, err := r.m.run(ctx, r.dir, opts{}, args...)
	if err != nil {
		return "", fmt.Errorf("read the lockfiles of %.12s: %w", commit, err)
	}
	sum := sha256.Sum256([]byte(out))
	return hex.EncodeToString(sum[:]), nil
}

// snapshotsKept is how many E2B snapshots a project keeps.
const snapshotsKept = 3

// snapshotFile is where a project's E2B snapshots are listed.
func (m *Mirrors) snapshotFile(id int64) string {
	return filepath.Join(m.projectDir(id), "snapshots.json")
}

type snapshotEntry struct {
	Key  string    `json:"key"`
	ID   string    `json:"id"`
	Used time.Time `json:"used"`
}

func (m *Mirrors) readSnapshots(id int64) []snapshotEntry {
	var list []snapshotEntry
	if data, err := os.ReadFile(m.snapshotFile(id)); err == nil {
		_ = json.Unmarshal(data, &list)
	}
	return list
}

func (m *Mirrors) writeSnapshots(id int64, list []snapshotEntry) error {
	if err := os.MkdirAll(m.projectDir(id), 0o700); err != nil {
		return err
	}
	data, _ := json.Marshal(list)
	tmp := m.snapshotFile(id) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.snapshotFile(id))
}

// Snapshot returns the E2B snapshot recorded under key, counting a hit
// or a miss (kind "snapshot" on /metrics).
func (r *Repo) Snapshot(key string) (string, bool) {
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.readSnapshots(r.id)
	for i := range list {
		if list[i].Key == key {
			list[i].Used = m.now()
			_ = m.writeSnapshots(r.id, list)
			m.hits[KindSnapshot]++
			return list[i].ID, true
		}
	}
	m.misses[KindSnapshot]++
	return "", false
}

// SetSnapshot records snapshot id under key and returns the ids that
// fell out (least recently used beyond the last few), for the caller to
// delete at E2B.
func (r *Repo) SetSnapshot(key, id string) ([]string, error) {
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.readSnapshots(r.id)
	kept := list[:0]
	var gone []string
	for _, e := range list {
		if e.Key == key {
			gone = append(gone, e.ID)
			continue
		}
		kept = append(kept, e)
	}
	kept = append(kept, snapshotEntry{Key: key, ID: id, Used: m.now()})
	sort.Slice(kept, func(i, j int) bool { return kept[i].Used.After(kept[j].Used) })
	for len(kept) > snapshotsKept {
		gone = append(gone, kept[len(kept)-1].ID)
		kept = kept[:len(kept)-1]
	}
	if err := m.writeSnapshots(r.id, kept); err != nil {
		return nil, fmt.Errorf("record the snapshot: %w", err)
	}
	return gone, nil
}

// Snapshots lists every snapshot recorded for project id (to delete at
// E2B with the project).
func (m *Mirrors) Snapshots(id int64) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, e := range m.readSnapshots(id) {
		ids = append(ids, e.ID)
	}
	return ids
}
