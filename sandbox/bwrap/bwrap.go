// Package bwrap is the local sandbox provider: every sandbox is a directory
// on this host and every command runs under bubblewrap (bwrap) in fresh
// namespaces, seeing only a read-only view of the host's system directories,
// its own workspace at /repo and a private /tmp.
//
// Layout of one sandbox on the host:
//
//	VOL/repo                 the workspace, bound read-write at /repo
//	VOL/tmp/home             HOME, bound at /tmp/home, kept between commands
//	<baseDir>/<id>/disk.img  the volume's ext4 image, in the "loop" disk mode
//
// where VOL, the sandbox's disk volume capped at Limits.DiskBytes
// (disk.go), is <baseDir>/<id>/vol, or in the "loop" mode the image's
// mount point <volumeDir>/<id> (outside baseDir, so that deleting a
// sandbox directory never meets a mount; see sweepVolumes). Under
// per-sandbox uids the measuring mode's <baseDir>/<id>/vol is
// bind-mounted at <volumeDir>/<id> too, which is where the sandbox's uid
// can reach it (hero's data dir is closed to others).
//
// /tmp itself is a tmpfs per command, capped with bwrap's --size at the
// smaller of the disk and memory limits (with a bwrap too old for --size,
// /tmp is <id>/vol/tmp instead, kept between commands and on the volume).
//
// Host uids: when hero is root, every sandbox gets a host uid and gid of
// its own (allocUID; unique on the host, across providers and processes),
// which owns its workspace and HOME (0700, closed to other sandboxes) and
// which bwrap and the command run as, so an escape from the namespaces
// lands as an unprivileged user, never as root. Inside, the command sees
// the same uid (bwrap maps it to itself). A rootless hero runs commands as
// its own uid. Files hero writes into a workspace from the host (file
// methods, clones, copies: HostOwner) are given to the sandbox's uid;
// a layered workspace's base is an idmapped mount showing hero's files as
// the sandbox's (layer.go).
//
// Resource limits: when the cgroup filesystem is writable (v1 or v2) every
// sandbox gets its own cgroup, capping processes (pids.max) and memory for
// the sandbox as a whole; hero moves each command's namespace init into it
// before the init runs anything. CPU seconds and file size are rlimits on
// every process. Without cgroups, RLIMIT_NPROC (counting the sandbox's own
// uid) and RLIMIT_AS do the work; a rootless hero without cgroups has no
// process limit. Under a sandbox uid the command sets its rlimits on itself
// with prlimit(1), since hero may lack CAP_SYS_RESOURCE over another uid.
// New logs which mode it picked.
//
// Killing: every command gets a new pid namespace whose init is bwrap's; the
// provider kills that init through a pidfd, and the kernel then kills every
// process of the namespace, background grandchildren included.
package bwrap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hero-dev/hero/sandbox"
)

// InstallHint is the command that fixes a missing bubblewrap, quoted in the
// ErrUnavailable error so an operator can act on it directly.
const InstallHint = "apt-get install bubblewrap"

// Default limits applied when a Spec leaves a field at zero.
var defaultLimits = sandbox.Limits{
	MemoryBytes:   4 << 30,
	CPUSeconds:    1800,
	Processes:     512,
	FileSizeBytes: 4 << 30,
	DiskBytes:     10 << 30,
}

// etcFiles are the only entries of the host's /etc a sandbox sees: what
// name resolution, TLS, dynamic linking and common tools need. Everything
// else is absent on purpose (shadow, gshadow, ssh host keys, ssl/private,
// sudoers, npmrc, pip.conf, gitconfig, database configs …): under a
// rootless hero the sandbox's user owns every file of hero's user it can
// see, so mode bits do not protect them. The list is short because every
// entry is a mount, and mounts are most of bwrap's start-up time.
var etcFiles = []string{
	"passwd", "group", "hosts", "resolv.conf", "nsswitch.conf", "gai.conf",
	"protocols", "services", "ssl/certs", "ssl/openssl.cnf", "pki/tls/certs",
	"pki/ca-trust", "crypto-policies", "alternatives", "ld.so.cache",
	"localtime", "os-release",
}

