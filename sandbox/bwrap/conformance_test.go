package bwrap_test

import (
	"context"
	"log/slog"
	"os/exec"
	"testing"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
	"github.com/hero-dev/hero/sandbox/sandboxtest"
)

// The provider conformance table, against real bubblewrap sandboxes.
func TestConformance(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed: run scripts/install-deps.sh bwrap")
	}
	p, err := bwrap.New(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	sandboxtest.Run(t, func(t *testing.T, spec sandbox.Spec) sandbox.Sandbox {
		sb, err := p.Create(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		return sb
	}, sandboxtest.Options{Processes: p.CgroupMode() != "rlimit", Disk: true})
}
