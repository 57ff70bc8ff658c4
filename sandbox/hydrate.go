package sandbox

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Source says where a workspace's repository comes from: exactly one of
// Path and Git.
type Source struct {
	// Path is a local directory, copied as it is (uncommitted changes and
	// .git included, so `git diff` works inside). The caller decides which
	// paths are allowed (cmd/hero: the terminal's own checkout, or under
	// HERO_LOCAL_REPO_ROOT).
	Path string
	// Git is hero's host-side copy of the project's repository
	// (sandbox/mirror), already fetched: the workspace is filled from it,
	// so the sandbox needs neither network nor a credential.
	Git GitSource
	// Branch is the branch of Git to check out (required with Git).
	Branch string
	// Commit is the commit Branch pointed to when the mirror was fetched:
	// the workspace starts exactly there. With a Git that keeps prepared
	// checkouts (PreparedSource) and a workspace on this host, the
	// workspace is a copy-on-write layer over the prepared checkout, or a
	// copy of it; without Commit it is a clone of Branch.
	Commit string
	// Deps, when set, caches dependency installs by lockfile hash: an
	// unchanged lockfile restores the last install instead of running it.
	Deps DepCache
	// Origin is what the workspace's `origin` remote says: the project's
	// URL without credentials. Nothing in the sandbox uses it to connect.
	Origin string
	// AllowNetwork lets the dependency install step use the network.
	AllowNetwork bool
	// WorkBranch, when set, is a new branch the workspace ends up on, at
	// the commit it was filled at (Branch stays as the remote has it),
	// and BaseRef, when set, a ref that records that commit. A workspace
	// made from a prepared checkout gets both in the same sandbox command
	// that puts it on Branch (each command is a sandbox start), and
	// Report.WorkBranch says so; otherwise the caller makes them.
	WorkBranch, BaseRef string
	// Install runs the detected dependency installs.
	Install bool
	// InstallTimeout bounds each install command (default 15 min).
	InstallTimeout time.Duration
}

// GitSource is a repository on this host that a workspace is filled from
// (*mirror.Repo implements it).
type GitSource interface {
	// CloneInto makes dir, an empty directory on this host, a clone of
	// branch with origin set to originURL.
	CloneInto(ctx context.Context, dir, branch, originURL string) error
	// WriteBundle writes a git bundle of branch to w.
	WriteBundle(ctx context.Context, w io.Writer, branch string) error
}

// PreparedSource is a GitSource that keeps a prepared checkout per commit
// (*mirror.Repo implements it).
type PreparedSource interface {
	// Prepared returns the directory of commit's prepared checkout, which
	// stays unchanged until release is called, with origin set to
	// originURL.
	Prepared(ctx context.Context, commit, originURL string) (dir string, release func(), err error)
}

// DepCache stores dependency installs by key (*mirror.Repo implements it).
type DepCache interface {
	// OpenDeps opens the archive stored under key; an error wrapping
	// fs.ErrNotExist is a miss.
	OpenDeps(ctx context.Context, key string) (io.ReadCloser, error)
	// SaveDeps stores what write produces under key.
	SaveDeps(ctx context.Context, key string, write func(io.Writer) error) error
}

// Report says what Hydrate did, for the execution log and the user.
type Report struct {
	Source string // Path, or URL without credentials
	Method string // "copy" (host copy), "tar" (streamed archive), "clone" (host clone of the mirror), "bundle" (streamed bundle of it) or "overlay" (a layer over a prepared checkout)
	Files  int    // files and links copied ("copy" and "tar")
	Commit string // HEAD after hydration, when the workspace is a git repository
	// WorkBranch is Source.WorkBranch when the workspace was put on it
	// (with Source.BaseRef recorded), "" when the caller must do it.
	WorkBranch string
	Steps      []Step
	// Release, when set, must be called once the sandbox is closed: it
	// unpins the prepared checkout the workspace is layered on.
	Release func()
}

// Step is one thing Hydrate did or deliberately skipped.
type Step struct {
	Name     string   // "copy", "clone", "install go", …
	Command  []string // argv run in the sandbox, if any
	Skipped  bool
	Cached   bool   // restored from the dependency cache instead of run
	Note     string // why it was skipped, or how it failed
	ExitCode int
	Duration time.Duration
}