var idPattern = regexp.MustCompile(`^bw-[0-9a-f]{16}$`)

// Provider creates bubblewrap sandboxes under one base directory. It is safe
// for concurrent use.
type Provider struct {
	baseDir    string
	bwrap      string
	log        *slog.Logger
	limits     sandbox.Limits
	timeout    time.Duration
	path       string
	extraBinds [][2]string
	useCgroups bool
	uidBase    int
	uidCount   int
	uidLockDir string // host-wide: which uids sandboxes hold, across providers and processes
	loopDisks  bool
	volumeDir  string

	staticArgs     []string // system binds, identical for every command
	disableUserns  bool
	cg             *cgroups // nil when not in cgroup mode
	unprivileged   bool     // run bwrap under a per-sandbox uid (hero is root)
	prlimit        string   // prlimit(1): commands under a sandbox uid lower their own limits
	rootlessCaller bool     // hero itself is not root
	diskMode       string   // diskLoop or diskCheck
	bindVolumes    bool     // diskCheck under sandbox uids: volumes bind-mounted into volumeDir
	mkfs, mount    string   // tools of the loop disk mode
	tmpSize        bool     // bwrap has --size: /tmp is a capped tmpfs
	net            netTools // user-mode networking (net.go)
	netErr         error    // why networked commands cannot run here

	mu       sync.Mutex
	live     map[string]*Sandbox
	uidLocks map[int]*os.File // the uids this provider's sandboxes hold
	spare    *spare           // a volume made ahead (spare.go); nil when none
	closed   bool             // Close ran: no more spares
	building sync.WaitGroup
}

// Option configures a Provider.
type Option func(*Provider) error

// WithBwrapPath uses a bwrap binary other than the one found on PATH.
func WithBwrapPath(path string) Option {
	return func(p *Provider) error { p.bwrap = path; return nil }
}

// WithDefaultLimits sets the limits used for fields a Spec leaves at zero.
func WithDefaultLimits(l sandbox.Limits) Option {
	return func(p *Provider) error {
		if err := checkLimits(l); err != nil {
			return fmt.Errorf("default limits: %w", err)
		}
		mergeLimits(&p.limits, l)
		return nil
	}
}

// WithDefaultTimeout sets the wall-clock limit of a Cmd without Timeout.
func WithDefaultTimeout(d time.Duration) Option {
	return func(p *Provider) error {
		if d <= 0 {
			return errors.New("default timeout must be positive")
		}
		p.timeout = d
		return nil
	}
}

// WithPATH sets PATH inside the sandbox.
func WithPATH(path string) Option {
	return func(p *Provider) error { p.path = path; return nil }
}

// WithReadOnlyBind exposes one more host directory read-only (e.g. a
// toolchain under /opt). Both paths must be absolute.
func WithReadOnlyBind(hostPath, sandboxPath string) Option {
	return func(p *Provider) error {
		if !filepath.IsAbs(hostPath) || !filepath.IsAbs(sandboxPath) {
			return fmt.Errorf("read-only bind %q → %q: paths must be absolute", hostPath, sandboxPath)
		}
		p.extraBinds = append(p.extraBinds, [2]string{hostPath, sandboxPath})
		return nil
	}
}

// WithCgroups turns cgroup limits off (false) to force the rlimit fallback
// (under per-sandbox uids when hero is root); the default is to use cgroups
// when the cgroup fs is writable.
func WithCgroups(enabled bool) Option {
	return func(p *Provider) error { p.useCgroups = enabled; return nil }
}

// WithLoopDisks turns the loop-mounted disk volumes off (false) to force the
// measuring fallback; the default is to use them when hero can (disk.go).
func WithLoopDisks(enabled bool) Option {
	return func(p *Provider) error { p.loopDisks = enabled; return nil }
}

