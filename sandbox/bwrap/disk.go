package bwrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Disk limits. A sandbox's files on the host (its workspace and HOME) live
// in one volume directory, <id>/vol, capped at Limits.DiskBytes; /tmp is a
// tmpfs of its own capped by bwrap's --size.
//
// How the volume is capped, best first (New picks and logs it):
//
//   - "loop": the volume is a sparse ext4 image, loop-mounted. The kernel
//     refuses the write that would pass the limit (ENOSPC), whatever the
//     command does (fallocate, many files, hard links). Measured here: 0.1 s
//     and about 4 MB of host disk per sandbox to create a 10 GB volume
//     (no journal, lazy inode tables; the image only grows with data, and
//     deleted files give their blocks back through discard), made ahead of
//     the Create that uses it (spare.go). Needs root and loop devices.
//   - "check": the volume is a plain directory whose usage hero measures
//     every second while a command runs and after it; a command that passes
//     the limit is killed and told why. Portable, but a burst of writes
//     between two measurements can overshoot, bounded per file by the
//     file-size rlimit. Used when loop devices are not available (rootless
//     hero, containers without /dev/loop-control).
//
// Project quotas (ext4/XFS prjquota) would be cheaper than both but need a
// filesystem mounted for them, which hero cannot assume.
const (
	diskLoop  = "loop"
	diskCheck = "check"
)

// minDiskBytes is the smallest volume: ext4 needs room for its metadata.
const minDiskBytes = 16 << 20

// diskCheckEvery is the measuring period of the "check" mode.
const diskCheckEvery = time.Second

// loopTools checks what loop-mounted volumes need besides a kernel that
// can mount them (which only making one proves: New's first spare volume)
// and prepares dir, where they are mounted.
func loopTools(dir string) (mkfs, mount string, err error) {
	if os.Geteuid() != 0 {
		return "", "", errors.New("loop-mounted volumes need root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return "", "", fmt.Errorf("no loop devices: %w", err)
	}
	if mkfs = systemTool("mkfs.ext4"); mkfs == "" {
		return "", "", errors.New("mkfs.ext4 not found (apt-get install e2fsprogs)")
	}
	if mount = systemTool("mount"); mount == "" {
		return "", "", errors.New("mount not found (apt-get install mount)")
	}
	// 0711: sandboxes that run under their own uid must reach their
	// volume's mount point; nobody can list the others.
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", "", fmt.Errorf("volume dir: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return "", "", fmt.Errorf("volume dir: %w", err)
	}
	return mkfs, mount, nil
}

// systemTool finds a program in the system directories (never through
// PATH, which is hero's caller's).
func systemTool(name string) string {
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name)
		}
	}
	return ""
}

// makeLoopVolume makes img (new, or empty) a sparse ext4 image of size
// bytes and mounts it at vol (created), noting in vol+".owner" the path
// it belongs to (a sandbox directory, or a spare's image; sweepVolumes).
func makeLoopVolume(ctx context.Context, mkfs, mount, img, vol, owner string, size int64) error {
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("disk image: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("disk image: %w", err)
	}
	// No journal (the volume is thrown away after a crash), no reserved
	// blocks, inode tables left to read as the image's zero holes.
	if err := hostRun(ctx, mkfs, "-q", "-F", "-m", "0", "-O", "^has_journal",
		"-E", "lazy_itable_init=1,nodiscard", img); err != nil {
		return fmt.Errorf("format disk image: %w", err)
	}
	if err := writeOwner(vol, owner); err != nil {
		return err
	}
	if err := os.Mkdir(vol, 0o755); err != nil {
		return fmt.Errorf("disk volume: %w", err)
	}
	// mount -o loop attaches a loop device that is freed at unmount.
	if err := hostRun(ctx, mount, "-t", "ext4", "-o", "loop,nosuid,nodev,noatime,discard,noinit_itable", img, vol); err != nil {
		return fmt.Errorf("mount disk image: %w", err)
	}
	// lost+found is for fsck, which a throw-away volume never needs.
	_ = os.Remove(filepath.Join(vol, "lost+found"))
	return nil
}

// bindVolume bind-mounts the directory src at vol (created), noting in
// vol+".owner" the path it belongs to (sweepVolumes): the measuring disk
// mode's volume, where a sandbox uid reaches it.
func bindVolume(src, vol, owner string) error {
	if err := writeOwner(vol, owner); err != nil {
		return err
	}
	if err := os.Mkdir(vol, 0o700); err != nil {
		return fmt.Errorf("disk volume: %w", err)
	}
	if err := unix.Mount(src, vol, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("disk volume: bind mount: %w", err)
	}
	if err := unix.Mount("", vol, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("disk volume: bind mount: %w", err)
	}
	return nil
}