// String renders the report as a few human-readable lines.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Method, r.Source)
	if r.Commit != "" {
		fmt.Fprintf(&b, " at %s", r.Commit)
	}
	for _, s := range r.Steps {
		switch {
		case s.Skipped:
			fmt.Fprintf(&b, "\n- %s: skipped: %s", s.Name, s.Note)
		case s.Cached:
			fmt.Fprintf(&b, "\n- %s: restored from the cache in %s (%s)", s.Name, s.Duration.Round(time.Millisecond), s.Note)
		case s.ExitCode != 0:
			fmt.Fprintf(&b, "\n- %s: failed (exit %d): %s", s.Name, s.ExitCode, s.Note)
		default:
			fmt.Fprintf(&b, "\n- %s: done in %s", s.Name, s.Duration.Round(time.Millisecond))
		}
	}
	return b.String()
}

// installer is one dependency manager Hydrate knows: the lock file that
// reveals it, the tool that must exist in the sandbox and the argv.
type installer struct {
	name, file, tool string
	args             []string
	env              map[string]string
	// keys are the files whose content decides the install (file
	// first); base ("home" or "repo") and paths are what it produces,
	// which the dependency cache keeps.
	keys  []string
	base  string
	paths []string
}

// installers in detection order; within a group (js, python) only the
// first match runs, since a project uses one package manager.
var installers = []struct {
	group string
	installer
}{
	{"go", installer{"go", "go.mod", "go", []string{"go", "mod", "download"}, nil,
		[]string{"go.mod", "go.sum"}, "home", []string{"go/pkg/mod"}}},
	{"js", installer{"pnpm", "pnpm-lock.yaml", "pnpm", []string{"pnpm", "install", "--frozen-lockfile"}, nil,
		[]string{"pnpm-lock.yaml", "package.json"}, "repo", []string{"node_modules"}}},
	{"js", installer{"yarn", "yarn.lock", "yarn", []string{"yarn", "install", "--frozen-lockfile"}, nil,
		[]string{"yarn.lock", "package.json"}, "repo", []string{"node_modules"}}},
	{"js", installer{"npm", "package-lock.json", "npm", []string{"npm", "ci"}, nil,
		[]string{"package-lock.json", "package.json"}, "repo", []string{"node_modules"}}},
	{"python", installer{"uv", "uv.lock", "uv", []string{"uv", "sync"}, nil,
		[]string{"uv.lock", "pyproject.toml"}, "repo", []string{".venv"}}},
	// The virtualenv inside the project, where the cache finds it.
	{"python", installer{"poetry", "poetry.lock", "poetry", []string{"poetry", "install"},
		map[string]string{"POETRY_VIRTUALENVS_IN_PROJECT": "true"},
		[]string{"poetry.lock", "pyproject.toml"}, "repo", []string{".venv"}}},
	// User site (~/.local under the sandbox's HOME): /usr is read-only.
	{"python", installer{"pip", "requirements.txt", "pip", []string{"pip", "install", "-r", "requirements.txt"},
		map[string]string{"PIP_USER": "1", "PIP_BREAK_SYSTEM_PACKAGES": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
		[]string{"requirements.txt"}, "home", []string{".local"}}},
	{"rust", installer{"cargo", "Cargo.lock", "cargo", []string{"cargo", "fetch"}, nil,
		[]string{"Cargo.lock", "Cargo.toml"}, "home", []string{".cargo/registry", ".cargo/git"}}},
}

// LockFiles are the files whose content decides the dependency installs
// Hydrate runs, for cache keys made outside a sandbox.
func LockFiles() []string {
	seen := map[string]bool{}
	var out []string
	for _, in := range installers {
		for _, f := range in.keys {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// Hydrate fills a fresh, empty workspace from src and, when src.Install is
// set, installs dependencies. A failing install is recorded in the Report,
// not returned as an error: the agent can still work (and fix it).
func Hydrate(ctx context.Context, sb Sandbox, src Source, log *slog.Logger) (Report, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rep Report
	var err error
	switch {
	case src.Path != "" && src.Git != nil:
		return rep, errors.New("hydrate: give either a local path or a repository, not both")
	case src.Path != "":
		rep, err = hydrateLocal(ctx, sb, src.Path)
	case src.Git != nil:
		rep, err = hydrateGit(ctx, sb, src)
	default:
		return rep, errors.New("hydrate: no source: set a local path or a repository")
	}
	if err != nil {
		return rep, err
	}
	if _, err := sb.Stat(ctx, ".git"); err == nil && rep.Commit == "" {
		var out bytes.Buffer
		res, err := sb.Exec(ctx, Cmd{Args: []string{"git", "rev-parse", "HEAD"}, Stdout: &out, Timeout: time.Minute})
		if err == nil && res.ExitCode == 0 {
			rep.Commit = strings.TrimSpace(out.String())
		}
	}
	if src.Install {
		rep.Steps = append(rep.Steps, installDeps(ctx, sb, src)...)
	}
	log.Info("workspace hydrated", "sandbox", sb.ID(), "source", rep.Source, "method", rep.Method, "commit", rep.Commit, "steps", len(rep.Steps))
	return rep, nil
}

func hydrateLocal(ctx context.Context, sb Sandbox, dir string) (Report, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Report{}, fmt.Errorf("hydrate from %q: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return Report{}, fmt.Errorf("hydrate from %q: %w", dir, err)
	}
	if !st.IsDir() {
		return Report{}, fmt.Errorf("hydrate from %q: not a directory", dir)
	}
	rep := Report{Source: abs}
	start := time.Now()
	if hw, ok := hostWorkspace(sb); ok {
		rep.Method = "copy"
		uid, gid := hw.HostOwner()
		rep.Files, err = copyTree(ctx, abs, hw.HostDir(), uid, gid)
	} else {
		rep.Method = "tar"
		rep.Files, err = streamTar(ctx, sb, abs)
	}
	if err != nil {
		return rep, fmt.Errorf("hydrate from %q: %w", dir, err)
	}
	rep.Steps = append(rep.Steps, Step{Name: rep.Method, Duration: time.Since(start)})
	return rep, nil
}

// hostWorkspace finds a HostWorkspace through wrappers such as *Lease.
func hostWorkspace(sb Sandbox) (HostWorkspace, bool) { return find[HostWorkspace](sb) }

// find finds an optional interface through wrappers such as *Lease.
func find[T any](sb Sandbox) (T, bool) {
	for sb != nil {
		if v, ok := sb.(T); ok {
			return v, true
		}
		u, ok := sb.(interface{ Unwrap() Sandbox })
		if !ok {
			break
		}
		sb = u.Unwrap()
	}
	var zero T
	return zero, false
}

// copyTree copies src into the empty directory dst on this host: regular
// files, directories and symlinks (as links), owned by uid:gid. New files
// are created with O_EXCL|O_NOFOLLOW, so nothing outside dst is written.
func copyTree(ctx context.Context, src, dst string, uid, gid int) (int, error) {
	chown := uid != os.Geteuid() || gid != os.Getegid()
	n := 0
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()|0o700); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			n++
		case d.Type().IsRegular():
			if err := copyFile(path, target, info.Mode().Perm()); err != nil {
				return err
			}
			n++
		default:
			return nil // devices, sockets, FIFOs stay behind
		}
		if chown {
			return os.Lchown(target, uid, gid)
		}
		return nil
	})
	return n, err
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, perm) // past the umask
	}
	return err
}

