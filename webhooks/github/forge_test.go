package github

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// Push is real git over HTTP with the token only in the push command's
// environment: afterwards it is nowhere in the workspace, and the default
// branch and forced updates are refused.
func TestPushTokenHygiene(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed: run scripts/install-deps.sh bwrap")
	}
	api := githubtest.NewServer(t, testToken)
	git := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "one\n"}, api.ValidToken)
	prov, err := bwrap.New(filepath.Join(t.TempDir(), "sb"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := prov.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(t.Context()) })
	p := &store.Project{Name: "p", RepoURL: git.RepoURL("o", "r"), DefaultBranch: "main"}
	if _, err := sandbox.Hydrate(t.Context(), sb, sandbox.Source{URL: p.RepoURL, Token: testToken, Branch: "main"}, nil); err != nil {
		t.Fatal(err)
	}
	sh := func(script string) {
		t.Helper()
		var out bytes.Buffer
		res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", script}, Stdout: &out, Stderr: &out})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%s: %v %d\n%s", script, err, res.ExitCode, out.String())
		}
	}
	sh("git switch -q -c hero/7-x && echo two >> a.txt && git -c user.name=hero -c user.email=h@x commit -qam two")

	svc, err := NewService(Config{APIURL: api.APIURL(), Credentials: StaticToken(testToken), Store: openStore(t, t.TempDir()), Engine: &recordingEngine{}, WritePace: -1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := svc.Forge(t.Context(), p, &store.Execution{Surface: "github", ThreadRef: "o/r#7"})
	if err != nil || f == nil {
		t.Fatalf("forge: %v", err)
	}
	for _, b := range []string{"main", "master", "-f", "+hero/7-x", "a..b"} {
		if err := f.Push(t.Context(), sb, b); err == nil {
			t.Errorf("pushed %q", b)
		}
	}
	if err := f.Push(t.Context(), sb, "hero/7-x"); err != nil {
		t.Fatal(err)
	}
	if out, err := git.Git("show", "hero/7-x:a.txt"); err != nil || out != "one\ntwo\n" {
		t.Fatalf("pushed content %q %v", out, err)
	}
	// A rewritten branch is not forced over the remote one.
	sh("git reset -q --hard HEAD~1 && echo three >> a.txt && git -c user.name=hero -c user.email=h@x commit -qam three")
	if err := f.Push(t.Context(), sb, "hero/7-x"); err == nil || strings.Contains(err.Error(), testToken) {
		t.Fatalf("non-fast-forward push: %v", err)
	}
	if out, _ := git.Git("show", "hero/7-x:a.txt"); out != "one\ntwo\n" {
		t.Fatalf("remote branch overwritten: %q", out)
	}
	// The token is nowhere in the workspace, raw or in its Basic form.
	forms := []string{testToken, base64.StdEncoding.EncodeToString([]byte("x-access-token:" + testToken))}
	hw := sb.(sandbox.HostWorkspace)
	filepath.Walk(hw.HostDir(), func(path string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		data, _ := os.ReadFile(path)
		for _, f := range forms {
			if bytes.Contains(data, []byte(f)) {
				t.Errorf("token in %s", path)
			}
		}
		return nil
	})
	// A wrong token fails with git's refusal, without the token.
	bad, _ := NewService(Config{APIURL: api.APIURL(), Credentials: StaticToken("ghp_wrong_token_value"), Store: openStore(t, t.TempDir()), Engine: &recordingEngine{}, WritePace: -1})
	bf, _ := bad.Forge(t.Context(), p, &store.Execution{Surface: "github", ThreadRef: "o/r#7"})
	sh("git switch -q -c hero/7-y")
	if err := bf.Push(t.Context(), sb, "hero/7-y"); err == nil || strings.Contains(err.Error(), "ghp_wrong_token_value") {
		t.Fatalf("wrong token: %v", err)
	}
}
