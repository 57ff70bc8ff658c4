package bwrap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hero-dev/hero/sandbox"
)

// Sandbox is one bubblewrap sandbox. It implements sandbox.Sandbox and
// sandbox.HostWorkspace.
type Sandbox struct {
	p      *Provider
	id     string
	dir    string
	vol    string // the disk volume: repo and tmp/home
	spec   sandbox.Spec
	limits sandbox.Limits
	rootfd int
	uid    int // -1 unless the sandbox runs under its own unprivileged uid
	gid    int

	mu      sync.Mutex
	layered bool // the workspace is an overlay (layer.go)
	closed  bool
	busy    sync.WaitGroup
	running map[*run]struct{}
}

var _ sandbox.Sandbox = (*Sandbox)(nil)
var _ sandbox.HostWorkspace = (*Sandbox)(nil)

// run is one command in flight, killable through the pidfd of its pid
// namespace's init.
type run struct {
	pidfd   int
	pid1    int
	monitor *os.Process
}

func (r *run) kill() {
	if r.pidfd >= 0 {
		_ = unix.PidfdSendSignal(r.pidfd, unix.SIGKILL, nil, 0)
	}
	_ = r.monitor.Kill()
}

// waitExit blocks until the namespace's init has exited (its pidfd turns
// readable); the kernel kills and reaps the whole namespace before that.
func (r *run) waitExit(limit time.Duration) {
	if r.pidfd < 0 {
		return
	}
	fds := []unix.PollFd{{Fd: int32(r.pidfd), Events: unix.POLLIN}}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds())+1)
		if n > 0 || (err != nil && err != unix.EINTR) {
			return
		}
	}
}

// ID is "bw-" and 16 hex digits.
func (s *Sandbox) ID() string { return s.id }

// HostDir is the workspace's directory on this host, for hydration that
// copies files directly instead of streaming them through a command.
func (s *Sandbox) HostDir() string { return filepath.Join(s.vol, "repo") }

// HostOwner is who must own files placed into HostDir so that commands in
// the sandbox can change them.
func (s *Sandbox) HostOwner() (uid, gid int) {
	if s.uid >= 0 {
		return s.uid, s.gid
	}
	return os.Geteuid(), os.Getegid()
}

// Limits are the effective limits (the Spec's, defaults filled in).
func (s *Sandbox) Limits() sandbox.Limits { return s.limits }

// begin registers a call so that Close waits for it; it fails after Close.
func (s *Sandbox) begin(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: sandbox %s: %w", op, s.id, sandbox.ErrClosed)
	}
	s.busy.Add(1)
	return nil
}

func (s *Sandbox) end() { s.busy.Done() }

