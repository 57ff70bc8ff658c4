package bwrap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hero-dev/hero/sandbox"
)

var _ sandbox.ProviderCloser = (*Provider)(nil)

// Spare volumes. Formatting and mounting a loop volume was most of what
// separated a `hero run` on a one-file repository from its first model
// request (measured on the 2-core dev box: 30–60 ms for New's probe
// volume and 30–90 ms for the sandbox's, of 0.23–0.47 s); a format-once
// image copied per sandbox saved only 6 ms, the mount being the cost.
// So the provider keeps one volume made ahead, off the critical path:
//
//   - Create takes the spare when its size matches (the default disk
//     limit, unless a project sets its own) and starts the next one in
//     the background.
//   - Close leaves the spare mounted for the next process on this data
//     directory: New adopts it, which also proves that loop volumes work
//     on this boot, so the next `hero run` neither probes nor formats.
//   - With nothing to adopt, New makes the spare itself, and that is the
//     probe: if it fails, the provider measures usage instead.
//
// A spare is made for the sandbox id it will get: its image waits in
// <baseDir>/spare/<id>.img and its file system is mounted where that
// sandbox's volume goes (<volumeDir>/<id>), so taking it is a mkdir and
// a rename. The image is flock'ed while a process holds the spare; New
// adopts one whose lock is free and removes the others. Spares are
// invisible to the reapers (there is no <baseDir>/<id> directory), and
// one costs a loop device and about 4 MB of host disk while it waits.

// spareDir holds the images of spare volumes, under the base directory.
const spareDir = "spare"

type spare struct {
	id   string
	size int64
	img  string   // <baseDir>/spare/<id>.img
	lock *os.File // the image, flock'ed while this process holds it
	done chan struct{}
	err  error // set before done is closed
}

// newSpare names a spare volume of size bytes (not made yet).
func (p *Provider) newSpare(size int64) (*spare, error) {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("spare volume: id: %w", err)
	}
	id := "bw-" + hex.EncodeToString(raw[:])
	return &spare{id: id, size: size, img: filepath.Join(p.baseDir, spareDir, id+".img"), done: make(chan struct{})}, nil
}

// makeSpare starts making a spare volume of size bytes in the background,
// unless one is there or under way, or the provider is closed.
func (p *Provider) makeSpare(size int64) {
	if p.diskMode != diskLoop {
		return
	}
	p.mu.Lock()
	if p.spare != nil || p.closed {
		p.mu.Unlock()
		return
	}
	sp, err := p.newSpare(size)
	if err != nil {
		p.mu.Unlock()
		return
	}
	p.spare = sp
	p.building.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.building.Done()
		defer close(sp.done)
		if sp.err = p.buildSpare(sp); sp.err != nil {
			p.log.Warn("could not make a spare disk volume; the next sandbox makes its own", "err", sp.err.Error())
		}
	}()
}

// buildSpare formats and mounts sp's volume. On error nothing is left.
func (p *Provider) buildSpare(sp *spare) error {
	if err := os.MkdirAll(filepath.Dir(sp.img), 0o700); err != nil {
		return fmt.Errorf("spare volume: %w", err)
	}
	// Locked before it is formatted: a New starting meanwhile must not
	// take a spare in the making for a dead process's.
	f, err := os.OpenFile(sp.img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spare volume: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		_ = os.Remove(sp.img)
		return fmt.Errorf("spare volume: lock: %w", err)
	}
	vol := filepath.Join(p.volumeDir, sp.id)
	// The owner note names the image: sweepVolumes leaves the volume
	// alone as long as the image exists.
	if err := makeLoopVolume(context.Background(), p.mkfs, p.mount, sp.img, vol, sp.img, sp.size); err != nil {
		_ = removeVolume(vol)
		f.Close()
		_ = os.Remove(sp.img)
		return err
	}
	sp.lock = f
	return nil
}

