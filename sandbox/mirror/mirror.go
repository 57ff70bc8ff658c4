// Package mirror keeps hero's own copy of each project's repository on the
// host: a bare repository per project under HERO_DATA_DIR/mirrors. Every
// git operation that crosses the sandbox boundary happens here, with git
// configured by hero alone:
//
//   - clone and fetch from the project's remote (the sandbox never needs
//     network or a token to get the code): Repo.Fetch, then
//     Repo.CloneInto or Repo.WriteBundle fill a workspace;
//   - push: the run's commits come out of the workspace as a bundle
//     (Repo.FetchBundle), and Repo.Push sends them from here.
//
// git runs with a fixed environment (never the server's), global and
// system configuration off, HOME an empty directory, no hooks, no
// credential helpers, a protocol allow-list (https, http, ssh, git; file
// only for hero's own local transfers) and, for a request that carries a
// credential, the header scoped to the remote's scheme, host and port with
// redirects off. Nothing a workspace contains is ever read by host git.
//
// Layout: <root>/<project id>.git holds only what was fetched from the
// project's remote (refs/heads/* as last fetched); <root>/<project
// id>.runs.git, which borrows its objects, holds refs/hero/runs/<run id>:
// commits brought back from runs, which later runs' workspaces (made from
// the first) never see. <root>/<project id>.cache holds prepared
// checkouts and dependency caches (cache.go), under size budgets.
package mirror

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mirrors is the directory holding every project's mirror.
type Mirrors struct {
	root string
	home string // an empty HOME for git
	git  string // absolute path of the git binary
	log  *slog.Logger

	perProject, total int64
	fresh             time.Duration
	now               func() time.Time
	deleteSnapshot    func(ctx context.Context, id string) error

	mu        sync.Mutex // guards the fields below
	locks     map[int64]*sync.Mutex
	projects  map[int64]*projectState
	hits      map[string]uint64
	misses    map[string]uint64
	evictions uint64
}

// New opens (creating it 0700) the mirrors directory root, typically
// HERO_DATA_DIR/mirrors, and reads what earlier runs left in it. It fails
// when git is not installed.
func New(root string, log *slog.Logger, options ...Option) (*Mirrors, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("mirrors: git is not installed (apt-get install git): %w", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("mirrors: %w", err)
	}
	home := filepath.Join(abs, ".home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("mirrors: create %s: %w", home, err)
	}
	m := &Mirrors{root: abs, home: home, git: bin, log: log,
		perProject: DefaultProjectBudget, total: DefaultTotalBudget, fresh: DefaultFreshness, now: time.Now,
		locks: map[int64]*sync.Mutex{}, projects: map[int64]*projectState{}, hits: map[string]uint64{}, misses: map[string]uint64{}}
	for _, o := range options {
		if err := o(m); err != nil {
			return nil, fmt.Errorf("mirrors: %w", err)
		}
	}
	if err := m.load(); err != nil {
		return nil, err
	}
	return m, nil
}

// lock is project id's lock: one git operation at a time per project.
func (m *Mirrors) lock(id int64) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	mu := m.locks[id]
	if mu == nil {
		mu = &sync.Mutex{}
		m.locks[id] = mu
	}
	return mu
}

// Repo is one project's mirror. Its methods serialise on the project, so
// concurrent runs of one project never race on its refs.
type Repo struct {
	m    *Mirrors
	id   int64
	dir  string // the remote's objects and branches
	runs string // run refs; borrows dir's objects
	mu   *sync.Mutex
}

