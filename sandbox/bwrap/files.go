package bwrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hero-dev/hero/sandbox"
)

// The file methods never build a host path from user input: every path is
// resolved by openat2 with RESOLVE_BENEATH against the workspace's
// directory fd, so ".." and symlinks (absolute, or climbing out) are refused
// by the kernel atomically, even while sandboxed commands change the tree.

func (s *Sandbox) open(rel string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(s.rootfd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// mapErr turns a syscall error into the package's sentinel errors.
func mapErr(op, p string, err error) error {
	switch {
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%s %q: resolves outside the workspace: %w", op, p, sandbox.ErrOutsideWorkspace)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s %q: %w", op, p, sandbox.ErrNotFound)
	default:
		return &fs.PathError{Op: op, Path: p, Err: err}
	}
}

// prepare checks the sandbox state, ctx and the path; the returned done
// must be called when the operation ends.
func (s *Sandbox) prepare(ctx context.Context, op, p string) (string, func(), error) {
	if err := s.begin(op); err != nil {
		return "", nil, err
	}
	if err := ctx.Err(); err != nil {
		s.end()
		return "", nil, fmt.Errorf("%s %q: %w", op, p, err)
	}
	rel, err := sandbox.CleanRel(p)
	if err != nil {
		s.end()
		return "", nil, fmt.Errorf("%s %q: %w", op, p, err)
	}
	return rel, s.end, nil
}

// ReadFile returns a file's contents; a path that is not a regular file
// is refused with sandbox.ErrNotRegularFile.
func (s *Sandbox) ReadFile(ctx context.Context, p string) ([]byte, error) {
	rel, done, err := s.prepare(ctx, "read", p)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := s.openRegular("read", p, rel, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", p, err)
	}
	return data, nil
}

// openRegular opens an existing regular file for I/O. The path is resolved
// once, to an O_PATH descriptor that pins the inode; the type is checked on
// that descriptor, and only a regular file is then opened for reading or
// writing, through /proc/self/fd. So a named pipe, socket or device planted
// by a command is never opened (no hang on a FIFO, no side effect of
// opening a device), and nothing can be swapped in between check and open.
func (s *Sandbox) openRegular(op, p, rel string, flags int) (*os.File, error) {
	pfd, err := s.open(rel, unix.O_PATH, 0)
	if err != nil {
		return nil, mapErr(op, p, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, mapErr(op, p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s %q: is %s: %w", op, p, kindOf(st.Mode), sandbox.ErrNotRegularFile)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", pfd), flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, mapErr(op, p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// kindOf names a non-regular file type for messages ("a named pipe").
func kindOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a named pipe"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "a special file"
}

// WriteFile creates or truncates a file, creating parent directories; an
// existing path that is not a regular file is refused with
// sandbox.ErrNotRegularFile.
func (s *Sandbox) WriteFile(ctx context.Context, p string, data []byte, perm fs.FileMode) error {
	rel, done, err := s.prepare(ctx, "write", p)
	if err != nil {
		return err
	}
	defer done()
	if rel == "." {
		return fmt.Errorf("write %q: is the workspace root", p)
	}
	if perm == 0 {
		perm = 0o644
	}
	if err := s.mkdirAll(path.Dir(rel)); err != nil {
		return mapErr("write", p, err)
	}
	var f *os.File
	// A new file is created exclusively (O_EXCL does not follow a final
	// symlink); an existing one is opened only if it is a regular file.
	fd, err := s.open(rel, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, uint32(perm.Perm()))
	switch {
	case err == nil:
		f = os.NewFile(uintptr(fd), p)
	case errors.Is(err, unix.EEXIST):
		if f, err = s.openRegular("write", p, rel, unix.O_WRONLY); err != nil {
			return err
		}
	default:
		return mapErr("write", p, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return fmt.Errorf("write %q: %w", p, err)
	}
	if s.uid >= 0 {
		_ = f.Chown(s.uid, s.gid)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q: %w", p, err)
	}
	return nil
}

// mkdirAll creates rel and its parents, each resolved beneath the root.
func (s *Sandbox) mkdirAll(rel string) error {
	if rel == "." {
		return nil
	}
	if fd, err := s.open(rel, unix.O_PATH|unix.O_DIRECTORY, 0); err == nil {
		return unix.Close(fd)
	}
	parts := strings.Split(rel, "/")
	parent := "."
	for _, name := range parts {
		pfd, err := s.open(parent, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(pfd, name, 0o755)
		if err == nil && s.uid >= 0 {
			_ = unix.Fchownat(pfd, name, s.uid, s.gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		_ = unix.Close(pfd)
		if err != nil && err != unix.EEXIST {
			return err
		}
		parent = path.Join(parent, name)
	}
	fd, err := s.open(rel, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// Stat describes a path, following a final symlink that stays inside.
func (s *Sandbox) Stat(ctx context.Context, p string) (sandbox.FileInfo, error) {
	rel, done, err := s.prepare(ctx, "stat", p)
	if err != nil {
		return sandbox.FileInfo{}, err
	}
	defer done()
	fd, err := s.open(rel, unix.O_PATH, 0)
	if err != nil {
		return sandbox.FileInfo{}, mapErr("stat", p, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return sandbox.FileInfo{}, mapErr("stat", p, err)
	}
	return fileInfo(rel, &st), nil
}

// List returns the entries under p sorted by path, depth first when
// recursive. Symlinks are listed, not followed; .git is listed but not
// descended into.
func (s *Sandbox) List(ctx context.Context, p string, recursive bool) ([]sandbox.FileInfo, error) {
	rel, done, err := s.prepare(ctx, "list", p)
	if err != nil {
		return nil, err
	}
	defer done()
	fd, err := s.open(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, mapErr("list", p, err)
	}
	var out []sandbox.FileInfo
	if err := s.listDir(ctx, fd, rel, recursive, &out); err != nil {
		return nil, fmt.Errorf("list %q: %w", p, err)
	}
	return out, nil
}

// listDir reads the directory fd (and closes it). Subdirectories are opened
// relative to it with O_NOFOLLOW, so a directory swapped for a symlink
// mid-walk is skipped rather than followed.
func (s *Sandbox) listDir(ctx context.Context, fd int, rel string, recursive bool, out *[]sandbox.FileInfo) error {
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // removed meanwhile
		}
		child := path.Join(rel, name)
		info := fileInfo(child, &st)
		*out = append(*out, info)
		if !recursive || !info.IsDir || name == ".git" {
			continue
		}
		cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if err := s.listDir(ctx, cfd, child, true, out); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes a file, a symlink (not its target) or an empty directory,
// or a whole tree when recursive is set.
func (s *Sandbox) Remove(ctx context.Context, p string, recursive bool) error {
	rel, done, err := s.prepare(ctx, "remove", p)
	if err != nil {
		return err
	}
	defer done()
	if rel == "." {
		return fmt.Errorf("remove %q: refusing to remove the workspace root", p)
	}
	pfd, err := s.open(path.Dir(rel), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return mapErr("remove", p, err)
	}
	defer unix.Close(pfd)
	name := path.Base(rel)
	err = unix.Unlinkat(pfd, name, 0)
	if err == unix.EISDIR || err == unix.EPERM {
		if recursive {
			err = removeAllAt(ctx, pfd, name)
		} else {
			err = unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
		}
	}
	if err != nil {
		return mapErr("remove", p, err)
	}
	return nil
}

func removeAllAt(ctx context.Context, pfd int, name string) error {
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	for {
		names, err := f.Readdirnames(1024)
		for _, n := range names {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			e := unix.Unlinkat(fd, n, 0)
			if e == unix.EISDIR || e == unix.EPERM {
				e = removeAllAt(ctx, fd, n)
			}
			if e != nil && e != unix.ENOENT {
				return e
			}
		}
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			return err
		}
	}
	return unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
}

func fileInfo(rel string, st *unix.Stat_t) sandbox.FileInfo {
	if rel == "." {
		rel = ""
	}
	mode := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if st.Mode&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return sandbox.FileInfo{
		Path:    rel,
		Size:    st.Size,
		Mode:    mode,
		ModTime: time.Unix(st.Mtim.Unix()),
		IsDir:   mode.IsDir(),
	}
}