// adoptSpare takes over a spare volume left by a process that ended (its
// image unlocked) and still mounted on this boot, and removes the other
// unlocked ones. It returns nil when there is none.
func (p *Provider) adoptSpare() *spare {
	imgs, _ := filepath.Glob(filepath.Join(p.baseDir, spareDir, "bw-*.img"))
	var adopted *spare
	for _, img := range imgs {
		id := strings.TrimSuffix(filepath.Base(img), ".img")
		if !idPattern.MatchString(id) {
			continue
		}
		f, err := os.OpenFile(img, os.O_RDWR|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close() // another process holds it
			continue
		}
		vol := filepath.Join(p.volumeDir, id)
		owner, _ := os.ReadFile(vol + ".owner")
		mounted, _ := isMountPoint(vol)
		st, err := f.Stat()
		if adopted == nil && err == nil && mounted && string(owner) == img && volumeEmpty(vol) {
			done := make(chan struct{})
			close(done)
			adopted = &spare{id: id, size: st.Size(), img: img, lock: f, done: done}
			continue
		}
		_ = removeVolume(vol)
		_ = os.Remove(img)
		f.Close()
	}
	return adopted
}

// volumeEmpty reports whether a volume holds nothing: a spare is never
// written before a sandbox takes it.
func volumeEmpty(vol string) bool {
	ents, err := os.ReadDir(vol)
	return err == nil && len(ents) == 0
}

// takeSpare hands Create the spare volume if it has size bytes, waiting
// for it when it is still being made. It returns nil when there is none
// to take (Create then makes its own).
func (p *Provider) takeSpare(ctx context.Context, size int64) *spare {
	p.mu.Lock()
	sp := p.spare
	if sp == nil || sp.size != size {
		p.mu.Unlock()
		return nil
	}
	p.spare = nil
	p.mu.Unlock()
	select {
	case <-sp.done:
	case <-ctx.Done():
		p.putBack(sp)
		return nil
	}
	if sp.err != nil {
		return nil
	}
	return sp
}

// putBack returns a spare Create did not use to the provider, or removes
// it when another one was started meanwhile or the provider is closed.
func (p *Provider) putBack(sp *spare) {
	p.mu.Lock()
	if p.spare == nil && !p.closed {
		p.spare = sp
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	<-sp.done
	if sp.err == nil {
		_ = p.discardSpare(sp)
	}
}

// claimSpare makes a taken spare the volume of the sandbox directory dir
// (created, empty). The image gets its new name before the owner note
// moves to dir, and loses the old one only after: whatever owner another
// provider's sweepVolumes reads exists until the note has moved on (the
// sweep re-reads the note before it removes anything). After a crash at
// any step the orphan reaper (which finds dir) or New (which finds an
// unlocked image not owning its volume) removes it.
func (p *Provider) claimSpare(sp *spare, dir string) error {
	vol := filepath.Join(p.volumeDir, sp.id)
	if err := os.Link(sp.img, filepath.Join(dir, "disk.img")); err != nil {
		return fmt.Errorf("disk volume: %w", err)
	}
	if err := writeOwner(vol, dir); err != nil {
		return err
	}
	if err := os.Remove(sp.img); err != nil {
		return fmt.Errorf("disk volume: %w", err)
	}
	sp.lock.Close()
	return nil
}

// discardSpare unmounts and deletes a spare.
func (p *Provider) discardSpare(sp *spare) error {
	err := removeVolume(filepath.Join(p.volumeDir, sp.id))
	if rerr := os.Remove(sp.img); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	if sp.lock != nil {
		sp.lock.Close()
	}
	return err
}

// Close waits for a spare volume being made and leaves the spare for the
// next process on this data directory (New adopts it). Live sandboxes are
// their holders' to close (the Manager closes its own first). Create
// still works afterwards, without spares.
func (p *Provider) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	sp := p.spare
	p.spare = nil
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.building.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("close local provider: %w", ctx.Err())
	}
	if sp != nil && sp.err == nil {
		sp.lock.Close() // unlocked: the next New may adopt it
	}
	return nil
}