// streamTar sends src as a tar archive to `tar -x` inside the sandbox, for
// providers whose workspace is not on this host.
func streamTar(ctx context.Context, sb Sandbox, src string) (int, error) {
	pr, pw := io.Pipe()
	count := make(chan int, 1)
	go func() {
		n, err := writeTar(ctx, pw, src)
		count <- n
		pw.CloseWithError(err)
	}()
	var stderr bytes.Buffer
	res, err := execBulk(ctx, sb, Cmd{
		Args:    []string{"tar", "-x", "-f", "-", "--no-same-owner"},
		Stdin:   pr,
		Stderr:  &stderr,
		Timeout: 30 * time.Minute,
	})
	pr.CloseWithError(errors.New("tar exited"))
	n := <-count
	if err != nil {
		return n, fmt.Errorf("extract in sandbox: %w", err)
	}
	if res.ExitCode != 0 {
		return n, fmt.Errorf("extract in sandbox: tar exited %d: %s", res.ExitCode, tail(stderr.String(), 500))
	}
	return n, nil
}

func writeTar(ctx context.Context, w io.Writer, src string) (int, error) {
	tw := tar.NewWriter(w)
	n := 0
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		if d.Type()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		} else if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, tw.Close()
}

// hydrateGit fills the workspace from hero's mirror: a host-side clone
// into the workspace directory (chowned to the sandbox's owner) when it
// is on this host, otherwise a bundle streamed into `git clone` inside
// the sandbox, without network.
func hydrateGit(ctx context.Context, sb Sandbox, src Source) (Report, error) {
	if src.Branch == "" || strings.HasPrefix(src.Branch, "-") || strings.ContainsAny(src.Branch, "\x00 \n") {
		return Report{}, fmt.Errorf("hydrate: invalid branch name %q", src.Branch)
	}
	if strings.HasPrefix(src.Origin, "-") || strings.ContainsAny(src.Origin, "\x00\n") {
		return Report{}, errors.New("hydrate: invalid origin URL")
	}
	if src.WorkBranch != "" && !refNameOK(src.WorkBranch) {
		return Report{}, fmt.Errorf("hydrate: invalid branch name %q", src.WorkBranch)
	}
	if src.BaseRef != "" && (!strings.HasPrefix(src.BaseRef, "refs/") || !refNameOK(src.BaseRef)) {
		return Report{}, fmt.Errorf("hydrate: invalid ref name %q", src.BaseRef)
	}
	rep := Report{Source: src.Origin}
	start := time.Now()
	hw, host := hostWorkspace(sb)
	if ps, ok := src.Git.(PreparedSource); ok && host && src.Commit != "" {
		return hydratePrepared(ctx, sb, hw, ps, src)
	}
	if host {
		rep.Method = "clone"
		dir := hw.HostDir()
		if err := src.Git.CloneInto(ctx, dir, src.Branch, src.Origin); err != nil {
			return rep, fmt.Errorf("hydrate: %w", err)
		}
		if uid, gid := hw.HostOwner(); uid != os.Geteuid() || gid != os.Getegid() {
			if err := chownTree(ctx, dir, uid, gid); err != nil {
				return rep, fmt.Errorf("hydrate: hand the workspace to the sandbox: %w", err)
			}
		}
		rep.Steps = append(rep.Steps, Step{Name: "clone", Duration: time.Since(start)})
		return rep, nil
	}
	rep.Method = "bundle"
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(src.Git.WriteBundle(ctx, pw, src.Branch)) }()
	script := `set -e; b=$(mktemp); trap 'rm -f "$b"' EXIT; cat > "$b"; git clone -q --template= --branch "$1" "$b" .; git remote set-url origin "$2"`
	args := []string{"sh", "-c", script, "sh", src.Branch, src.Origin}
	var out bytes.Buffer
	res, err := execBulk(ctx, sb, Cmd{Args: args, Stdin: pr, Stdout: &out, Stderr: &out, Timeout: 30 * time.Minute})
	pr.CloseWithError(errors.New("clone exited"))
	step := Step{Name: "clone", Command: []string{"git", "clone", "<bundle>", "."}, ExitCode: res.ExitCode, Duration: time.Since(start)}
	if err != nil {
		return rep, fmt.Errorf("hydrate: clone in the sandbox: %w", err)
	}
	if res.ExitCode != 0 || res.TimedOut {
		step.Note = tail(out.String(), 800)
		rep.Steps = append(rep.Steps, step)
		return rep, fmt.Errorf("hydrate: clone in the sandbox: exit %d: %s", res.ExitCode, step.Note)
	}
	rep.Steps = append(rep.Steps, step)
	return rep, nil
}