// Repo opens the mirror of project id, creating an empty bare repository
// on first use.
func (m *Mirrors) Repo(ctx context.Context, projectID int64) (*Repo, error) {
	if projectID <= 0 {
		return nil, fmt.Errorf("mirror: invalid project id %d", projectID)
	}
	r := &Repo{m: m, id: projectID, dir: m.repoDir(projectID), runs: m.runsDir(projectID), mu: m.lock(projectID)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.init(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// init creates the mirror's repositories where they are missing.
func (r *Repo) init(ctx context.Context) error {
	for _, dir := range []string{r.dir, r.runs} {
		if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
			continue
		}
		alt := ""
		if dir == r.runs {
			alt = filepath.Join(r.dir, "objects")
		}
		if err := initBare(dir, alt); err != nil {
			return fmt.Errorf("create mirror %s: %w", dir, err)
		}
	}
	return nil
}

// mirrorConfig is the whole configuration of a mirror: no hooks, no
// detached gc, no submodules, and objects never pruned (run refs in the
// other repository may need them; the budget removes whole entries).
const mirrorConfig = `[core]
	repositoryformatversion = 0
	filemode = true
	bare = true
	hooksPath = /dev/null
[gc]
	autoDetach = false
	pruneExpire = never
[fetch]
	recurseSubmodules = false
`

// initBare writes an empty bare repository the way `git init --bare
// --template=` would, with hero's configuration, without starting git
// (a first run of a small project pays for every process). alternates,
// when set, is an objects directory it borrows from.
func initBare(dir, alternates string) error {
	tmp := dir + ".tmp-" + randomHex()
	for _, d := range []string{"objects/info", "objects/pack", "refs/heads", "refs/tags"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o700); err != nil {
			return err
		}
	}
	files := map[string]string{"HEAD": "ref: refs/heads/main\n", "config": mirrorConfig}
	if alternates != "" {
		files["objects/info/alternates"] = alternates + "\n"
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(body), 0o600); err != nil {
			_ = os.RemoveAll(tmp)
			return err
		}
	}
	_ = os.RemoveAll(dir) // a half-made one without HEAD
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	return nil
}

// Dir is the mirror's bare repository on this host.
func (r *Repo) Dir() string { return r.dir }

// Remote is where a mirror fetches from or pushes to.
type Remote struct {
	// URL is https, http, ssh (also user@host:path) or git; it must not
	// carry a password.
	URL string
	// Credential, when set, is sent only to URLs on its origin.
	Credential *Credential
}

// Credential is an HTTP header for one origin (scheme://host[:port]).
// git sends it only to that origin and follows no redirect while it is
// set, so it cannot be carried to another host.
type Credential struct {
	Origin string
	Header string // e.g. "Authorization: Basic …"
}

// TokenCredential is GitHub's form for a token over git's HTTP protocol:
// Basic auth with x-access-token as the user.
func TokenCredential(origin, token string) *Credential {
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	return &Credential{Origin: origin, Header: "Authorization: Basic " + basic}
}

// secrets are the forms of the credential to keep out of error messages.
func (c *Credential) secrets() []string {
	if c == nil {
		return nil
	}
	out := []string{c.Header}
	if _, v, ok := strings.Cut(c.Header, ": "); ok {
		out = append(out, v)
		if enc, ok := strings.CutPrefix(v, "Basic "); ok {
			out = append(out, enc)
			if dec, err := base64.StdEncoding.DecodeString(enc); err == nil {
				_, pass, _ := strings.Cut(string(dec), ":")
				out = append(out, string(dec), pass)
			}
		} else if tok, ok := strings.CutPrefix(v, "Bearer "); ok {
			out = append(out, tok)
		}
	}
	return out
}

// Origin returns scheme://host[:port] of an http(s) URL, lower-cased,
// with the scheme's default port left out, for comparing where a
// credential may go. Other schemes and unparsable URLs are an error.
func Origin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return "", errors.New("not an http(s) URL with a host")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// scpLike matches git's user@host:path form of ssh URLs.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]`)

// CheckURL refuses what git must never be handed as a remote: other
// schemes (ext::, file://, fd::), passwords, option-like values and
// control characters. The error never quotes the URL (it may hold a
// secret).
func CheckURL(raw string) error {
	if raw == "" {
		return errors.New("the repository URL is empty")
	}
	if strings.HasPrefix(raw, "-") || strings.ContainsAny(raw, "\x00\r\n\t ") {
		return errors.New("the repository URL has a leading dash, spaces or control characters")
	}
	if scpLike.MatchString(raw) && !strings.Contains(raw, "://") {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("the repository URL does not parse as scheme://host/path")
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git":
	default:
		return fmt.Errorf("repository URL scheme %q is not supported (use https, http, ssh or git)", u.Scheme)
	}
	if _, ok := u.User.Password(); ok {
		return errors.New("the repository URL contains a password; hero uses its own credentials")
	}
	return nil
}