// WithVolumeDir sets where the "loop" disk mode mounts sandbox volumes
// (default /run/hero-volumes). One directory may serve several providers.
func WithVolumeDir(dir string) Option {
	return func(p *Provider) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("volume dir %q must be absolute", dir)
		}
		p.volumeDir = dir
		return nil
	}
}

// WithUIDRange sets the host uids (and gids) handed to sandboxes when hero
// is root, one per live sandbox on this host: no sandbox can change
// another's files, and RLIMIT_NPROC counts each sandbox separately.
func WithUIDRange(base, count int) Option {
	return func(p *Provider) error {
		if base <= 0 || count <= 0 || base+count > 1<<31-2 {
			return fmt.Errorf("uid range %d+%d is invalid", base, count)
		}
		p.uidBase, p.uidCount = base, count
		return nil
	}
}

// New checks that bubblewrap works on this machine and returns a provider
// keeping its sandboxes under baseDir (created 0700 if missing).
//
// It returns an error wrapping sandbox.ErrUnavailable when bwrap is missing
// (the message carries InstallHint) or the kernel lacks openat2, which the
// file methods need for confinement.
func New(baseDir string, log *slog.Logger, opts ...Option) (*Provider, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(baseDir)
	if err != nil {
		return nil, fmt.Errorf("bwrap provider: base dir %q: %w", baseDir, err)
	}
	p := &Provider{
		baseDir:    abs,
		log:        log.With("provider", "local"),
		limits:     defaultLimits,
		timeout:    10 * time.Minute,
		path:       defaultPATH(),
		useCgroups: true,
		loopDisks:  true,
		volumeDir:  "/run/hero-volumes",
		uidBase:    1_000_000_000,
		uidCount:   65536,
		live:       map[string]*Sandbox{},
		uidLockDir: "/run/hero-uids",
		uidLocks:   map[int]*os.File{},
	}
	for _, o := range opts {
		if err := o(p); err != nil {
			return nil, fmt.Errorf("bwrap provider: %w", err)
		}
	}
	if p.bwrap == "" {
		path, err := exec.LookPath("bwrap")
		if err != nil {
			return nil, fmt.Errorf("bwrap provider: bubblewrap not found on PATH; install it with `%s`: %w", InstallHint, sandbox.ErrUnavailable)
		}
		p.bwrap = path
	} else if _, err := os.Stat(p.bwrap); err != nil {
		return nil, fmt.Errorf("bwrap provider: %s: %v; install bubblewrap with `%s`: %w", p.bwrap, err, InstallHint, sandbox.ErrUnavailable)
	}
	if err := probeOpenat2(); err != nil {
		return nil, fmt.Errorf("bwrap provider: openat2 (Linux ≥ 5.6) is needed for path confinement: %v: %w", err, sandbox.ErrUnavailable)
	}
	if err := os.MkdirAll(p.baseDir, 0o700); err != nil {
		return nil, fmt.Errorf("bwrap provider: create base dir: %w", err)
	}
	helpCmd := exec.Command(p.bwrap, "--help")
	helpCmd.Env = hostEnv()
	help, _ := helpCmd.CombinedOutput()
	p.disableUserns = strings.Contains(string(help), "--disable-userns")
	p.tmpSize = strings.Contains(string(help), "--size")
	if !p.tmpSize {
		p.log.Warn("this bubblewrap has no --size (it came with 0.7): /tmp is kept on the sandbox's disk volume instead of a capped tmpfs; upgrade bubblewrap for a memory-backed /tmp")
	}
	p.staticArgs = p.systemArgs()
	p.rootlessCaller = os.Geteuid() != 0

	if p.useCgroups {
		cg, err := detectCgroups("hero")
		if err == nil {
			p.cg = cg
		} else {
			p.log.Warn("cgroups not usable, falling back to rlimits", "reason", err.Error())
		}
	}
	if p.net, p.netErr = findNetTools(); p.netErr != nil {
		p.log.Warn("commands that are allowed network will fail: the sandbox's own network needs slirp4netns", "reason", p.netErr.Error())
	}
	p.diskMode = diskCheck
	if p.loopDisks {
		if err := p.setUpLoopDisks(); err != nil {
			p.log.Warn("disk limits by measuring usage (a burst of writes can overshoot until the next measurement); kernel-enforced limits need loop-mounted volumes", "reason", err.Error())
		}
	}
	p.log.Info("sandbox disk limit", "mode", p.diskMode, "default_bytes", p.limits.DiskBytes)
	if !p.rootlessCaller {
		switch err := p.setUpSandboxUIDs(); {
		case err == nil:
			p.unprivileged = true
		case p.cg == nil:
			return nil, fmt.Errorf("bwrap provider: sandbox uids cannot reach their volumes: %w", err)
		default:
			p.log.Warn("sandbox commands run as host root: per-sandbox uids cannot reach their volumes", "reason", err.Error())
		}
	}
	if p.unprivileged {
		if p.prlimit, err = exec.LookPath("prlimit"); err != nil {
			return nil, fmt.Errorf("bwrap provider: commands under sandbox uids set their limits with prlimit; install it with `apt-get install util-linux`: %w", sandbox.ErrUnavailable)
		}
	}
	switch {
	case p.cg != nil:
		p.log.Info("sandbox limits via cgroups", "cgroup", p.cg.describe(), "memory_limit", p.cg.memory, "per_sandbox_uid", p.unprivileged)
	case p.unprivileged:
		p.log.Info("sandbox limits via rlimits under a per-sandbox unprivileged uid", "uid_base", p.uidBase)
	default:
		p.log.Warn("sandbox limits via rlimits; process count is not enforced (hero is not root and cgroups are not writable)")
	}
	return p, nil
}

