package tools

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
	"github.com/hero-dev/hero/store"
)

// read_file and write_file on a named pipe or socket a command planted in
// the workspace are errors the model sees and can act on, not a broken
// sandbox that ends the run (issue 8 #14) — on a real bubblewrap sandbox.
func TestSpecialFilesAreToolErrors(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("bubblewrap is required in CI: %v", err)
		}
		t.Skip("bubblewrap not installed")
	}
	p, err := bwrap.New(filepath.Join(t.TempDir(), "sandboxes"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := p.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close(context.Background()) })
	var out bytes.Buffer
	res, err := sb.Exec(t.Context(), sandbox.Cmd{
		Args:   []string{"sh", "-c", `mkfifo pipe && python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.bind("sock")' 2>&1 || true; ls -l`},
		Stdout: &out, Stderr: &out,
	})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("mkfifo: %v exit %d: %s", err, res.ExitCode, out.String())
	}
	tc := &engine.ToolContext{Sandbox: sb, Project: &store.Project{Name: "app"}}
	call := func(tool, args string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return toolByName(t, tool).Run(ctx, tc, []byte(args))
	}

	_, err = call("read_file", `{"path": "pipe"}`)
	wantErr(t, "read_file on a FIFO", err, "pipe is a named pipe, not a regular file")
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("read_file hung on the FIFO")
	}
	_, err = call("write_file", `{"path": "pipe", "content": "x"}`)
	wantErr(t, "write_file on a FIFO", err, "named pipe")
	if _, err := os.Stat(filepath.Join(sb.(sandbox.HostWorkspace).HostDir(), "sock")); err == nil {
		_, err = call("read_file", `{"path": "sock"}`)
		wantErr(t, "read_file on a socket", err, "sock is a socket, not a regular file")
	}

	// The provider itself refuses them with a named error, also when the
	// caller skips the Stat (a FIFO swapped in after it).
	if _, err := sb.ReadFile(t.Context(), "pipe"); !errors.Is(err, sandbox.ErrNotRegularFile) {
		t.Errorf("ReadFile(pipe) = %v; want ErrNotRegularFile", err)
	}
	if err := sb.WriteFile(t.Context(), "pipe", []byte("x"), 0); !errors.Is(err, sandbox.ErrNotRegularFile) {
		t.Errorf("WriteFile(pipe) = %v; want ErrNotRegularFile", err)
	}
	// The run goes on: ordinary files still work.
	if _, err := call("write_file", `{"path": "ok.txt", "content": "fine"}`); err != nil {
		t.Fatal(err)
	}
	if got, err := call("read_file", `{"path": "ok.txt"}`); err != nil || got != "fine" {
		t.Fatalf("read_file ok.txt = %q, %v", got, err)
	}
}