// setRefs points refs at commit and HEAD at branch head in the
// workspace's repository by writing git's files: the repository is a
// prepared checkout hero laid out (loose refs, HEAD detached, no packed
// refs) and nothing has run in the workspace yet. A sandbox command
// would cost a sandbox start, more than the rest of a small workspace.
func setRefs(ctx context.Context, sb Sandbox, commit, head string, refs []string) error {
	for _, ref := range refs {
		if err := sb.WriteFile(ctx, ".git/"+ref, []byte(commit+"\n"), 0o644); err != nil {
			return err
		}
	}
	return sb.WriteFile(ctx, ".git/HEAD", []byte("ref: refs/heads/"+head+"\n"), 0o644)
}

// refNameOK is git's check-ref-format, applied strictly: setRefs writes
// a name as a path under .git/, so it can neither leave the refs it is
// meant for (no "..", no part starting with a dot) nor, given to git
// later, be taken as an option.
func refNameOK(name string) bool {
	if name == "" || name == "@" || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") ||
		strings.Contains(name, "..") || strings.Contains(name, "//") || strings.Contains(name, "@{") {
		return false
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return false
		}
	}
	return true
}

// hydratePrepared starts the workspace from the prepared checkout of
// src.Commit: an overlay over it when the sandbox can, a copy otherwise;
// then the run's branch is made to point at the commit, in the sandbox.
func hydratePrepared(ctx context.Context, sb Sandbox, hw HostWorkspace, ps PreparedSource, src Source) (Report, error) {
	if !shaRe.MatchString(src.Commit) {
		return Report{}, fmt.Errorf("hydrate: %q is not a commit id", src.Commit)
	}
	if !refNameOK(src.Branch) {
		return Report{}, fmt.Errorf("hydrate: invalid branch name %q", src.Branch)
	}
	rep := Report{Source: src.Origin}
	start := time.Now()
	dir, release, err := ps.Prepared(ctx, src.Commit, src.Origin)
	if err != nil {
		return rep, fmt.Errorf("hydrate: %w", err)
	}
	layered := false
	if lw, ok := find[LayeredWorkspace](sb); ok {
		switch err := lw.LayerWorkspace(ctx, dir); {
		case err == nil:
			layered = true
		case !errors.Is(err, errors.ErrUnsupported):
			release()
			return rep, fmt.Errorf("hydrate: %w", err)
		}
	}
	if layered {
		rep.Method, rep.Release = "overlay", release
	} else {
		rep.Method = "copy"
		uid, gid := hw.HostOwner()
		rep.Files, err = copyTree(ctx, dir, hw.HostDir(), uid, gid)
		release()
		if err != nil {
			return rep, fmt.Errorf("hydrate: copy the prepared checkout: %w", err)
		}
	}
	fail := func(err error) (Report, error) {
		if rep.Release != nil {
			rep.Release()
			rep.Release = nil
		}
		return rep, err
	}
	// The branch and its remote-tracking ref (and the run's own branch
	// and base ref, when asked) at exactly the commit, HEAD on the branch:
	// no file changes, so this is instant even on a large tree.
	head := src.Branch
	refs := []string{"refs/heads/" + src.Branch, "refs/remotes/origin/" + src.Branch}
	if src.WorkBranch != "" && src.WorkBranch != src.Branch {
		head = src.WorkBranch
		refs = append(refs, "refs/heads/"+src.WorkBranch)
	}
	if src.BaseRef != "" {
		refs = append(refs, src.BaseRef)
	}
	if err := setRefs(ctx, sb, src.Commit, head, refs); err != nil {
		return fail(fmt.Errorf("hydrate: check out %s: %w", head, err))
	}
	rep.Commit = src.Commit
	rep.WorkBranch = src.WorkBranch
	rep.Steps = append(rep.Steps, Step{Name: rep.Method, Duration: time.Since(start)})
	return rep, nil
}