// Exec runs cmd under bwrap. If ctx ends first, the whole process tree is
// killed and Exec returns Result{Killed: true} with an error wrapping
// ctx.Err(); on Cmd.Timeout it returns Result{TimedOut: true} and no error.
func (s *Sandbox) Exec(ctx context.Context, c sandbox.Cmd) (sandbox.Result, error) {
	if len(c.Args) == 0 || c.Args[0] == "" {
		return sandbox.Result{}, errors.New("exec: empty command")
	}
	if err := validateEnv(c.Env); err != nil {
		return sandbox.Result{}, fmt.Errorf("exec %s: %w", c.Args[0], err)
	}
	if err := s.begin("exec"); err != nil {
		return sandbox.Result{}, err
	}
	defer s.end()
	if err := ctx.Err(); err != nil {
		return sandbox.Result{Killed: true}, fmt.Errorf("exec %s: %w", c.Args[0], err)
	}
	rel, err := sandbox.CleanRel(c.Dir)
	if err != nil {
		return sandbox.Result{}, fmt.Errorf("exec %s: dir %q: %w", c.Args[0], c.Dir, err)
	}
	if rel != "." {
		fd, err := s.open(rel, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return sandbox.Result{}, fmt.Errorf("exec %s: %w", c.Args[0], mapErr("dir", c.Dir, err))
		}
		_ = unix.Close(fd)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = s.p.timeout
	}

	args := make([]string, 0, len(s.p.staticArgs)+24+len(c.Args))
	// Under a sandbox uid the command lowers its own limits with
	// prlimit(1) before bwrap starts: setting another uid's limits takes
	// CAP_SYS_RESOURCE, which a root hero in a container often lacks.
	// Otherwise hero sets them on the namespace's init below.
	selfLimits := s.uid >= 0
	if selfLimits {
		args = append(args, s.prlimitArgs()...)
		args = append(args, s.p.bwrap)
	}
	args = append(args, s.p.staticArgs...)
	network := s.spec.Network || c.Network
	if network {
		if s.p.netErr != nil {
			return sandbox.Result{}, fmt.Errorf("exec %s: network for this command: %v", c.Args[0], s.p.netErr)
		}
		// Its own namespace stays (no --share-net): startNetwork connects it.
		// Names resolve through slirp4netns's forwarder; bwrap copies the
		// file from fd 6, so no host path has to be reachable by the
		// sandbox's uid.
		args = append(args, "--ro-bind-data", "6", "/etc/resolv.conf")
	}
	if s.p.tmpSize {
		args = append(args,
			"--perms", "1777", "--size", strconv.FormatInt(s.tmpBytes(), 10), "--tmpfs", "/tmp",
			"--bind", filepath.Join(s.vol, "tmp", "home"), "/tmp/home")
	} else {
		args = append(args, "--bind", filepath.Join(s.vol, "tmp"), "/tmp")
	}
	args = append(args,
		"--bind", filepath.Join(s.vol, "repo"), sandbox.WorkspaceRoot,
		"--remount-ro", "/",
		"--chdir", path.Join(sandbox.WorkspaceRoot, rel),
		"--info-fd", "3", "--block-fd", "4",
		// The command's environment, read by bwrap from fd 5 (see envArgs).
		"--args", "5",
		"--")
	args = append(args, c.Args...)

	infoR, infoW, err := os.Pipe()
	if err != nil {
		return sandbox.Result{}, fmt.Errorf("exec %s: %w", c.Args[0], err)
	}
	defer infoR.Close()
	blockR, blockW, err := os.Pipe()
	if err != nil {
		infoW.Close()
		return sandbox.Result{}, fmt.Errorf("exec %s: %w", c.Args[0], err)
	}
	defer blockW.Close()
	envFile, err := s.envArgs(c)
	if err != nil {
		infoW.Close()
		blockR.Close()
		return sandbox.Result{}, fmt.Errorf("exec %s: %w", c.Args[0], err)
	}
	defer envFile.Close()
	extra := []*os.File{infoW, blockR, envFile}
	if network {
		resolv, err := memfd("hero-sandbox-resolv", []byte("nameserver "+slirpDNS+"\n"))
		if err != nil {
			infoW.Close()
			blockR.Close()
			return sandbox.Result{}, fmt.Errorf("exec %s: resolv.conf: %w", c.Args[0], err)
		}
		defer resolv.Close()
		extra = append(extra, resolv)
	}

	stderrTail := &tailBuffer{max: 2048}
	bin := s.p.bwrap
	if selfLimits {
		bin, args = args[0], args[1:]
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = hostEnv()
	cmd.Dir = "/" // hero's own working directory may be closed to the sandbox's uid
	cmd.Stdin = c.Stdin
	// One lock for both streams: callers often pass the same writer twice.
	var outMu sync.Mutex
	if c.Stdout != nil {
		cmd.Stdout = &lockedWriter{mu: &outMu, w: c.Stdout}
	}
	if c.Stderr != nil {
		cmd.Stderr = &lockedWriter{mu: &outMu, w: io.MultiWriter(c.Stderr, stderrTail)}
	} else {
		cmd.Stderr = stderrTail
	}
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid), Groups: []uint32{}}
	}
	cmd.WaitDelay = 2 * time.Second

	start := time.Now()
	err = cmd.Start()
	infoW.Close()
	blockR.Close()
	if err != nil {
		return sandbox.Result{}, fmt.Errorf("exec %s: start bwrap: %w", c.Args[0], err)
	}
	r := &run{pidfd: -1, monitor: cmd.Process}
	fail := func(format string, a ...any) (sandbox.Result, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if r.pidfd >= 0 {
			_ = unix.Close(r.pidfd)
		}
		return sandbox.Result{}, fmt.Errorf("exec %s: "+format, append([]any{c.Args[0]}, a...)...)
	}
	pid1, err := readChildPid(infoR)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return sandbox.Result{}, fmt.Errorf("exec %s: bwrap failed to start the sandbox: %v: %s", c.Args[0], err, bytes.TrimSpace(stderrTail.Bytes()))
	}
	r.pid1 = pid1
	if fd, err := unix.PidfdOpen(pid1, 0); err == nil {
		r.pidfd = fd
	}
	// bwrap's init is blocked on fd 4: put it into the cgroup and under the
	// rlimits before any sandboxed code can run or fork.
	if s.p.cg != nil {
		if err := s.p.cg.enter(s.id, pid1); err != nil {
			return fail("%w", err)
		}
	}
	if !selfLimits {
		if err := s.applyRlimits(pid1); err != nil {
			return fail("set limits: %w", err)
		}
	}
	if network {
		n, err := s.p.startNetwork(ctx, pid1)
		if err != nil {
			return fail("network: %w", err)
		}
		defer n.stop()
	}
	oomBefore := 0
	if s.p.cg != nil {
		oomBefore = s.p.cg.oomKills(s.id)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail("%w", sandbox.ErrClosed)
	}
	s.running[r] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, r)
		s.mu.Unlock()
		if r.pidfd >= 0 {
			_ = unix.Close(r.pidfd)
		}
	}()
	if _, err := blockW.Write([]byte{1}); err != nil {
		return fail("release sandbox: %w", err)
	}
	blockW.Close()

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var overDisk <-chan time.Time // the "check" disk mode measures while the command runs
	if s.p.diskMode == diskCheck {
		tick := time.NewTicker(diskCheckEvery)
		defer tick.Stop()
		overDisk = tick.C
	}

	var res sandbox.Result
	var ctxErr error
	diskKilled := false
