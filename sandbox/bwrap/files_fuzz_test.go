package bwrap

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hero-dev/hero/sandbox"
)

// FuzzFileConfinement drives the file methods with arbitrary paths against a
// real workspace that holds escape routes (an absolute symlink, a relative
// one climbing out, a link to /proc's magic links) and checks that nothing
// outside the workspace is ever read, written or removed.
func FuzzFileConfinement(f *testing.F) {
	for _, s := range []string{
		"out/canary", "up/canary", "up/up/canary", "../outside/canary", "/tmp", "proc/self/root/etc/hostname",
		"in/../out/canary", "dir/link/canary", "out", "up", ".", "", "dir/./file", "out/new", "up/new",
		"dir/link", "dir/link/new", "abs", "abs/canary", "a\x00b",
	} {
		for op := byte(0); op < 5; op++ {
			f.Add(op, s)
		}
	}
	p := newProvider(f)
	sb := newSandbox(f, p, sandbox.Spec{})
	outside := filepath.Join(filepath.Dir(filepath.Dir(sb.HostDir())), "outside-"+filepath.Base(sb.dir))
	if err := os.MkdirAll(outside, 0o755); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(outside) })
	canary := []byte("canary: must never cross the workspace boundary")
	plant := func(t testing.TB) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(outside, "canary"), canary, 0o644); err != nil {
			t.Fatal(err)
		}
		ws := sb.HostDir()
		_ = os.MkdirAll(filepath.Join(ws, "dir"), 0o755)
		links := map[string]string{
			"out":      outside,
			"up":       "../../" + filepath.Base(outside),
			"abs":      "/",
			"proc":     "/proc",
			"dir/link": "../../../" + filepath.Base(outside),
		}
		for name, target := range links {
			_ = os.Remove(filepath.Join(ws, name))
			if err := os.Symlink(target, filepath.Join(ws, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, op byte, path string) {
		plant(t)
		switch op % 5 {
		case 0:
			data, err := sb.ReadFile(ctx, path)
			if err == nil && bytes.Contains(data, canary) {
				t.Fatalf("ReadFile(%q) read the file outside the workspace", path)
			}
		case 1:
			_ = sb.WriteFile(ctx, path, []byte("fuzz"), 0o644)
		case 2:
			_ = sb.Remove(ctx, path, true)
		case 3:
			_, _ = sb.Stat(ctx, path)
		case 4:
			_, _ = sb.List(ctx, path, false)
		}
		got, err := os.ReadFile(filepath.Join(outside, "canary"))
		if err != nil || !bytes.Equal(got, canary) {
			t.Fatalf("op %d on %q changed the file outside the workspace (err %v, now %q)", op%5, path, err, got)
		}
		entries, err := os.ReadDir(outside)
		if err != nil || len(entries) != 1 {
			t.Fatalf("op %d on %q changed the directory outside the workspace: %v %v", op%5, path, entries, err)
		}
	})
}