// setUpSandboxUIDs makes the sandbox volumes reachable by the per-sandbox
// uids a root hero runs commands under: bwrap, running as that uid,
// resolves its bind sources on the host without privilege, and hero's
// data dir is 0700. Loop volumes are mounted in the volume dir, which
// loopTools made searchable. Volumes of the measuring mode are
// directories under the base directory, bind-mounted into the volume dir;
// where bind mounts fail, the base directory's ancestors must let others
// through.
func (p *Provider) setUpSandboxUIDs() error {
	if p.diskMode == diskLoop {
		return searchableByOthers(p.volumeDir)
	}
	bindErr := p.probeBindVolumes()
	if bindErr == nil {
		p.bindVolumes = true
		return nil
	}
	if err := os.Chmod(p.baseDir, 0o711); err != nil {
		return err
	}
	if err := searchableByOthers(p.baseDir); err != nil {
		return fmt.Errorf("%w; and volumes cannot be bind-mounted in %s: %v", err, p.volumeDir, bindErr)
	}
	return nil
}

// probeBindVolumes prepares the volume dir for bind-mounted volumes and
// proves that bind mounts work, with one made and removed.
func (p *Provider) probeBindVolumes() error {
	if err := os.MkdirAll(p.volumeDir, 0o711); err != nil {
		return err
	}
	if err := os.Chmod(p.volumeDir, 0o711); err != nil {
		return err
	}
	if err := searchableByOthers(p.volumeDir); err != nil {
		return err
	}
	if n := sweepVolumes(p.volumeDir); n > 0 {
		p.log.Info("unmounted volumes of deleted sandboxes", "count", n)
	}
	src, err := os.MkdirTemp(p.baseDir, "probe-")
	if err != nil {
		return err
	}
	defer os.Remove(src)
	vol := filepath.Join(p.volumeDir, filepath.Base(src))
	err = bindVolume(src, vol, src)
	if rmErr := removeVolume(vol); err == nil {
		err = rmErr
	}
	return err
}