wait:
	for {
		select {
		case err = <-done:
		case <-timer.C:
			res.TimedOut = true
			r.kill()
			err = <-done
		case <-ctx.Done():
			res.Killed = true
			ctxErr = ctx.Err()
			r.kill()
			err = <-done
		case <-overDisk:
			if !s.overDisk(ctx) {
				continue
			}
			diskKilled, res.Killed = true, true
			r.kill()
			err = <-done
		}
		break wait
	}
	// The monitor is gone; make sure the namespace's init is too, which
	// means every process of the command has been killed and reaped.
	r.kill()
	r.waitExit(5 * time.Second)
	res.Duration = time.Since(start)
	res.ExitCode = exitCode(cmd.ProcessState)
	switch {
	case diskKilled:
		writeNote(c.Stderr, diskLimitMessage(s.limits.DiskBytes, true))
	case s.p.diskMode == diskCheck && s.overDisk(ctx):
		// Written faster than one measurement: the files stay (the model
		// can delete them), and so does the warning until it does.
		res.Killed = true
		if res.ExitCode == 0 {
			res.ExitCode = 1 // the command did not stay within its limit: it failed
		}
		writeNote(c.Stderr, diskLimitMessage(s.limits.DiskBytes, true))
	case s.p.diskMode == diskLoop && res.ExitCode != 0 && volumeFull(s.vol):
		writeNote(c.Stderr, diskLimitMessage(s.limits.DiskBytes, false))
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) && !res.TimedOut && !res.Killed {
		return res, fmt.Errorf("exec %s: %w", c.Args[0], err)
	}
	switch res.ExitCode {
	case 128 + int(syscall.SIGXCPU), 128 + int(syscall.SIGXFSZ):
		res.Killed = true
	case 128 + int(syscall.SIGKILL):
		if s.p.cg != nil && s.p.cg.oomKills(s.id) > oomBefore {
			res.Killed = true
		}
	}
	if ctxErr != nil {
		return res, fmt.Errorf("exec %s: %w", c.Args[0], ctxErr)
	}
	return res, nil
}

// overDisk measures the volume in the "check" disk mode.
func (s *Sandbox) overDisk(ctx context.Context) bool {
	used, err := diskUsage(ctx, s.vol)
	return err == nil && used > s.limits.DiskBytes
}

// tmpBytes is the size of the /tmp tmpfs: it is memory, so never more than
// the memory limit, and never more than the disk limit.
func (s *Sandbox) tmpBytes() int64 {
	n := s.limits.DiskBytes
	if m := s.limits.MemoryBytes; m > 0 && m < n {
		n = m
	}
	return n
}

