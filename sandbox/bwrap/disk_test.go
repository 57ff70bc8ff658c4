package bwrap

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hero-dev/hero/sandbox"
)

// hostBytes is what a sandbox's directory takes on the host's disk: the
// files on the host's filesystem (a loop volume's image, not the files
// inside it, which would count the same blocks twice).
func hostBytes(t *testing.T, sb *Sandbox) int64 {
	t.Helper()
	var root unix.Stat_t
	if err := unix.Stat(sb.dir, &root); err != nil {
		t.Fatal(err)
	}
	var total int64
	err := filepath.WalkDir(sb.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		if st.Dev != root.Dev {
			return filepath.SkipDir
		}
		total += st.Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// Writing past a sandbox's disk limit fails with a message naming the
// limit, and the host's disk does not pay for it (issue 8 #11: three
// `fallocate -l 3G` grew the host by 9 GB).
func TestDiskLimit(t *testing.T) {
	const limit = 64 << 20
	t.Run("loop", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t)
		if p.DiskMode() != diskLoop {
			if os.Getenv("CI") != "" && os.Geteuid() == 0 {
				t.Fatalf("disk mode %s as root in CI; want loop", p.DiskMode())
			}
			t.Skipf("loop volumes unavailable here (mode %s)", p.DiskMode())
		}
		sb := newSandbox(t, p, sandbox.Spec{Limits: sandbox.Limits{DiskBytes: limit}})
		o := runCmd(t, sb, sandbox.Cmd{Args: sh(`fallocate -l 3G big`)})
		if o.res.ExitCode == 0 {
			t.Fatalf("fallocate -l 3G succeeded under a 64 MB limit")
		}
		// Many files, hard links and appends: the kernel counts it all.
		o = runCmd(t, sb, sandbox.Cmd{Args: sh(`for i in 1 2 3 4 5 6 7 8; do head -c 20000000 /dev/zero > f$i || exit; ln f$i l$i; done`)})
		if o.res.ExitCode == 0 {
			t.Fatalf("writing 160 MB in files succeeded under a 64 MB limit")
		}
		for _, want := range []string{"No space left on device", "hero: the workspace is full: it reached its 64 MB disk limit"} {
			if !strings.Contains(o.stderr, want) {
				t.Errorf("stderr %q; want %q", o.stderr, want)
			}
		}
		if got := hostBytes(t, sb); got > limit+8<<20 {
			t.Errorf("the sandbox takes %d MB on the host; the limit is %d MB", got>>20, limit>>20)
		}
		// HOME is on the same volume.
		o = runCmd(t, sb, sandbox.Cmd{Args: sh(`rm -f f* l*; head -c 100000000 /dev/zero > "$HOME/cache"`)})
		if o.res.ExitCode == 0 || !strings.Contains(o.stderr, "64 MB disk limit") {
			t.Errorf("HOME past the limit: exit %d stderr %q", o.res.ExitCode, o.stderr)
		}
		// Deleting files makes room again.
		o = runCmd(t, sb, sandbox.Cmd{Args: sh(`rm -f "$HOME/cache" && head -c 30000000 /dev/zero > ok && echo fine`)})
		if strings.TrimSpace(o.stdout) != "fine" {
			t.Errorf("after deleting: stdout %q stderr %q", o.stdout, o.stderr)
		}
	})
	t.Run("check", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t, WithLoopDisks(false))
		if p.DiskMode() != diskCheck {
			t.Fatalf("mode %s; want check", p.DiskMode())
		}
		sb := newSandbox(t, p, sandbox.Spec{Limits: sandbox.Limits{DiskBytes: limit}})
		// One file cannot be larger than the disk limit at all.
		o := runCmd(t, sb, sandbox.Cmd{Args: sh(`fallocate -l 3G big`)})
		if o.res.ExitCode == 0 || hostBytes(t, sb) > limit {
			t.Fatalf("fallocate -l 3G: exit %d, host usage %d MB", o.res.ExitCode, hostBytes(t, sb)>>20)
		}
		// Files that add up past the limit: the command is killed.
		o = runCmd(t, sb, sandbox.Cmd{Args: sh(`for i in $(seq 1 40); do head -c 10000000 /dev/zero > f$i; sleep 0.2; done; echo survived`)})
		if !o.res.Killed || strings.Contains(o.stdout, "survived") || !strings.Contains(o.stderr, "hero: the workspace exceeded its 64 MB disk limit; the command was killed") {
			t.Fatalf("killed %v stdout %q stderr %q", o.res.Killed, o.stdout, o.stderr)
		}
		if got := hostBytes(t, sb); got > 2*limit {
			t.Errorf("the sandbox takes %d MB on the host under a %d MB limit", got>>20, limit>>20)
		}
		// A fast write that ends before a measurement fails afterwards.
		o = runCmd(t, sb, sandbox.Cmd{Args: sh(`rm -f f*; for i in 1 2 3; do head -c 30000000 /dev/zero > g$i; done`)})
		if o.res.ExitCode == 0 || !strings.Contains(o.stderr, "64 MB disk limit") {
			t.Errorf("fast write: exit %d stderr %q", o.res.ExitCode, o.stderr)
		}
		o = runCmd(t, sb, sandbox.Cmd{Args: sh(`rm -f g* && echo fine`)})
		if strings.TrimSpace(o.stdout) != "fine" || o.res.ExitCode != 0 {
			t.Errorf("cleanup: exit %d stdout %q stderr %q", o.res.ExitCode, o.stdout, o.stderr)
		}
	})
}

// /tmp is a memory-backed tmpfs capped like the disk; HOME (/tmp/home) is
// on the disk volume and kept between commands.
func TestTmpIsCappedAndHomeKept(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	if !p.tmpSize {
		t.Skip("this bubblewrap has no --size")
	}
	sb := newSandbox(t, p, sandbox.Spec{Limits: sandbox.Limits{DiskBytes: 32 << 20}})
	o := runCmd(t, sb, sandbox.Cmd{Args: sh(`fallocate -l 1G /tmp/big || head -c 100000000 /dev/zero > /tmp/big`)})
	if o.res.ExitCode == 0 {
		t.Fatalf("100 MB in /tmp under a 32 MB limit: stdout %q", o.stdout)
	}
	if got := hostBytes(t, sb); got > 32<<20 {
		t.Errorf("/tmp wrote %d MB to the host", got>>20)
	}
	runCmd(t, sb, sandbox.Cmd{Args: sh(`echo kept > "$HOME/f"; echo gone > /tmp/f`)})
	o = runCmd(t, sb, sandbox.Cmd{Args: sh(`cat "$HOME/f"; cat /tmp/f 2>/dev/null || echo no-tmp-file`)})
	if o.stdout != "kept\nno-tmp-file\n" {
		t.Errorf("second command sees %q; want HOME kept and /tmp fresh", o.stdout)
	}
	if _, err := os.Stat(filepath.Join(sb.vol, "tmp", "home", "f")); err != nil {
		t.Errorf("HOME is not on the sandbox's volume: %v", err)
	}
}

// A sandbox asked for less disk than ext4 can hold is refused clearly.
func TestDiskLimitTooSmall(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	_, err := p.Create(t.Context(), sandbox.Spec{Limits: sandbox.Limits{DiskBytes: 1 << 20}})
	if err == nil || !strings.Contains(err.Error(), "too small") {
		t.Fatalf("Create with a 1 MB disk: %v", err)
	}
}