// setUpLoopDisks switches to the "loop" disk mode when loop-mounted
// volumes work here, which a spare volume proves: one adopted from an
// earlier process (mounted on this boot), or one made now.
func (p *Provider) setUpLoopDisks() error {
	mkfs, mount, err := loopTools(p.volumeDir)
	if err != nil {
		return err
	}
	p.mkfs, p.mount = mkfs, mount
	if n := sweepVolumes(p.volumeDir); n > 0 {
		p.log.Info("unmounted volumes of deleted sandboxes", "count", n)
	}
	sp := p.adoptSpare()
	if sp == nil {
		if sp, err = p.newSpare(p.limits.DiskBytes); err != nil {
			return err
		}
		sp.err = p.buildSpare(sp)
		close(sp.done)
		if sp.err != nil {
			return sp.err
		}
	}
	p.diskMode, p.spare = diskLoop, sp
	return nil
}

// hostEnv is the whole environment of every process this package starts
// on the host (bwrap, prlimit). It is fixed on purpose: neither a Spec's or
// Cmd's variables nor hero's own environment reach a process that runs
// before the sandbox exists, where the dynamic loader and libc would honour
// LD_PRELOAD, GCONV_PATH, MALLOC_* and the like. Commands get their
// environment inside the sandbox only (Sandbox.envArgs).
func hostEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
}

// defaultPATH is the PATH inside sandboxes: the usual directories plus the
// Go toolchain when it lives in /usr/local/go (bound with /usr).
func defaultPATH() string {
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if st, err := os.Stat("/usr/local/go/bin"); err == nil && st.IsDir() {
		path += ":/usr/local/go/bin"
	}
	return path
}

// systemArgs builds the part of the bwrap command line that is the same for
// every command: namespaces, capabilities and the read-only system view.
func (p *Provider) systemArgs() []string {
	args := []string{
		"--unshare-all", "--unshare-user",
		"--die-with-parent", "--new-session",
		"--cap-drop", "ALL",
		"--hostname", "sandbox",
		"--ro-bind", "/usr", "/usr",
	}
	if p.disableUserns {
		args = append(args, "--disable-userns")
	}
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(d); err == nil {
				args = append(args, "--symlink", target, d)
			}
		case fi.IsDir():
			args = append(args, "--ro-bind", d, d)
		}
	}
	args = append(args, "--perms", "0755", "--dir", "/etc")
	for _, name := range etcFiles {
		src := "/etc/" + name
		fi, err := os.Lstat(src)
		if err != nil {
			continue
		}
		// A link into /usr costs no mount: recreate it.
		if fi.Mode()&os.ModeSymlink != 0 {
			if target, err := os.Readlink(src); err == nil {
				abs := target
				if !filepath.IsAbs(abs) {
					abs = filepath.Join(filepath.Dir(src), target)
				}
				if strings.HasPrefix(abs, "/usr/") {
					args = append(args, "--symlink", target, src)
					continue
				}
			}
		}
		if _, err := os.Stat(src); err == nil {
			args = append(args, "--ro-bind", src, src)
		}
	}
	for _, b := range p.extraBinds {
		args = append(args, "--ro-bind", b[0], b[1])
	}
	args = append(args,
		"--proc", "/proc",
		"--dev", "/dev",
		"--perms", "1777", "--tmpfs", "/dev/shm",
		"--perms", "0755", "--dir", "/var",
		"--symlink", "../tmp", "/var/tmp",
	)
	return args
}

// Name is "local".
func (p *Provider) Name() string { return "local" }