// execBulk runs c with c.Stdin as its input; where stdin is slow for bulk
// data (Uploader) the input is uploaded first and redirected from the
// file.
func execBulk(ctx context.Context, sb Sandbox, c Cmd) (Result, error) {
	up, ok := find[Uploader](sb)
	if !ok || c.Stdin == nil {
		return sb.Exec(ctx, c)
	}
	path, remove, err := up.Upload(ctx, c.Stdin)
	if err != nil {
		return Result{}, fmt.Errorf("upload the input of %s: %w", c.Args[0], err)
	}
	defer remove(context.WithoutCancel(ctx))
	c.Args = append([]string{"sh", "-c", `f="$HOME/$1"; shift; exec "$@" < "$f"`, "sh", path}, c.Args...)
	c.Stdin = nil
	return sb.Exec(ctx, c)
}

// chownTree gives every entry under dir (dir included) to uid:gid,
// without following links.
func chownTree(ctx context.Context, dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

func installDeps(ctx context.Context, sb Sandbox, src Source) []Step {
	timeout := src.InstallTimeout
	if timeout <= 0 {
		timeout = 15 * time.Minute
	}
	var steps []Step
	done := map[string]bool{}
	for _, in := range installers {
		if done[in.group] {
			continue
		}
		if _, err := sb.Stat(ctx, in.file); err != nil {
			continue
		}
		done[in.group] = true
		step := Step{Name: "install " + in.name, Command: in.args}
		key := ""
		if src.Deps != nil {
			key = depsKey(ctx, sb, in.installer)
		}
		if key != "" {
			start := time.Now()
			hit, err := restoreDeps(ctx, sb, src.Deps, key, in.installer)
			if hit && err == nil {
				step.Cached, step.Duration = true, time.Since(start)
				step.Note = in.file + " unchanged since the last install"
				steps = append(steps, step)
				continue
			}
			if err != nil {
				// A broken archive costs an install, not the run.
				step.Note = "the cached install could not be restored (" + err.Error() + "); installing again. "
			}
		}
		switch {
		case !src.AllowNetwork:
			step.Skipped = true
			step.Note += fmt.Sprintf("found %s but the project does not allow network for installs; run `%s` when it does", in.file, strings.Join(in.args, " "))
		case !hasTool(ctx, sb, in.tool):
			step.Skipped = true
			step.Note += fmt.Sprintf("found %s but %s is not installed in the sandbox", in.file, in.tool)
		default:
			var out bytes.Buffer
			start := time.Now()
			res, err := sb.Exec(ctx, Cmd{Args: in.args, Env: in.env, Network: true, Stdout: &out, Stderr: &out, Timeout: timeout})
			step.Duration = time.Since(start)
			step.ExitCode = res.ExitCode
			switch {
			case err != nil:
				step.ExitCode = -1
				step.Note = err.Error()
			case res.TimedOut:
				step.Note = fmt.Sprintf("timed out after %s", timeout)
				if step.ExitCode == 0 {
					step.ExitCode = -1
				}
			case res.ExitCode != 0:
				step.Note = tail(out.String(), 500)
			case key != "":
				if err := saveDeps(ctx, sb, src.Deps, key, in.installer); err != nil {
					step.Note = "installed; not cached: " + err.Error()
				}
			}
		}
		steps = append(steps, step)
	}
	return steps
}

// depsKey is the cache key of an install: the installer and a hash of its
// command and the files that decide what it installs. "" when a key file
// cannot be read.
func depsKey(ctx context.Context, sb Sandbox, in installer) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q\x00", in.args)
	for _, f := range in.keys {
		data, err := sb.ReadFile(ctx, f)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(h, "%s\x00absent\x00", f)
		case err != nil:
			return ""
		default:
			fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
			h.Write(data)
		}
	}
	return in.name + "-" + hex.EncodeToString(h.Sum(nil))
}

