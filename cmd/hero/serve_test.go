package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
	ghsurface "github.com/hero-dev/hero/webhooks/github"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

func TestServeHealthReadyMetricsAndShutdown(t *testing.T) {
	enginetest.RequireBwrap(t)
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "HERO_ADDR": "127.0.0.1:0", "HERO_SANDBOX_POOL": "1"}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, stdio{in: strings.NewReader(""), out: &out, err: &logs}, func(k string) string { return env[k] })
	}()
	addr := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if m := addr.FindStringSubmatch(logs.String()); m != nil {
			base = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Errorf("/readyz = %d %q", code, body)
	}
	code, body := get("/metrics")
	for _, want := range []string{"hero_runs_active 0", "go_goroutines", `hero_inbox_deliveries{status="failed"} 0`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q (status %d)", want, code)
		}
	}
	if !strings.Contains(logs.String(), "OPENAI_API_KEY is not set") {
		t.Errorf("no warning about the missing model key:\n%s", logs.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown log:\n%s", logs.String())
	}
}

// startServe runs `hero serve` in-process with env until the test ends and
// returns its base URL and its log. At the end serve gets 40 s to shut
// down: its own bounds are the 25 s drain and the loops' 5 s.
func startServe(t *testing.T, env map[string]string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out, logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, stdio{in: strings.NewReader(""), out: &out, err: &logs}, func(k string) string { return env[k] })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	addr := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := addr.FindStringSubmatch(logs.String()); m != nil {
			return m[1], &logs
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen:\n%s", logs.String())
		}
	}
}

// adminLink waits for the one-time admin link serve logs and returns its
// path.
func adminLink(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`link="?http://[^/\s"]+(/auth/admin\?token=[^\s"]+)`)
	var link string
	enginetest.Eventually(t, "the admin link in serve's log", func() bool {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			link = m[1]
		}
		return link != ""
	})
	return link
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A machine without bubblewrap (the first `make run` on a fresh machine,
// before install-deps ran): `hero serve` still starts; /readyz answers 200
// and says what to install, /metrics shows the sandbox down, the log says
// it, the settings page works, and a run started from chat fails with the
// same message. `hero run` refuses at once with it.
func TestServeWithoutBubblewrap(t *testing.T) {
	const secret, token = "s3cret", "ghp_serveTOKEN0123456789"
	api := githubtest.NewServer(t, token)
	repoURL := api.URL + "/Codertocat/Hello-World"
	data := t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": data, "HERO_ADDR": "127.0.0.1:0",
		"GITHUB_WEBHOOK_SECRET": secret, "GITHUB_TOKEN": token, "GITHUB_API_URL": api.APIURL(), "GITHUB_BOT_LOGIN": "hero-bot"}
	if _, _, err := hero(t, env, "", false, "project", "add", "hello", "--repo", repoURL); err != nil {
		t.Fatal(err)
	}
	// A PATH with git (hero's mirror runs on the host) but no bwrap.
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git is needed for this test: %v", err)
	}
	onlyGit := t.TempDir()
	if err := os.Symlink(gitBin, filepath.Join(onlyGit, "git")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", onlyGit)

	_, _, err = hero(t, map[string]string{"HERO_DATA_DIR": data, "OPENAI_API_KEY": "sk-test"}, "", false, "run", "--project", "hello", "fix it")
	if err == nil || !strings.Contains(err.Error(), "bubblewrap not found on PATH; install it with `apt-get install bubblewrap`") || !strings.Contains(err.Error(), "scripts/install-deps.sh git bwrap") {
		t.Fatalf("hero run without bubblewrap: %v", err)
	}

	base, logs := startServe(t, env)
	const hint = "apt-get install bubblewrap"
	if code, body := httpGet(t, base+"/readyz"); code != 200 || !strings.Contains(body, "ready, without a sandbox") || !strings.Contains(body, "bubblewrap not found on PATH") || !strings.Contains(body, hint) {
		t.Errorf("/readyz = %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/metrics"); code != 200 || !strings.Contains(body, "hero_sandbox_available 0") {
		t.Errorf("/metrics (%d) lacks hero_sandbox_available 0", code)
	}
	if !strings.Contains(logs.String(), "the sandbox does not work on this machine") || !strings.Contains(logs.String(), "scripts/install-deps.sh git bwrap") {
		t.Errorf("the log does not say what to install:\n%s", logs.String())
	}
	// The settings page works: the one-time admin link from the log opens
	// the project list.
	// (The link names HERO_ADDR's port 0; the path is what counts.)
	link := regexp.MustCompile(`link="?http://[^/]+(/auth/admin\?token=[\w-]+)`).FindStringSubmatch(logs.String())
	if link == nil {
		t.Fatalf("no admin link in the log:\n%s", logs.String())
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if resp, err := browser.Get(base + link[1]); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "hello") {
			t.Errorf("settings page after the admin link = %d %.300q", resp.StatusCode, b)
		}
	}

	// A trusted @hero comment starts a run, which fails saying what to install.
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
	req, _ := http.NewRequest(http.MethodPost, base+"/github/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "issue_comment")
	req.Header.Set("X-GitHub-Delivery", "c-1")
	req.Header.Set("X-Hub-Signature-256", ghsurface.Sign([]byte(secret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("comment delivery: %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		told := false
		for _, c := range api.Comments() {
			told = told || strings.Contains(c.Body, hint)
		}
		if told {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no comment saying what to install: %+v\nlogs:\n%s", api.Comments(), logs.String())
		}
	}
}