// writeOwner notes which path vol belongs to. Written whole or not at
// all: a sweep in another process must never read a half-written note as
// a missing owner.
func writeOwner(vol, owner string) error {
	if err := os.WriteFile(vol+".owner.tmp", []byte(owner), 0o600); err != nil {
		return fmt.Errorf("disk volume: %w", err)
	}
	if err := os.Rename(vol+".owner.tmp", vol+".owner"); err != nil {
		return fmt.Errorf("disk volume: %w", err)
	}
	return nil
}

// removeVolume unmounts a loop volume and deletes its mount point and
// owner note. Unknown volumes are not an error.
func removeVolume(vol string) error {
	if err := unmountVolume(vol); err != nil {
		return err
	}
	if err := os.Remove(vol); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove volume: %w", err)
	}
	for _, f := range []string{vol + ".owner", vol + ".owner.tmp"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove volume: %w", err)
		}
	}
	return nil
}

// sweepVolumes removes the volumes under dir whose sandbox directory no
// longer exists: a sandbox deleted without Close (a test's temporary
// directory, an operator's rm -rf) leaves its image attached and mounted,
// and this is where that ends. It returns how many it removed.
func sweepVolumes(dir string) int {
	owners, _ := filepath.Glob(filepath.Join(dir, "*.owner"))
	n := 0
	for _, o := range owners {
		data, err := os.ReadFile(o)
		if err != nil || !filepath.IsAbs(string(data)) {
			continue
		}
		if _, err := os.Stat(string(data)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		// The note may have moved on since it was read (a spare being
		// claimed by a sandbox of another provider sharing dir): only a
		// note that still names the missing owner is an orphan's.
		if again, err := os.ReadFile(o); err != nil || string(again) != string(data) {
			continue
		}
		if removeVolume(strings.TrimSuffix(o, ".owner")) == nil {
			n++
		}
	}
	return n
}

// unmountVolume unmounts vol if something is mounted there; a plain
// directory is left alone. A busy mount is detached lazily.
func unmountVolume(vol string) error {
	mounted, err := isMountPoint(vol)
	if err != nil || !mounted {
		return nil
	}
	if err := unix.Unmount(vol, 0); err != nil {
		if err := unix.Unmount(vol, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", vol, err)
		}
	}
	return nil
}

// isMountPoint reports whether dir is the root of a mount: its mount id
// differs from its parent's (a bind mount from the same file system has
// the same device), or without mount ids its device does.
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Statx_t
	const mask = unix.STATX_MNT_ID | unix.STATX_INO
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, mask, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	if err := unix.Statx(unix.AT_FDCWD, filepath.Dir(dir), unix.AT_SYMLINK_NOFOLLOW, mask, &parent); err != nil {
		return false, err
	}
	if st.Mask&parent.Mask&unix.STATX_MNT_ID != 0 {
		return st.Mnt_id != parent.Mnt_id, nil
	}
	return st.Dev_major != parent.Dev_major || st.Dev_minor != parent.Dev_minor, nil
}

// hostRun runs a host tool with hero's fixed environment; its output goes
// into the error when it fails.
func hostRun(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = hostEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", filepath.Base(name), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// diskUsage is the space the files under dir take on disk, counting each
// inode once (hard links are not free passes).
func diskUsage(ctx context.Context, dir string) (int64, error) {
	seen := map[[2]uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil // removed meanwhile, or unreadable: skip
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		key := [2]uint64{st.Dev, st.Ino}
		if seen[key] {
			return nil
		}
		seen[key] = true
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// volumeFull reports whether a loop volume has (almost) no space left.
func volumeFull(vol string) bool {
	var st unix.Statfs_t
	if unix.Statfs(vol, &st) != nil {
		return false
	}
	free := int64(st.Bavail) * st.Bsize
	return free < 1<<20
}

// diskLimitMessage is what a command's stderr gets when it hit the limit.
func diskLimitMessage(limit int64, killed bool) string {
	mb := strconv.FormatInt(limit>>20, 10)
	if killed {
		return "\nhero: the workspace exceeded its " + mb + " MB disk limit; the command was killed. Delete files (build output, caches) to make room.\n"
	}
	return "\nhero: the workspace is full: it reached its " + mb + " MB disk limit. Delete files (build output, caches) to make room.\n"
}

// writeNote appends a note to a command's stderr, when it has one.
func writeNote(w io.Writer, note string) {
	if w != nil {
		_, _ = io.WriteString(w, note)
	}
}
