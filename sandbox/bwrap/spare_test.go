package bwrap

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hero-dev/hero/sandbox"
)

func requireLoop(t *testing.T, p *Provider) {
	t.Helper()
	if p.DiskMode() != diskLoop {
		if os.Getenv("CI") != "" && os.Geteuid() == 0 {
			t.Fatalf("disk mode %s as root in CI; want loop", p.DiskMode())
		}
		t.Skipf("loop volumes unavailable here (mode %s)", p.DiskMode())
	}
}

// spareID is the id of the provider's spare volume once it is made ("" if
// there is none).
func spareID(t *testing.T, p *Provider) string {
	t.Helper()
	p.mu.Lock()
	sp := p.spare
	p.mu.Unlock()
	if sp == nil {
		return ""
	}
	select {
	case <-sp.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the spare volume was not made within 30 s")
	}
	if sp.err != nil {
		t.Fatalf("spare volume: %v", sp.err)
	}
	return sp.id
}

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	m, err := isMountPoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A sandbox with the default disk limit gets the volume made ahead (no
// mkfs and mount on its way), the next one is made meanwhile, and the
// limit holds on it like on any other.
func TestSpareVolumeTakenByCreate(t *testing.T) {
	t.Parallel()
	const limit = 64 << 20
	p := newProvider(t, WithDefaultLimits(sandbox.Limits{DiskBytes: limit}))
	requireLoop(t, p)
	first := spareID(t, p)
	if first == "" {
		t.Fatal("New left no spare volume")
	}
	sb := newSandbox(t, p, sandbox.Spec{})
	if sb.ID() != first {
		t.Errorf("sandbox %s did not take the spare volume %s", sb.ID(), first)
	}
	if !mounted(t, sb.vol) {
		t.Fatalf("the sandbox's volume %s is not mounted", sb.vol)
	}
	if _, err := os.Stat(filepath.Join(sb.dir, "disk.img")); err != nil {
		t.Errorf("the spare's image did not move into the sandbox: %v", err)
	}
	o := runCmd(t, sb, sandbox.Cmd{Args: sh(`fallocate -l 3G big`)})
	if o.res.ExitCode == 0 {
		t.Fatal("fallocate -l 3G succeeded on a 64 MB spare volume")
	}
	o = runCmd(t, sb, sandbox.Cmd{Args: sh(`rm -f big; for i in 1 2 3 4 5 6 7 8; do head -c 20000000 /dev/zero > f$i || exit; done`)})
	if o.res.ExitCode == 0 || !strings.Contains(o.stderr, "hero: the workspace is full: it reached its 64 MB disk limit") {
		t.Errorf("160 MB on a 64 MB spare volume: exit %d stderr %q", o.res.ExitCode, o.stderr)
	}
	next := spareID(t, p)
	if next == "" || next == first {
		t.Fatalf("after Create the spare is %q; want a new one", next)
	}
	// Another sandbox gets that one, and no two sandboxes share a volume.
	sb2 := newSandbox(t, p, sandbox.Spec{})
	if sb2.ID() != next {
		t.Errorf("second sandbox %s; want the spare %s", sb2.ID(), next)
	}
	o = runCmd(t, sb2, sandbox.Cmd{Args: sh(`ls -A; ls -A "$HOME"`)})
	if o.stdout != "" {
		t.Errorf("a fresh sandbox on a spare volume sees %q", o.stdout)
	}
	// A sandbox with its own limit makes its own volume of that size.
	own := newSandbox(t, p, sandbox.Spec{Limits: sandbox.Limits{DiskBytes: 2 * limit}})
	var st unix.Statfs_t
	if err := unix.Statfs(own.vol, &st); err != nil {
		t.Fatal(err)
	}
	if size := int64(st.Blocks) * st.Bsize; size < limit+limit/2 || size > 2*limit {
		t.Errorf("a 128 MB sandbox got a %d MB volume", size>>20)
	}
}

// Close leaves the spare for the next process on the data directory,
// which adopts it instead of probing; one a sandbox could have written to
// (not empty) or that lost its mount is removed instead.
func TestSpareVolumeAdoptedByNextProcess(t *testing.T) {
	t.Parallel()
	base := baseDir(t)
	open := func() *Provider {
		p, err := New(base, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		return p
	}
	p1 := open()
	requireLoop(t, p1)
	left := spareID(t, p1)
	// While p1 holds it, nobody else takes it.
	p2 := open()
	if got := spareID(t, p2); got == left || got == "" {
		t.Fatalf("a second provider's spare is %q while the first holds %q", got, left)
	}
	if err := p1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	p3 := open()
	if got := spareID(t, p3); got != left {
		t.Fatalf("the next provider's spare is %q; want the one left by Close, %s", got, left)
	}
	sb := newSandbox(t, p3, sandbox.Spec{})
	if sb.ID() != left {
		t.Errorf("sandbox %s; want the adopted volume %s", sb.ID(), left)
	}

	// A spare with something in it is not trusted.
	dirty := spareID(t, p3)
	if dirty == "" {
		t.Fatal("no spare after Create")
	}
	if err := p3.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(p3.volumeDir, dirty)
	if err := os.WriteFile(filepath.Join(vol, "planted"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	p4 := open()
	if got := spareID(t, p4); got == dirty {
		t.Fatal("a spare volume holding a file was adopted")
	}
	if mounted(t, vol) {
		t.Errorf("the rejected spare %s is still mounted", vol)
	}
	if _, err := os.Stat(filepath.Join(base, spareDir, dirty+".img")); !os.IsNotExist(err) {
		t.Errorf("the rejected spare's image is still there: %v", err)
	}
}

// Providers on one host share the volume directory, and each New sweeps it
// for volumes whose owner is gone. A sweep that read a spare's owner note
// (its image) just before a Create claimed the spare, and looked for the
// image just after, took the claimed volume away from under the new
// sandbox ("mkdir …/tmp: no such file or directory", seen in the engine's
// parallel tests). Here the other providers' sweeps run without pause
// while sandboxes are made on spares.
func TestSweepSparesASpareBeingClaimed(t *testing.T) {
	t.Parallel()
	vols := t.TempDir()
	// Runs after the provider's Close, which leaves its spare mounted for
	// a next process that will not come.
	t.Cleanup(func() {
		owners, _ := filepath.Glob(filepath.Join(vols, "*.owner"))
		for _, o := range owners {
			if err := removeVolume(strings.TrimSuffix(o, ".owner")); err != nil {
				t.Error(err)
			}
		}
	})
	p := newProvider(t, WithVolumeDir(vols))
	requireLoop(t, p)
	stop := make(chan struct{})
	swept := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				swept <- n
				return
			default:
				sweepVolumes(vols)
				n++
			}
		}
	}()
	for i := range 40 {
		if spareID(t, p) == "" {
			t.Fatalf("sandbox %d: no spare volume to take", i)
		}
		sb, err := p.Create(context.Background(), sandbox.Spec{})
		if err != nil {
			close(stop)
			<-swept
			t.Fatalf("sandbox %d on a spare, during another provider's sweeps: %v", i, err)
		}
		vol := sb.(*Sandbox).vol
		ok := mounted(t, vol)
		if err := sb.Close(context.Background()); err != nil {
			t.Errorf("close sandbox %d: %v", i, err)
		}
		if !ok {
			close(stop)
			<-swept
			t.Fatalf("sandbox %d's volume %s was swept away", i, vol)
		}
	}
	close(stop)
	if n := <-swept; n < 40 {
		t.Errorf("only %d sweeps ran beside 40 Creates", n)
	}
}