// branchRe is what hero hands git as a branch name (check-ref-format
// proper is applied by git itself).
var branchRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/+-]{0,250}$`)

func checkBranch(b string) error {
	if !branchRe.MatchString(b) || strings.Contains(b, "..") || strings.HasSuffix(b, ".lock") || strings.HasSuffix(b, "/") || strings.Contains(b, "//") {
		return fmt.Errorf("%q is not a branch name hero uses", b)
	}
	return nil
}

// Fetch updates the mirror's copy of branch from remote ("" is the
// remote's default branch) and returns the branch name and its commit.
func (r *Repo) Fetch(ctx context.Context, remote Remote, branch string) (string, string, error) {
	if err := CheckURL(remote.URL); err != nil {
		return "", "", fmt.Errorf("fetch: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.bindURL(ctx, remote.URL); err != nil {
		return "", "", err
	}
	defer r.measure()
	o := opts{cred: remote.Credential, url: remote.URL}
	if branch == "" {
		out, err := r.m.run(ctx, r.dir, o, "ls-remote", "--symref", "--", remote.URL, "HEAD")
		if err != nil {
			return "", "", fmt.Errorf("find the default branch of %s: %w", Clean(remote.URL), err)
		}
		for _, line := range strings.Split(out, "\n") {
			if ref, ok := strings.CutPrefix(line, "ref: refs/heads/"); ok {
				branch, _, _ = strings.Cut(ref, "\t")
				break
			}
		}
		if branch == "" {
			return "", "", fmt.Errorf("find the default branch of %s: the remote names none (is the repository empty?)", Clean(remote.URL))
		}
	}
	if err := checkBranch(branch); err != nil {
		return "", "", fmt.Errorf("fetch: %w", err)
	}
	ref := "refs/heads/" + branch
	if _, err := r.m.run(ctx, r.dir, o, "fetch", "-q", "--no-tags", "--no-write-fetch-head", "--", remote.URL, "+"+ref+":"+ref); err != nil {
		return "", "", fmt.Errorf("fetch branch %s of %s: %w", branch, Clean(remote.URL), err)
	}
	sha, err := r.revParse(ctx, ref)
	if err != nil {
		return "", "", err
	}
	return branch, sha, nil
}

// measure records the mirror's size (after a fetch or a run's commits).
func (r *Repo) measure() {
	r.m.record(r.id, KindMirror, "", diskBytes(r.dir)+diskBytes(r.runs), false)
}

func (r *Repo) revParse(ctx context.Context, ref string) (string, error) {
	return r.revParseIn(ctx, r.dir, ref)
}

func (r *Repo) revParseIn(ctx context.Context, dir, ref string) (string, error) {
	out, err := r.m.run(ctx, dir, opts{}, "rev-parse", "--verify", "-q", ref+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("read %s in the mirror: %w", ref, err)
	}
	return strings.TrimSpace(out), nil
}

// CloneInto makes dir, an empty directory on this host, a clone of
// branch with it checked out and origin set to originURL (the project's
// URL without credentials). Only the branch's history is copied, never
// by hard link, so nothing in dir shares storage with the mirror.
func (r *Repo) CloneInto(ctx context.Context, dir, branch, originURL string) error {
	if err := checkBranch(branch); err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.m.run(ctx, "", opts{allowFile: true}, "clone", "-q", "--no-local", "--template=", "--single-branch", "--no-tags",
		"--branch", branch, "--", "file://"+r.dir, dir); err != nil {
		return fmt.Errorf("clone the mirror into the workspace: %w", err)
	}
	// The clone was just made by this process: its config is hero's own.
	if _, err := r.m.run(ctx, filepath.Join(dir, ".git"), opts{}, "config", "remote.origin.url", originURL); err != nil {
		return fmt.Errorf("set the workspace's origin: %w", err)
	}
	return nil
}

// WriteBundle writes a git bundle of branch (its whole history) to w,
// for workspaces that are not on this host.
func (r *Repo) WriteBundle(ctx context.Context, w io.Writer, branch string) error {
	if err := checkBranch(branch); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.m.stream(ctx, r.dir, opts{}, w, "bundle", "create", "-q", "-", "refs/heads/"+branch); err != nil {
		return fmt.Errorf("bundle branch %s: %w", branch, err)
	}
	return nil
}

// Tips are the commits the mirror's branches point to: a bundle made in a
// workspace may leave out everything they reach.
func (r *Repo) Tips(ctx context.Context) ([]string, error) {
	out, err := r.m.run(ctx, r.dir, opts{}, "for-each-ref", "--format=%(objectname)", "refs/heads/")
	if err != nil {
		return nil, fmt.Errorf("list the mirror's branches: %w", err)
	}
	return strings.Fields(out), nil
}

// Has reports whether the mirror holds commit sha.
func (r *Repo) Has(ctx context.Context, sha string) bool {
	if !shaRe.MatchString(sha) {
		return false
	}
	_, err := r.m.run(ctx, r.runs, opts{}, "cat-file", "-e", sha+"^{commit}")
	return err == nil
}

var shaRe = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// runRefRe is the name of a run's ref.
var runRefRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// RunRef is the mirror ref that holds what run id brought back.
func RunRef(id string) string { return "refs/hero/runs/" + id }

// FetchBundle reads the bundle file at path (made in a workspace: its
// content is untrusted and every object is checked) and stores its HEAD
// as RunRef(runID). It returns that commit.
func (r *Repo) FetchBundle(ctx context.Context, path, runID string) (string, error) {
	if !runRefRe.MatchString(runID) {
		return "", fmt.Errorf("fetch bundle: invalid run id %q", runID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ref := RunRef(runID)
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if _, err := r.m.run(ctx, r.runs, opts{allowFile: true, fsck: true}, "fetch", "-q", "--no-tags", "--no-write-fetch-head", "--", abs, "+HEAD:"+ref); err != nil {
		return "", fmt.Errorf("take the run's commits into the mirror: %w", err)
	}
	defer r.measure()
	return r.revParseIn(ctx, r.runs, ref)
}

// SetRunRef points RunRef(runID) at sha, a commit the mirror already has.
func (r *Repo) SetRunRef(ctx context.Context, runID, sha string) error {
	if !runRefRe.MatchString(runID) || !shaRe.MatchString(sha) {
		return fmt.Errorf("set run ref: invalid run id or commit")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.m.run(ctx, r.runs, opts{}, "update-ref", RunRef(runID), sha)
	return err
}

// ErrRejected is returned by Push when the remote refused the update
// (not a fast-forward, or a protected branch).
var ErrRejected = errors.New("the remote rejected the push")

// Push sends the commit at ref (a mirror ref such as RunRef(id)) to
// branch on remote, creating it if needed. It never forces: a branch that
// moved elsewhere is rejected.
func (r *Repo) Push(ctx context.Context, remote Remote, ref, branch string) error {
	if err := CheckURL(remote.URL); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if err := checkBranch(branch); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if !strings.HasPrefix(ref, "refs/") || strings.ContainsAny(ref, ": +\x00") {
		return fmt.Errorf("push: invalid source ref %q", ref)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out, err := r.m.run(ctx, r.runs, opts{cred: remote.Credential, url: remote.URL}, "push", "--porcelain", "--no-verify", "--", remote.URL, ref+":refs/heads/"+branch)
	if err != nil {
		if strings.Contains(out, "[rejected]") || strings.Contains(out, "[remote rejected]") || strings.Contains(err.Error(), "rejected") {
			return fmt.Errorf("push to %s: %w: %v", branch, ErrRejected, err)
		}
		return fmt.Errorf("push to %s of %s: %w", branch, Clean(remote.URL), err)
	}
	return nil
}

// Clean is url without user information, for messages and origin
// remotes.
func Clean(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		if scpLike.MatchString(raw) {
			return raw
		}
		return "the repository"
	}
	u.User = nil
	return u.String()
}

// opts are the per-command settings of one git call.
type opts struct {
	cred      *Credential
	url       string // the remote the credential is for
	allowFile bool   // hero's own local transfers (the mirror, a bundle)
	fsck      bool   // the objects come from a workspace
}

const gitTimeout = 30 * time.Minute

// env is the whole environment of host git: nothing is inherited.
func (m *Mirrors) env(o opts) []string {
	protocols := "https:http:ssh:git"
	if o.allowFile {
		protocols += ":file"
	}
	cfg := [][2]string{
		{"core.hooksPath", os.DevNull},
		{"credential.helper", ""},
		{"core.fsmonitor", "false"},
		{"core.sshCommand", "ssh -o BatchMode=yes"},
		{"protocol.allow", "never"},
		{"submodule.recurse", "false"},
		{"http.followRedirects", "initial"},
	}
	if o.fsck {
		cfg = append(cfg, [2]string{"transfer.fsckObjects", "true"}, [2]string{"fetch.fsckObjects", "true"})
	}
	if strings.HasPrefix(o.url, "git://") {
		// git daemon answers protocol v2's separate ls-refs request a
		// delayed-ACK later (40 ms on loopback, measured); v0 advertises
		// the refs on connect, one round trip fewer. No credential is
		// ever sent over git://, so nothing else changes.
		cfg = append(cfg, [2]string{"protocol.version", "0"})
	}
	if o.cred != nil && o.cred.Origin != "" {
		// Only when the remote is on the credential's origin; git's
		// http.<url>.* matching enforces the same for every request.
		if got, err := Origin(o.url); err == nil && got == o.cred.Origin {
			cfg[len(cfg)-1] = [2]string{"http.followRedirects", "false"}
			cfg = append(cfg, [2]string{"http." + o.cred.Origin + "/.extraHeader", o.cred.Header})
		}
	}
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + m.home,
		"XDG_CONFIG_HOME=" + m.home,
		"LC_ALL=C",
		// git never looks for a repository around the mirrors directory
		// (HERO_DATA_DIR may sit inside someone's checkout).
		"GIT_CEILING_DIRECTORIES=" + m.root,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=/bin/false",
		"SSH_ASKPASS=/bin/false",
		"GIT_ALLOW_PROTOCOL=" + protocols,
		"GIT_CONFIG_COUNT=" + strconv.Itoa(len(cfg)),
	}
	for i, kv := range cfg {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	return env
}

func (m *Mirrors) command(ctx context.Context, gitDir string, o opts, args []string) *exec.Cmd {
	full := args
	if gitDir != "" {
		full = append([]string{"--git-dir=" + gitDir}, args...)
	}
	cmd := exec.CommandContext(ctx, m.git, full...)
	cmd.Env = m.env(o)
	cmd.Dir = m.home
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs git and returns its stdout; a failure carries stderr, scrubbed
// of the credential.
func (m *Mirrors) run(ctx context.Context, gitDir string, o opts, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := m.command(ctx, gitDir, o, args)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), m.failure(args[0], err, stdout.String()+stderr.String(), o)
	}
	return stdout.String(), nil
}

// stream runs git with its stdout going to w.
func (m *Mirrors) stream(ctx context.Context, gitDir string, o opts, w io.Writer, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := m.command(ctx, gitDir, o, args)
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Run(); err != nil {
		return m.failure(args[0], err, stderr.String(), o)
	}
	return nil
}

func (m *Mirrors) failure(verb string, err error, out string, o opts) error {
	msg := strings.TrimSpace(out)
	if len(msg) > 800 {
		msg = "…" + msg[len(msg)-800:]
	}
	for _, s := range o.cred.secrets() {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[credential]")
		}
	}
	if msg == "" {
		return fmt.Errorf("git %s: %v", verb, err)
	}
	return fmt.Errorf("git %s: %v: %s", verb, err, msg)
}