// Create makes the sandbox's directories (and cgroup); no process starts
// until the first Exec, which is what keeps a cold start cheap.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	if err := validateEnv(spec.Env); err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	lim := spec.Limits
	if err := checkLimits(lim); err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	eff := p.limits
	mergeLimits(&eff, lim)
	// No single file may be larger than the whole disk allowance: in the
	// measuring disk mode this bounds the overshoot of one write.
	eff.FileSizeBytes = min(eff.FileSizeBytes, eff.DiskBytes)

	var sp *spare
	if p.diskMode == diskLoop {
		sp = p.takeSpare(ctx, eff.DiskBytes)
		// The next sandbox's volume, while this one is filled.
		defer p.makeSpare(eff.DiskBytes)
	}
	var id string
	if sp != nil {
		id = sp.id
	} else {
		var raw [8]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, fmt.Errorf("create sandbox: id: %w", err)
		}
		id = "bw-" + hex.EncodeToString(raw[:])
	}
	dir := filepath.Join(p.baseDir, id)
	vol := filepath.Join(dir, "vol")
	if p.mountsVolumes() {
		vol = filepath.Join(p.volumeDir, id)
	}
	s := &Sandbox{
		p: p, id: id, dir: dir, vol: vol, spec: cloneSpec(spec), limits: eff,
		uid: -1, gid: -1, running: map[*run]struct{}{},
	}
	if p.unprivileged {
		uid, err := p.allocUID()
		if err != nil {
			if sp != nil {
				p.putBack(sp)
			}
			return nil, fmt.Errorf("create sandbox: %w", err)
		}
		s.uid, s.gid = uid, uid
	}
	cleanup := func() {
		if sp != nil {
			_ = p.discardSpare(sp) // the image, if it is still a spare's
		}
		if p.mountsVolumes() {
			_ = removeVolume(vol)
		}
		_ = removeTree(dir)
		if s.uid >= 0 {
			p.releaseUID(s.uid)
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		cleanup()
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	switch {
	case sp != nil:
		if err := p.claimSpare(sp, dir); err != nil {
			cleanup()
			return nil, fmt.Errorf("create sandbox: %w", err)
		}
		sp = nil
	case p.diskMode == diskLoop:
		if err := makeLoopVolume(ctx, p.mkfs, p.mount, filepath.Join(dir, "disk.img"), vol, dir, eff.DiskBytes); err != nil {
			cleanup()
			return nil, fmt.Errorf("create sandbox: %w", err)
		}
	default:
		data := filepath.Join(dir, "vol")
		if err := os.Mkdir(data, 0o755); err != nil {
			cleanup()
			return nil, fmt.Errorf("create sandbox: %w", err)
		}
		if p.bindVolumes {
			if err := bindVolume(data, vol, dir); err != nil {
				cleanup()
				return nil, fmt.Errorf("create sandbox: %w", err)
			}
		}
	}
	for _, d := range []string{"repo", "tmp", "tmp/home"} {
		if err := os.Mkdir(filepath.Join(vol, d), 0o755); err != nil {
			cleanup()
			return nil, fmt.Errorf("create sandbox: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(vol, "tmp"), 0o1777); err != nil {
		cleanup()
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	if s.uid >= 0 {
		// The unprivileged user must be able to reach its volume (in the
		// sandbox dir in the measuring disk mode) and own its workspace
		// and home.
		reach := []string{vol}
		if !p.mountsVolumes() {
			reach = append(reach, dir)
		}
		for _, d := range reach {
			if err := os.Chmod(d, 0o711); err != nil {
				cleanup()
				return nil, fmt.Errorf("create sandbox: %w", err)
			}
		}
		// 0700: another sandbox's uid cannot even read them. tmp is only
		// this uid's (it is /tmp itself with a bwrap without --size).
		for _, d := range []string{"repo", "tmp", "tmp/home"} {
			if err := os.Chown(filepath.Join(vol, d), s.uid, s.gid); err != nil {
				cleanup()
				return nil, fmt.Errorf("create sandbox: %w", err)
			}
			if err := os.Chmod(filepath.Join(vol, d), 0o700); err != nil {
				cleanup()
				return nil, fmt.Errorf("create sandbox: %w", err)
			}
		}
	}
	fd, err := unix.Open(filepath.Join(vol, "repo"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("create sandbox: open workspace: %w", err)
	}
	s.rootfd = fd
	if p.cg != nil {
		if err := p.cg.create(id, eff); err != nil {
			_ = unix.Close(fd)
			_ = p.cg.remove(ctx, id)
			cleanup()
			return nil, fmt.Errorf("create sandbox: cgroup: %w", err)
		}
	}
	p.mu.Lock()
	p.live[id] = s
	p.mu.Unlock()
	return s, nil
}

// Health runs a trivial command under bwrap, proving namespaces, mounts and
// the binary all work right now.
func (p *Provider) Health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	args := append([]string{}, p.staticArgs...)
	args = append(args, "--tmpfs", "/tmp", "--", "true")
	cmd := exec.CommandContext(ctx, p.bwrap, args...)
	cmd.Env = hostEnv()
	cmd.Dir = "/"
	if p.unprivileged {
		cmd.SysProcAttr = credentials(p.uidBase, p.uidBase)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("bwrap health check: %v: %s: %w", err, strings.TrimSpace(string(out)), sandbox.ErrUnavailable)
	}
	return nil
}

// Destroy removes a sandbox by id: a live one is closed, an orphan left by
// a previous process has its processes killed and its directory and cgroup
// removed. Unknown ids are not an error; malformed ones are.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("destroy sandbox %q: not a local sandbox id", id)
	}
	p.mu.Lock()
	s := p.live[id]
	p.mu.Unlock()
	if s != nil {
		return s.Close(ctx)
	}
	var errs []error
	if p.cg != nil {
		if err := p.cg.remove(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	// A workspace overlay (layer.go) goes before the volume under it.
	if err := unmountLayer(filepath.Join(p.volumeDir, id)); err != nil {
		errs = append(errs, err)
	} else if err := p.removeVolume(id); err != nil {
		errs = append(errs, err)
	} else if err := removeTree(filepath.Join(p.baseDir, id)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("destroy sandbox %s: %w", id, err)
	}
	return nil
}

// removeVolume unmounts and deletes sandbox id's volume mount, if any.
func (p *Provider) removeVolume(id string) error {
	if !p.mountsVolumes() {
		return nil
	}
	return removeVolume(filepath.Join(p.volumeDir, id))
}

// mountsVolumes says whether sandbox volumes are mounts in the volume dir
// (a loop device's, or a bind mount of the sandbox dir's "vol").
func (p *Provider) mountsVolumes() bool { return p.diskMode == diskLoop || p.bindVolumes }

// Holds reports whether a sandbox's directory exists on this host (live,
// or left by a process that died), for the Manager's orphan reaper.
func (p *Provider) Holds(id string) bool {
	if !idPattern.MatchString(id) {
		return false
	}
	_, err := os.Lstat(filepath.Join(p.baseDir, id))
	return err == nil
}

// Local lists the sandbox directories under the base directory with their
// modification times.
func (p *Provider) Local() (map[string]time.Time, error) {
	ents, err := os.ReadDir(p.baseDir)
	if err != nil {
		return nil, fmt.Errorf("list local sandboxes: %w", err)
	}
	out := map[string]time.Time{}
	for _, e := range ents {
		if !idPattern.MatchString(e.Name()) {
			continue
		}
		if info, err := e.Info(); err == nil {
			out[e.Name()] = info.ModTime()
		}
	}
	return out, nil
}

var _ sandbox.LocalProvider = (*Provider)(nil)

// Live returns the ids of the sandboxes this provider has open.
func (p *Provider) Live() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.live))
	for id := range p.live {
		ids = append(ids, id)
	}
	return ids
}

// DiskMode says how Limits.DiskBytes is enforced: "loop" (a loop-mounted
// volume, by the kernel) or "check" (by measuring usage).
func (p *Provider) DiskMode() string { return p.diskMode }

// CgroupMode says how limits are enforced: "cgroup-v1", "cgroup-v2",
// "uid" (rlimits, RLIMIT_NPROC per sandbox uid) or "rlimit" (process count
// unenforced). Under a root hero the cgroup modes run commands under
// per-sandbox uids too.
func (p *Provider) CgroupMode() string {
	switch {
	case p.cg != nil && p.cg.v2:
		return "cgroup-v2"
	case p.cg != nil:
		return "cgroup-v1"
	case p.unprivileged:
		return "uid"
	default:
		return "rlimit"
	}
}

func (p *Provider) forget(id string) {
	p.mu.Lock()
	delete(p.live, id)
	p.mu.Unlock()
}

// allocUID hands out the first uid of the range that no sandbox on this
// host holds, whichever provider or hero process made it: two sandboxes
// sharing a uid could change each other's files, and RLIMIT_NPROC would
// count them together. A uid is held by an flock on its file in
// uidLockDir, which the kernel lets go when the holder dies.
func (p *Provider) allocUID() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := os.MkdirAll(p.uidLockDir, 0o700); err != nil {
		return 0, fmt.Errorf("sandbox uids: %w", err)
	}
	for i := range p.uidCount {
		uid := p.uidBase + i
		if p.uidLocks[uid] != nil {
			continue
		}
		f, err := os.OpenFile(filepath.Join(p.uidLockDir, strconv.Itoa(uid)), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return 0, fmt.Errorf("sandbox uids: %w", err)
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close() // another provider's sandbox has it
			continue
		}
		p.uidLocks[uid] = f
		return uid, nil
	}
	return 0, fmt.Errorf("all %d sandbox uids are in use", p.uidCount)
}

