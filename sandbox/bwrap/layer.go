package bwrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hero-dev/hero/sandbox"
)

var _ sandbox.LayeredWorkspace = (*Sandbox)(nil)

// LayerWorkspace makes the workspace an overlay: base is the read-only
// lower layer, and everything the run changes goes to an upper layer on
// the sandbox's own volume (<id>/vol/layer, bound nowhere in the
// sandbox), so it counts against the disk limit and dies with the
// sandbox. Measured on a 10,000-file checkout: 0.01 s, against 1.5 s to
// copy it.
//
// Only in the loop disk mode (the measuring mode would count the lower
// layer as the sandbox's usage). When commands run under a per-sandbox
// uid, the lower layer is an idmapped mount of base in which hero's files
// belong to that uid (idmapLower), or they could not be changed.
func (s *Sandbox) LayerWorkspace(ctx context.Context, base string) error {
	if s.p.diskMode != diskLoop {
		return fmt.Errorf("layer workspace: needs loop-mounted volumes: %w", errors.ErrUnsupported)
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("layer workspace: %w", err)
	}
	// overlayfs options are comma and colon separated.
	if strings.ContainsAny(abs, ",:\\\x00") {
		return fmt.Errorf("layer workspace: base path %q has characters overlayfs options cannot carry: %w", abs, errors.ErrUnsupported)
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return fmt.Errorf("layer workspace: base %s is not a directory", abs)
	}
	if err := s.begin("layer workspace"); err != nil {
		return err
	}
	defer s.end()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.running) > 0 || s.layered {
		return errors.New("layer workspace: the workspace is already in use")
	}
	repo := filepath.Join(s.vol, "repo")
	if ents, err := os.ReadDir(repo); err != nil || len(ents) > 0 {
		return fmt.Errorf("layer workspace: the workspace is not empty (%v)", err)
	}
	layer := filepath.Join(s.vol, "layer")
	upper, work := filepath.Join(layer, "upper"), filepath.Join(layer, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("layer workspace: %w", err)
		}
	}
	lower := abs
	if s.uid >= 0 {
		// Nothing here is the sandbox uid's to reach but the overlay.
		if err := os.Chmod(layer, 0o700); err != nil {
			return fmt.Errorf("layer workspace: %w", err)
		}
		// The overlay's root is the upper dir: the sandbox's, like repo.
		if err := os.Chown(upper, s.uid, s.gid); err != nil {
			return fmt.Errorf("layer workspace: %w", err)
		}
		if err := os.Chmod(upper, 0o700); err != nil {
			return fmt.Errorf("layer workspace: %w", err)
		}
		lower = filepath.Join(layer, "lower")
		if err := os.Mkdir(lower, 0o700); err != nil {
			return fmt.Errorf("layer workspace: %w", err)
		}
		if err := idmapLower(abs, lower, s.uid, s.gid); err != nil {
			return fmt.Errorf("layer workspace: %v: %w", err, errors.ErrUnsupported)
		}
		// The overlay keeps its own private clone of the lower mount:
		// this one is not needed once it is mounted (or failed to).
		defer func() { _ = unix.Unmount(lower, unix.MNT_DETACH) }()
	}
	// redirect_dir: renaming a directory of the base works (instead of
	// EXDEV); no index, no metacopy: plain copy-up of what is changed.
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",redirect_dir=on,index=off,metacopy=off"
	if err := unix.Mount("overlay", repo, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("layer workspace: mount overlay: %v: %w", err, errors.ErrUnsupported)
	}
	fd, err := unix.Open(repo, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = unix.Unmount(repo, unix.MNT_DETACH)
		return fmt.Errorf("layer workspace: open workspace: %w", err)
	}
	_ = unix.Close(s.rootfd)
	s.rootfd = fd
	s.layered = true
	return nil
}

// unmountLayer removes a workspace overlay, if there is one, before the
// volume under it goes.
func unmountLayer(vol string) error {
	return unmountVolume(filepath.Join(vol, "repo"))
}

// idmapLower mounts base read-only at dst with hero's uid and gid shown as
// uid and gid, so that a sandbox running as uid may change (copy up) the
// base's files in its overlay. The base itself stays hero's and shared.
func idmapLower(base, dst string, uid, gid int) error {
	userns, err := idmapUserns(os.Geteuid(), os.Getegid(), uid, gid)
	if err != nil {
		return err
	}
	defer userns.Close()
	fd, err := unix.OpenTree(unix.AT_FDCWD, base, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", base, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("idmap %s: %w", base, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount idmapped %s: %w", base, err)
	}
	return nil
}

// idmapUserns returns a user namespace mapping fromUID/fromGID to
// toUID/toGID, as idmapped mounts take it: held by a short-lived child
// (cat, waiting on its stdin) created in it, which is let go once the
// namespace is open.
func idmapUserns(fromUID, fromGID, toUID, toGID int) (*os.File, error) {
	cat := systemTool("cat")
	if cat == "" {
		return nil, errors.New("cat not found")
	}
	cmd := exec.Command(cat)
	cmd.Env = hostEnv()
	cmd.Dir = "/"
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: fromUID, HostID: toUID, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: fromGID, HostID: toGID, Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("user namespace for the idmap: %w", err)
	}
	ns, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	stdin.Close()
	_ = cmd.Wait()
	if err != nil {
		return nil, fmt.Errorf("user namespace for the idmap: %w", err)
	}
	return ns, nil
}
