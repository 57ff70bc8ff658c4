package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hero-dev/hero/store"
)

// chromium starts Debian's Chromium headless for one test, or skips the
// test when it is not installed (failing instead when CI is set: `make
// deps` installs it).
func chromium(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed but CI is set: run `make deps` (scripts/install-deps.sh chromium)")
		}
		t.Skip("chromium is not installed: run `make deps` (scripts/install-deps.sh chromium) for the browser test")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancelCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

// TestBrowserLoginProjectSecret drives a real Chromium: log in through
// the (fake) Google, create a project, add a secret and see only its name.
// Screenshots go to the test's artifact directory (go test -artifacts).
func TestBrowserLoginProjectSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := chromium(t)
	e.idp.as(fakePerson{Email: siteAdmin, Name: "Team Lead"})
	dir := t.ArtifactDir()
	shot := func(name string, full bool) {
		t.Helper()
		a := chromedp.CaptureScreenshot()
		if full {
			a = chromedp.FullScreenshot(100)
		}
		buf, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(dir, name+".png")
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	read := func(a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("browser: read page: %v", err)
		}
		return v
	}
	const value = "npm_4f9aBrowserSecretValue77"

	do("open the settings page", chromedp.Navigate(e.srv.URL+"/settings/projects"), chromedp.WaitVisible(`a.button`))
	loginText := read(chromedp.Text(`main`))
	shot("1-login", false)

	do("log in with Google", chromedp.Click(`a.button`), chromedp.WaitVisible(`input[name=repo_url]`))
	do("create a project",
		chromedp.SendKeys(`input[name=name]`, "webapp"),
		chromedp.SendKeys(`input[name=repo_url]`, "https://github.com/acme/webapp.git"),
		chromedp.Click(`form[action="/settings/projects"] button`),
		chromedp.WaitVisible(`textarea[name=policy_rules]`),
	)
	projectText := read(chromedp.Text(`main`))
	shot("2-project", true)

	do("add a secret",
		chromedp.Click(`nav.tabs a[href$="/secrets"]`),
		chromedp.WaitVisible(`input[name=value]`),
		chromedp.SendKeys(`input[name=name]`, "NPM_TOKEN"),
		chromedp.SendKeys(`input[name=value]`, value),
		chromedp.Click(`form[action$="/secrets"] button`),
		chromedp.WaitVisible(`.flash`),
	)
	secretsText := read(chromedp.Text(`main`))
	secretsHTML := read(chromedp.OuterHTML(`html`))
	valueField := read(chromedp.Value(`input[name=value]`))
	shot("3-secrets", true)

	do("add a member",
		chromedp.Click(`nav.tabs a[href$="/members"]`),
		chromedp.WaitVisible(`input[type=email]`),
		chromedp.SendKeys(`input[type=email]`, "grace@example.com"),
		chromedp.Click(`form.grid button`),
		chromedp.WaitVisible(`.flash`),
	)
	membersText := read(chromedp.Text(`main`))
	shot("4-members", true)

	ex := e.seedRun(mustProject(t, e, "webapp"), store.StatusRunning, "Make the checkout tests pass again and open a pull request")
	do("list runs", chromedp.Click(`.top nav a[href="/settings/runs"]`), chromedp.WaitVisible(`table.list`))
	runsText := read(chromedp.Text(`main`))
	shot("5-runs", false)
	do("open a run", chromedp.Click(`a[href="/settings/runs/`+ex.ID+`"]`), chromedp.WaitVisible(`ol.steps`))
	shot("6-run", true)
	do("cancel it", chromedp.Click(`form[action$="/cancel"] button`), chromedp.WaitVisible(`.flash`))
	do("integrations", chromedp.Click(`.top nav a[href="/settings/integrations"]`), chromedp.WaitVisible(`h1`))
	shot("7-integrations", false)

	do("look at it on a phone",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
		chromedp.Navigate(e.srv.URL+"/settings/projects/webapp"),
		chromedp.WaitVisible(`textarea[name=policy_rules]`),
	)
	shot("8-project-phone", false)
	do("members on a phone", chromedp.Navigate(e.srv.URL+"/settings/projects/webapp/members"), chromedp.WaitVisible(`table.list`))
	shot("9-members-phone", true)
	do("runs on a phone", chromedp.Navigate(e.srv.URL+"/settings/runs"), chromedp.WaitVisible(`table.list`))
	shot("10-runs-phone", false)

	if !strings.Contains(loginText, "Continue with Google") {
		t.Errorf("login page says: %s", loginText)
	}
	if !strings.Contains(projectText, "Project created.") || !strings.Contains(projectText, "Confirmation policy") {
		t.Errorf("project page says: %s", projectText)
	}
	if !strings.Contains(secretsText, "Secret added.") || !strings.Contains(secretsText, "NPM_TOKEN") || !strings.Contains(secretsText, siteAdmin) {
		t.Errorf("secrets page says: %s", secretsText)
	}
	if strings.Contains(secretsHTML, value) || valueField != "" {
		t.Error("the secret's value is on the page after saving it")
	}
	if strings.Contains(e.logs.String(), value) {
		t.Error("the secret's value is in the log")
	}
	if !strings.Contains(membersText, "grace@example.com") || !strings.Contains(membersText, "Member saved.") {
		t.Errorf("members page says: %s", membersText)
	}
	if !strings.Contains(runsText, ex.ID) || !strings.Contains(runsText, "running") {
		t.Errorf("runs page says: %s", runsText)
	}
	e.runs.mu.Lock()
	if len(e.runs.cancelled) != 1 {
		t.Errorf("cancel from the run page reached the engine %d times", len(e.runs.cancelled))
	}
	e.runs.mu.Unlock()
	p := mustProject(t, e, "webapp")
	vals, err := e.db.SecretValues(t.Context(), p.ID)
	if err != nil || vals["NPM_TOKEN"] != value {
		t.Fatalf("stored secret: %v", err)
	}
}
