package sandbox_test

import (
	"archive/zip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/mirror"
)

// goProxy writes a one-module Go module proxy (the file:// layout) into
// dir/proxy, so `go mod download` works without network.
func goProxy(t *testing.T, dir string) {
	t.Helper()
	at := filepath.Join(dir, "proxy", "example.com", "dep", "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"list":        "v1.0.0\n",
		"v1.0.0.info": `{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}`,
		"v1.0.0.mod":  "module example.com/dep\n\ngo 1.22\n",
	}
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(at, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(at, "v1.0.0.zip"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for n, body := range map[string]string{"go.mod": files["v1.0.0.mod"], "dep.go": "package dep\n\nconst Answer = 42\n"} {
		w, err := zw.Create("example.com/dep@v1.0.0/" + n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// The second workspace with an unchanged lockfile gets its dependencies
// from the project's cache without running the install (here the module
// proxy is gone by then, so an install would fail); a changed lockfile
// installs again.
func TestDependencyInstallCachedByLockfile(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not installed in the sandbox's view of the host")
	}
	mirrors, err := mirror.New(filepath.Join(t.TempDir(), "mirrors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := mirrors.Repo(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	gomod := "module example.com/app\n\ngo 1.22\n\nrequire example.com/dep v1.0.0\n"
	env := map[string]string{"GOPROXY": "file:///repo/proxy", "GOSUMDB": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
	hydrate := func(withProxy bool, gomod string) (sandbox.Report, sandbox.Sandbox) {
		dir, _ := makeRepo(t, map[string]string{"go.mod": gomod, "main.go": "package main\n"})
		if withProxy {
			goProxy(t, dir)
		}
		sb, err := newBwrap(t, "").Create(t.Context(), sandbox.Spec{Env: env})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sb.Close(context.Background()) })
		rep, err := sandbox.Hydrate(t.Context(), sb, sandbox.Source{Path: dir, Install: true, AllowNetwork: true, Deps: cache}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep, sb
	}
	step := func(rep sandbox.Report) sandbox.Step {
		for _, s := range rep.Steps {
			if s.Name == "install go" {
				return s
			}
		}
		t.Fatalf("no install step: %s", rep)
		return sandbox.Step{}
	}
	first, _ := hydrate(true, gomod)
	if s := step(first); s.Cached || s.Skipped || s.ExitCode != 0 || s.Note != "" {
		t.Fatalf("first install: %+v", s)
	}
	second, sb := hydrate(false, gomod)
	if s := step(second); !s.Cached {
		t.Fatalf("second install with the same go.mod was not restored: %+v", s)
	}
	if !strings.Contains(second.String(), "install go: restored from the cache") {
		t.Errorf("report: %s", second)
	}
	got := sbRun(t, sb, "sh", "-c", `cat "$HOME/go/pkg/mod/example.com/dep@v1.0.0/dep.go"`)
	if !strings.Contains(got, "Answer = 42") {
		t.Fatalf("restored module: %q", got)
	}
	st := mirrors.Stats()
	if st.Hits[mirror.KindDeps] != 1 || st.Misses[mirror.KindDeps] != 1 || st.Bytes[mirror.KindDeps] == 0 {
		t.Errorf("stats: %+v", st)
	}
	// Another lockfile: a miss, and the install runs (and fails without
	// the proxy, which shows it really ran).
	third, _ := hydrate(false, gomod+"\n// changed\n")
	if s := step(third); s.Cached || s.ExitCode == 0 {
		t.Fatalf("changed go.mod: %+v", s)
	}
}
