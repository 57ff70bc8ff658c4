package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	ghsurface "github.com/hero-dev/hero/webhooks/github"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// The GitHub surface's branch hook makes the workspace check out the
// branch of hero's own pull request instead of the default branch; other
// runs start on a new work branch made from the default branch (real
// bubblewrap sandbox, real git over HTTP through hero's mirror).
func TestWorkspaceChecksOutTheRunsBranch(t *testing.T) {
	t.Parallel()
	prov := enginetest.Bwrap(t)
	dir := t.TempDir()
	db := storetest.OpenIn(t, dir)
	git := githubtest.NewGitServer(t, "o", "r", map[string]string{"a.txt": "main\n"}, func(string) bool { return false })
	git.AnonymousRead()
	tip := git.Commit("hero/7-fix", "earlier work", map[string]string{"a.txt": "branch\n"})

	m, err := sandbox.NewManager(prov, leaseStore{db}, sandbox.ManagerConfig{Owner: "test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(t.Context()) })
	mirrors, err := mirror.New(filepath.Join(dir, "mirrors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkspaces(workspacesConfig{manager: m, mirrors: mirrors, log: slog.New(slog.DiscardHandler),
		branchFor: func(ex *store.Execution) (string, bool) {
			if ex.ID == "continues" {
				return "hero/7-fix", true
			}
			return defaultWorkBranch(ex)
		}})
	p := &store.Project{ID: 1, Name: "p", RepoURL: git.RepoURL("o", "r"), DefaultBranch: "main"}

	for _, c := range []struct{ id, branch, content string }{
		{"continues", "hero/7-fix", "branch"},
		{"fresh", "hero/fresh", "main"},
	} {
		ex := &store.Execution{ID: c.id}
		sb, err := w.Open(t.Context(), p, ex, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		var out bytes.Buffer
		res, err := sb.Exec(t.Context(), sandbox.Cmd{Args: []string{"sh", "-c", "git symbolic-ref --short HEAD && cat a.txt && git rev-parse HEAD"}, Stdout: &out, Stderr: &out})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%s: %v %d %s", c.id, err, res.ExitCode, out.String())
		}
		lines := strings.Fields(out.String())
		if len(lines) != 3 || lines[0] != c.branch || lines[1] != c.content || (c.id == "continues" && lines[2] != tip) {
			t.Fatalf("%s: workspace is on %q, want branch %s with %q (tip %s)", c.id, lines, c.branch, c.content, tip)
		}
		if err := w.Close(t.Context(), ex, sb); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRedeliveryConfig(t *testing.T) {
	t.Parallel()
	envOf := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	r, err := redeliveryConfig(envOf("HERO_PUBLIC_URL", "https://hero.example.com/"), nil)
	if err != nil || !r.RepoHooks || r.HookID != 0 || r.HookURL != "https://hero.example.com/github/webhook" {
		t.Fatalf("token setup: %+v %v", r, err)
	}
	if r, err := redeliveryConfig(envOf("GITHUB_HOOK_ID", "4242"), nil); err != nil || !r.RepoHooks || r.HookID != 4242 {
		t.Fatalf("hook id: %+v %v", r, err)
	}
	if r, err := redeliveryConfig(envOf("GITHUB_HOOK_ID", "off"), nil); err != nil || r.RepoHooks {
		t.Fatalf("off: %+v %v", r, err)
	}
	if _, err := redeliveryConfig(envOf("GITHUB_HOOK_ID", "abc"), nil); err == nil || !strings.Contains(err.Error(), "GITHUB_HOOK_ID must be") {
		t.Fatalf("bad id: %v", err)
	}
}

// `hero serve` with the GitHub variables mounts the signed webhook, and a
// trusted @hero comment goes through the inbox worker to a run: 👀 on the
// comment, then (no model configured here) a comment saying what to set.
func TestServeGitHubWebhook(t *testing.T) {
	enginetest.RequireBwrap(t)
	const secret, token = "s3cret", "ghp_serveTOKEN0123456789"
	api := githubtest.NewServer(t, token)
	git := githubtest.NewGitServer(t, "Codertocat", "Hello-World", map[string]string{"README.md": "hi\n"}, api.ValidToken)
	git.AnonymousRead()
	repoURL := git.RepoURL("Codertocat", "Hello-World")
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "HERO_ADDR": "127.0.0.1:0",
		"GITHUB_WEBHOOK_SECRET": secret, "GITHUB_TOKEN": token, "GITHUB_API_URL": api.APIURL(), "GITHUB_BOT_LOGIN": "hero-bot",
		"GITHUB_COURTESY_PER_HOUR": "1"}
	if _, _, err := hero(t, env, "", false, "project", "add", "hello", "--repo", repoURL); err != nil {
		t.Fatal(err)
	}
	base, logs := startServe(t, env)
	post := func(event, id string, body []byte, sig string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/github/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", id)
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ping := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	if code, body := post("ping", "p-1", ping, ghsurface.Sign([]byte(secret), ping)); code != 200 || !strings.Contains(body, "pong") {
		t.Fatalf("ping: %d %q", code, body)
	}
	if code, _ := post("ping", "p-2", ping, ghsurface.Sign([]byte("wrong"), ping)); code != 401 {
		t.Fatalf("badly signed ping: %d", code)
	}
	raw, err := os.ReadFile("testdata/issue_comment.created.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["repository"].(map[string]any)["html_url"] = repoURL
	c := m["comment"].(map[string]any)
	c["body"], c["author_association"], c["id"] = "@hero please fix the README", "OWNER", 4242
	body, _ := json.Marshal(m)
	if code, _ := post("issue_comment", "c-1", body, ghsurface.Sign([]byte(secret), body)); code != 202 {
		t.Fatalf("comment delivery: %d", code)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var eyes, told bool
		for _, r := range api.Reactions() {
			eyes = eyes || (r.CommentID == 4242 && r.Content == "eyes")
		}
		for _, c := range api.Comments() {
			told = told || strings.Contains(c.Body, "OPENAI_API_KEY")
		}
		if eyes && told {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("👀 %v, model message %v; comments %+v\nlogs:\n%s", eyes, told, api.Comments(), logs.String())
		}
	}

	// Two strangers ask; GITHUB_COURTESY_PER_HOUR=1 lets one polite reply
	// out, and /metrics counts the dropped one.
	for i, login := range []string{"stranger1", "stranger2"} {
		c["body"], c["author_association"], c["id"], c["updated_at"] = "@hero rewrite it", "NONE", 5000+i, time.Now().Format(time.RFC3339)
		c["user"].(map[string]any)["login"] = login
		body, _ := json.Marshal(m)
		if code, _ := post("issue_comment", "s-"+login, body, ghsurface.Sign([]byte(secret), body)); code != 202 {
			t.Fatalf("stranger's delivery: %d", code)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		polite := 0
		for _, c := range api.Comments() {
			if strings.Contains(c.Body, "owners, members and collaborators") {
				polite++
			}
		}
		if polite == 1 && strings.Contains(string(metrics), "hero_github_courtesy_replies_dropped_total 1") {
			break
		}
		if time.Now().After(deadline) || polite > 1 {
			t.Fatalf("%d courtesy replies; metrics:\n%s\nlogs:\n%s", polite, grepLines(string(metrics), "courtesy"), grepLines(logs.String(), "courtesy"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