// depsDir is the shell snippet that enters an installer's base directory.
func depsDir(in installer) string {
	if in.base == "home" {
		return `cd "$HOME"`
	}
	return `:`
}

// restoreDeps unpacks the cached install, in the sandbox (the archive
// came out of a sandbox: host tools never read it). hit is false on a
// miss.
func restoreDeps(ctx context.Context, sb Sandbox, cache DepCache, key string, in installer) (hit bool, err error) {
	rc, err := cache.OpenDeps(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer rc.Close()
	var errb bytes.Buffer
	res, err := execBulk(ctx, sb, Cmd{Args: []string{"sh", "-c", depsDir(in) + ` && exec tar -x -f - --no-same-owner --delay-directory-restore`}, Stdin: rc, Stderr: &errb, Timeout: 15 * time.Minute})
	if err != nil {
		return true, err
	}
	if res.ExitCode != 0 {
		return true, fmt.Errorf("tar exited %d: %s", res.ExitCode, tail(errb.String(), 300))
	}
	return true, nil
}

// saveDeps archives what the install produced, in the sandbox, into the
// cache. Modes get u+w: the sandbox's root has no CAP_DAC_OVERRIDE, so tar
// could not fill a read-only directory (Go's module cache) it just made.
func saveDeps(ctx context.Context, sb Sandbox, cache DepCache, key string, in installer) error {
	script := depsDir(in) + ` && set -- $(for p do [ -e "$p" ] && printf '%s\n' "$p"; done; true) && [ $# -gt 0 ] || exit 3; exec tar -c -f - --mode=u+w -- "$@"`
	args := append([]string{"sh", "-c", script, "sh"}, in.paths...)
	return cache.SaveDeps(ctx, key, func(w io.Writer) error {
		var errb bytes.Buffer
		res, err := sb.Exec(ctx, Cmd{Args: args, Stdout: w, Stderr: &errb, Timeout: 15 * time.Minute})
		switch {
		case err != nil:
			return err
		case res.ExitCode == 3:
			return fmt.Errorf("the install left none of %s", strings.Join(in.paths, ", "))
		case res.ExitCode != 0:
			return fmt.Errorf("tar exited %d: %s", res.ExitCode, tail(errb.String(), 300))
		}
		return nil
	})
}

// hasTool reports whether a command exists on the sandbox's PATH. The name
// is passed as an argument, never spliced into the script.
func hasTool(ctx context.Context, sb Sandbox, tool string) bool {
	res, err := sb.Exec(ctx, Cmd{Args: []string{"sh", "-c", `command -v "$1" >/dev/null`, "sh", tool}, Timeout: time.Minute})
	return err == nil && res.ExitCode == 0
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