func (p *Provider) releaseUID(uid int) {
	p.mu.Lock()
	if f := p.uidLocks[uid]; f != nil {
		f.Close()
	}
	delete(p.uidLocks, uid)
	p.mu.Unlock()
}

func mergeLimits(dst *sandbox.Limits, src sandbox.Limits) {
	if src.MemoryBytes > 0 {
		dst.MemoryBytes = src.MemoryBytes
	}
	if src.CPUSeconds > 0 {
		dst.CPUSeconds = src.CPUSeconds
	}
	if src.Processes > 0 {
		dst.Processes = src.Processes
	}
	if src.FileSizeBytes > 0 {
		dst.FileSizeBytes = src.FileSizeBytes
	}
	if src.DiskBytes > 0 {
		dst.DiskBytes = src.DiskBytes
	}
}

func checkLimits(l sandbox.Limits) error {
	if l.MemoryBytes < 0 || l.CPUSeconds < 0 || l.Processes < 0 || l.FileSizeBytes < 0 || l.DiskBytes < 0 {
		return errors.New("limits must not be negative")
	}
	if l.DiskBytes > 0 && l.DiskBytes < minDiskBytes {
		return fmt.Errorf("a disk limit of %d bytes is too small: the least is %d MB", l.DiskBytes, minDiskBytes>>20)
	}
	return nil
}

func cloneSpec(s sandbox.Spec) sandbox.Spec {
	out := s
	out.Env = make(map[string]string, len(s.Env))
	for k, v := range s.Env {
		out.Env[k] = v
	}
	out.Labels = make(map[string]string, len(s.Labels))
	for k, v := range s.Labels {
		out.Labels[k] = v
	}
	return out
}

func validateEnv(env map[string]string) error {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("environment variable name %q is invalid", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("environment variable %s contains a NUL byte", k)
		}
	}
	return nil
}

func probeOpenat2() error {
	fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH})
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// searchableByOthers checks that every ancestor of dir has the x bit for
// others, so an unprivileged uid can reach it.
func searchableByOthers(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users (chmod o+x %s)", d, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// removeTree deletes a directory tree even when a sandboxed command left
// directories without write or search permission in it.
func removeTree(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
