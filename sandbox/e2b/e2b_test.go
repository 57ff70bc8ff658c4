package e2b_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/e2b"
	"github.com/hero-dev/hero/sandbox/e2b/e2btest"
)

func create(t *testing.T, p *e2b.Provider, spec sandbox.Spec) *e2b.Sandbox {
	t.Helper()
	sb, err := p.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	return sb.(*e2b.Sandbox)
}

func sh(t *testing.T, sb sandbox.Sandbox, script string) string {
	t.Helper()
	var out bytes.Buffer
	res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", script}, Stdout: &out, Stderr: &out})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%s: %v %+v %s", script, err, res, out.String())
	}
	return out.String()
}

// A project's secrets reach commands through a 0600 file, never through
// E2B's create or process-start requests (which E2B logs for the team),
// and are gone before a snapshot is taken.
func TestSecretsNeverInStartRequests(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Value-that-E2B-must-not-log"
	fake := e2btest.NewServer(t)
	p := newProvider(t, fake)
	sb := create(t, p, sandbox.Spec{Env: map[string]string{"DB_PASSWORD": secret}, Labels: map[string]string{"project": "7", "execution": "r1"}})
	if got := sh(t, sb, `printf %s "$DB_PASSWORD"`); got != secret {
		t.Fatalf("the command sees %q", got)
	}
	sh(t, sb, `true`)
	// Nor a plain hash of the environment file (a guess could be checked
	// against it).
	plain := sha256.Sum256([]byte("DB_PASSWORD='" + secret + "'\n"))
	for _, st := range fake.Starts() {
		all := st.Cmd + strings.Join(st.Args, " ")
		if strings.Contains(all, hex.EncodeToString(plain[:12])) {
			t.Fatalf("a process start request carries a plain hash of the secret: %+v", st)
		}
		for k, v := range st.Envs {
			all += k + v
		}
		if strings.Contains(all, secret) {
			t.Fatalf("a process start request carries the secret: %+v", st)
		}
	}
	meta, internet := fake.Metadata(sb.ID())
	if meta["hero.project"] != "7" || meta["hero.execution"] != "r1" || meta["hero.install"] != "test-install" || internet {
		t.Fatalf("metadata %v, internet %v", meta, internet)
	}
	dir := filepath.Join(fake.Dir(sb.ID()), "home", "user", ".hero")
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("the environment directory: %v %v", st.Mode(), err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "env-*"))
	if len(files) != 1 {
		t.Fatalf("environment files: %v", files)
	}
	snap, err := sb.Snapshot(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	from := create(t, p, sandbox.Spec{Template: snap})
	left, _ := filepath.Glob(filepath.Join(fake.Dir(from.ID()), "home", "user", ".hero", "env-*"))
	if len(left) != 0 {
		t.Fatalf("the snapshot holds environment files: %v", left)
	}
	// The sandbox made before the snapshot still works (the file is
	// written again).
	if got := sh(t, sb, `printf %s "$DB_PASSWORD"`); got != secret {
		t.Fatalf("after the snapshot the command sees %q", got)
	}
}