// env is the command's whole environment inside the sandbox: hero's fixed
// variables, then Spec.Env (unless c.NoSecrets), then Cmd.Env.
func (s *Sandbox) env(c sandbox.Cmd) []string {
	m := map[string]string{
		"PATH":   s.p.path,
		"HOME":   "/tmp/home",
		"LANG":   "C.UTF-8",
		"TMPDIR": "/tmp",
		"USER":   "sandbox",
	}
	if !c.NoSecrets {
		for k, v := range s.spec.Env {
			m[k] = v
		}
	}
	for k, v := range c.Env {
		m[k] = v
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// envArgs returns a file holding bwrap arguments that give the sandboxed
// command its environment: --clearenv, then --setenv for each variable,
// NUL-separated, for bwrap's "--args 5".
//
// Why not the environment of the bwrap process (as before): bwrap runs on
// the host (as hero's user or the sandbox's uid) before any namespace
// exists, so the dynamic loader and libc act on its environment there — a
// project secret named LD_PRELOAD ran a shared object from the workspace
// as root on the host.
// bwrap itself now gets hostEnv and nothing else. Why not --setenv on the
// command line: argv is world-readable in /proc/PID/cmdline, and these
// values are secrets. bwrap reads --args from the fd and closes it before
// the command starts; a memfd needs no writer goroutine and nothing on disk.
func (s *Sandbox) envArgs(c sandbox.Cmd) (*os.File, error) {
	var b bytes.Buffer
	b.WriteString("--clearenv\x00")
	for _, kv := range s.env(c) {
		k, v, _ := strings.Cut(kv, "=")
		b.WriteString("--setenv\x00" + k + "\x00" + v + "\x00")
	}
	f, err := memfd("hero-sandbox-env", b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	return f, nil
}

// memfd is an in-memory file holding data, positioned at its start, for a
// child to read.
func memfd(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write memfd: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("write memfd: %w", err)
	}
	return f, nil
}

// rlimit is one resource limit of every process of a command.
type rlimit struct {
	res  int    // unix.RLIMIT_*
	name string // its name in errors
	flag string // prlimit(1)'s option
	v    uint64
}

// rlimits are a command's resource limits, applied by hero to the
// namespace's init (applyRlimits) or, under a sandbox uid, by the command
// to itself (prlimitArgs).
func (s *Sandbox) rlimits() []rlimit {
	l := s.limits
	var rs []rlimit
	if l.CPUSeconds > 0 {
		rs = append(rs, rlimit{unix.RLIMIT_CPU, "RLIMIT_CPU", "cpu", uint64(l.CPUSeconds)})
	}
	if l.FileSizeBytes > 0 {
		rs = append(rs, rlimit{unix.RLIMIT_FSIZE, "RLIMIT_FSIZE", "fsize", uint64(l.FileSizeBytes)})
	}
	// Without a memory cgroup, address space is the only memory cap.
	if l.MemoryBytes > 0 && (s.p.cg == nil || !s.p.cg.memory) {
		rs = append(rs, rlimit{unix.RLIMIT_AS, "RLIMIT_AS", "as", uint64(l.MemoryBytes)})
	}
	// Without cgroups, RLIMIT_NPROC caps the processes; under a sandbox
	// uid, which is the sandbox's alone, it counts exactly its processes.
	if l.Processes > 0 && s.p.cg == nil {
		rs = append(rs, rlimit{unix.RLIMIT_NPROC, "RLIMIT_NPROC", "nproc", uint64(l.Processes)})
	}
	return rs
}

func (s *Sandbox) applyRlimits(pid int) error {
	for _, r := range s.rlimits() {
		var old unix.Rlimit
		if err := unix.Prlimit(pid, r.res, nil, &old); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		v := r.v
		if old.Max != unix.RLIM_INFINITY && v > old.Max {
			v = old.Max
		}
		lim := unix.Rlimit{Cur: v, Max: v}
		if err := unix.Prlimit(pid, r.res, &lim, nil); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	return nil
}

// prlimitArgs is the prlimit(1) prefix that applies the limits under a
// sandbox uid.
func (s *Sandbox) prlimitArgs() []string {
	args := []string{s.p.prlimit}
	for _, r := range s.rlimits() {
		args = append(args, fmt.Sprintf("--%s=%d", r.flag, r.v))
	}
	return args
}

// Alive checks that the sandbox is open and its workspace still exists.
func (s *Sandbox) Alive(ctx context.Context) error {
	if err := s.begin("alive"); err != nil {
		return err
	}
	defer s.end()
	var st unix.Stat_t
	if err := unix.Fstat(s.rootfd, &st); err != nil {
		return fmt.Errorf("alive: sandbox %s: %w", s.id, err)
	}
	if st.Nlink == 0 {
		return fmt.Errorf("alive: sandbox %s: workspace was deleted", s.id)
	}
	return nil
}

// Close kills every running command, waits for in-flight calls, and
// deletes the workspace and cgroup. It is idempotent.
func (s *Sandbox) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for r := range s.running {
		r.kill()
	}
	s.mu.Unlock()
	s.busy.Wait()
	_ = unix.Close(s.rootfd)
	var errs []error
	if err := unmountLayer(s.vol); err != nil {
		errs = append(errs, err)
	}
	if s.p.cg != nil {
		if err := s.p.cg.remove(ctx, s.id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.p.removeVolume(s.id); err != nil {
		errs = append(errs, err)
	} else if err := removeTree(s.dir); err != nil {
		errs = append(errs, err)
	}
	if s.uid >= 0 {
		s.p.releaseUID(s.uid)
	}
	s.p.forget(s.id)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sandbox %s: %w", s.id, err)
	}
	return nil
}

// readChildPid reads bwrap's --info-fd JSON, which it writes and closes
// once the sandbox's init process exists.
func readChildPid(r io.Reader) (int, error) {
	data, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return 0, fmt.Errorf("read bwrap info: %w", err)
	}
	if len(data) == 0 {
		return 0, errors.New("bwrap exited before creating the sandbox")
	}
	var info struct {
		ChildPid int `json:"child-pid"`
	}
	if err := json.Unmarshal(data, &info); err != nil || info.ChildPid <= 0 {
		return 0, fmt.Errorf("unexpected bwrap info %q", data)
	}
	return info.ChildPid, nil
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// tailBuffer keeps the last max bytes written, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func credentials(uid, gid int) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
}
