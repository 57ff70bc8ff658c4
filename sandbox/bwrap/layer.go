package bwrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
// layer as the sandbox's usage) and when commands run as hero's own uid
// (a per-sandbox uid could not modify the base's files).
func (s *Sandbox) LayerWorkspace(ctx context.Context, base string) error {
	if s.p.diskMode != diskLoop || s.uid >= 0 {
		return fmt.Errorf("layer workspace: needs loop-mounted volumes and no per-sandbox uid: %w", errors.ErrUnsupported)
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
	upper, work := filepath.Join(s.vol, "layer", "upper"), filepath.Join(s.vol, "layer", "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("layer workspace: %w", err)
		}
	}
	// redirect_dir: renaming a directory of the base works (instead of
	// EXDEV); no index, no metacopy: plain copy-up of what is changed.
	opts := "lowerdir=" + abs + ",upperdir=" + upper + ",workdir=" + work + ",redirect_dir=on,index=off,metacopy=off"
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