// A snapshot is the template of a later sandbox: the workspace is there.
func TestSnapshotIsATemplate(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	p := newProvider(t, fake)
	sb := create(t, p, sandbox.Spec{})
	if err := sb.WriteFile(t.Context(), "node_modules/dep/index.js", []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := sb.Snapshot(t.Context(), "p7-abc")
	if err != nil {
		t.Fatal(err)
	}
	next := create(t, p, sandbox.Spec{Template: snap})
	if data, err := next.ReadFile(t.Context(), "node_modules/dep/index.js"); err != nil || string(data) != "ok" {
		t.Fatalf("%q %v", data, err)
	}
	if err := p.API().DeleteSnapshot(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(t.Context(), sandbox.Spec{Template: snap}); !errors.Is(err, e2b.ErrTemplateMissing) {
		t.Fatalf("a deleted snapshot: %v", err)
	}
}

// Each failure E2B can answer becomes a clear error; rate limits and the
// edge's 502 are retried.
func TestErrorsAreNamed(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	bad, err := e2b.New(e2b.Config{APIKey: "e2b_wrong", APIURL: fake.URL, SandboxURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Create(t.Context(), sandbox.Spec{})
	if !errors.Is(err, e2b.ErrAuth) || !strings.Contains(err.Error(), "E2B_API_KEY") {
		t.Fatalf("bad key: %v", err)
	}
	if err := bad.Health(t.Context()); !errors.Is(err, sandbox.ErrUnavailable) || !errors.Is(err, e2b.ErrAuth) {
		t.Fatalf("health with a bad key: %v", err)
	}
	if _, err := e2b.New(e2b.Config{}); err == nil || !strings.Contains(err.Error(), "E2B_API_KEY") {
		t.Fatalf("no key: %v", err)
	}

	p := newProvider(t, fake)
	if _, err := p.Create(t.Context(), sandbox.Spec{Template: "no-such-template"}); !errors.Is(err, e2b.ErrTemplateMissing) || !strings.Contains(err.Error(), "no-such-template") {
		t.Fatalf("missing template: %v", err)
	}

	// 429 with Retry-After, then a 502 from the edge: both retried.
	fake.FailNext("/sandboxes", 429, "0")
	fake.FailNext("/sandboxes", 502, "")
	sb := create(t, p, sandbox.Spec{})
	calls := strings.Join(fake.Calls(), "\n")
	if strings.Count(calls, "POST /sandboxes\n") < 3 {
		t.Fatalf("create was not retried: %s", calls)
	}

	fake.MaxSandboxes(1)
	if _, err := p.Create(t.Context(), sandbox.Spec{}); !errors.Is(err, e2b.ErrQuota) || !strings.Contains(err.Error(), "maximum number of concurrent") {
		t.Fatalf("quota: %v", err)
	}

	// The sandbox killed behind hero's back: calls say it is gone.
	if err := p.API().Kill(t.Context(), sb.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"true"}}); !errors.Is(err, sandbox.ErrClosed) || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("exec in a killed sandbox: %v", err)
	}
	if err := sb.Alive(t.Context()); !errors.Is(err, sandbox.ErrClosed) {
		t.Fatalf("alive: %v", err)
	}
	if _, err := p.API().Get(t.Context(), sb.ID()); !errors.Is(err, e2b.ErrNotFound) {
		t.Fatalf("get: %v", err)
	}
	// Killing it again is not an error.
	if err := p.Destroy(t.Context(), sb.ID()); err != nil {
		t.Fatal(err)
	}
}

// A paused sandbox keeps its files and comes back with Resume.
func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	p := newProvider(t, fake)
	sb := create(t, p, sandbox.Spec{Env: map[string]string{"K": "v"}})
	sh(t, sb, "echo kept > state.txt")
	if err := sb.Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := sb.Pause(t.Context()); err != nil {
		t.Fatalf("pausing twice: %v", err)
	}
	if st := fake.Live()[sb.ID()]; st != "paused" {
		t.Fatalf("state %q", st)
	}
	if err := sb.Alive(t.Context()); err == nil {
		t.Fatal("a paused sandbox answers")
	}
	back, err := p.Resume(t.Context(), sb.ID(), sandbox.Spec{Env: map[string]string{"K": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := sh(t, back, `cat state.txt; printf %s "$K"`); got != "kept\nv" {
		t.Fatalf("after resume: %q", got)
	}
}

// Orphans are found by the installation's metadata and killed unless a
// lease holds them; other installations' sandboxes are left alone.
func TestKillOrphans(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	p := newProvider(t, fake)
	other, err := e2b.New(e2b.Config{APIKey: e2btest.APIKey, APIURL: fake.URL, SandboxURL: fake.URL, Install: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	held := create(t, p, sandbox.Spec{})
	orphan := create(t, p, sandbox.Spec{})
	foreign := create(t, other, sandbox.Spec{})
	n, err := p.KillOrphans(t.Context(), func(id string) bool { return id == held.ID() }, time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("a sandbox younger than minAge was killed: %d %v", n, err)
	}
	n, err = p.KillOrphans(t.Context(), func(id string) bool { return id == held.ID() }, 0)
	if err != nil || n != 1 {
		t.Fatalf("killed %d: %v", n, err)
	}
	live := fake.Live()
	if _, ok := live[orphan.ID()]; ok {
		t.Fatal("the orphan lives")
	}
	if _, ok := live[held.ID()]; !ok {
		t.Fatal("the held sandbox was killed")
	}
	if _, ok := live[foreign.ID()]; !ok {
		t.Fatal("another installation's sandbox was killed")
	}
}

// Listing by metadata finds exactly the matching sandboxes.
func TestListByMetadata(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	p := newProvider(t, fake)
	for range 3 {
		create(t, p, sandbox.Spec{Labels: map[string]string{"project": "9"}})
	}
	create(t, p, sandbox.Spec{Labels: map[string]string{"project": "10"}})
	got, err := p.API().List(t.Context(), map[string]string{"hero.project": "9"})
	if err != nil || len(got) != 3 {
		t.Fatalf("%d sandboxes: %v", len(got), err)
	}
}
