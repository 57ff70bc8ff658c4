package sandbox_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hero-dev/hero/sandbox"
)

// ExportHead carries only what the receiver lacks, and stops at its limit.
func TestExportHead(t *testing.T) {
	t.Parallel()
	dir, base := makeRepo(t, map[string]string{"a.txt": strings.Repeat("a", 4096)})
	sb := newBox(t)
	if _, err := sandbox.Hydrate(t.Context(), sb, sandbox.Source{Path: dir}, nil); err != nil {
		t.Fatal(err)
	}
	sbRun(t, sb, "sh", "-c", "echo b > b.txt && git add b.txt && git -c user.name=t -c user.email=t@x commit -qm b")
	head, err := sandbox.Head(t.Context(), sb)
	if err != nil || head == base {
		t.Fatalf("head %s %v", head, err)
	}
	var full, thin bytes.Buffer
	if err := sandbox.ExportHead(t.Context(), sb, &full, nil, 1<<20); err != nil {
		t.Fatal(err)
	}
	// An unknown commit in the have-list is skipped, a known one excluded.
	if err := sandbox.ExportHead(t.Context(), sb, &thin, []string{strings.Repeat("0", 40), base}, 1<<20); err != nil {
		t.Fatal(err)
	}
	if thin.Len() >= full.Len() {
		t.Fatalf("thin bundle %d bytes, full %d", thin.Len(), full.Len())
	}
	// The receiver gets exactly HEAD.
	path := filepath.Join(t.TempDir(), "x.bundle")
	os.WriteFile(path, thin.Bytes(), 0o600)
	git(t, dir, "fetch", "-q", path, "HEAD:refs/heads/got")
	if got := git(t, dir, "rev-parse", "got"); got != head {
		t.Fatalf("fetched %s, want %s", got, head)
	}
	if err := sandbox.ExportHead(t.Context(), sb, &bytes.Buffer{}, nil, 100); !errors.Is(err, sandbox.ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}
