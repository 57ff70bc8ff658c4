package web_test

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/web"
)

func TestGoogleLoginCreatesUserAndSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	end := b.login("google", "Ada@Example.com")
	if !strings.HasSuffix(end, "/settings/projects") {
		t.Fatalf("login ended on %s, want the projects page", end)
	}
	_, body := b.get("/settings/projects")
	if !strings.Contains(body, "ada@example.com") || !strings.Contains(text(body), "No projects yet") {
		t.Fatalf("projects page after login:\n%s", text(body))
	}
	u, err := e.db.UserByIdentity(t.Context(), "google", "sub-Ada@Example.com")
	if err != nil || u.Email != "ada@example.com" || u.Name != "Person Ada@Example.com" {
		t.Fatalf("identity: %+v, %v", u, err)
	}
	if u.IsAdmin {
		t.Fatal("a person not in AdminEmails became a site admin")
	}
}

func TestGitHubLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login("github", "octo@example.com")
	u, err := e.db.UserByIdentity(t.Context(), "github", "octo")
	if err != nil || u.Email != "octo@example.com" {
		t.Fatalf("github identity: %+v, %v", u, err)
	}
	if got := b.sessionCookie(); got == "" {
		t.Fatal("no session cookie after GitHub login")
	}
}

func TestLoginRedirectsOnlyToLocalPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, next := range []string{"https://evil.example", "//evil.example/x", "/\\evil.example", "https:evil.example", "javascript:alert(1)", "/%0d%0aLocation:%20https://evil.example"} {
		b := e.browser()
		e.idp.as(fakePerson{Email: "n@example.com"})
		resp, err := b.follow.Get(e.srv.URL + "/auth/google/login?next=" + url.QueryEscape(next))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Request.URL; got.Host != strings.TrimPrefix(e.srv.URL, "http://") {
			t.Errorf("next=%q ended on %s, want a page of this site", next, got)
		}
	}
	// A local next is honoured, through the login page too.
	b := e.browser()
	e.idp.as(fakePerson{Email: "n@example.com"})
	resp, err := b.follow.Get(e.srv.URL + "/settings/runs?status=running")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasSuffix(resp.Request.URL.Path, "/settings/login") {
		t.Fatalf("anonymous visit ended on %s, want the login page", resp.Request.URL)
	}
	resp, err = b.follow.Get(e.srv.URL + "/auth/google/login?next=" + url.QueryEscape("/settings/runs?status=running"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.RequestURI() != "/settings/runs?status=running" {
		t.Fatalf("login with a local next ended on %s", resp.Request.URL)
	}
}

func TestSessionIDChangesAtLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login("google", "a@example.com")
	first := b.sessionCookie()
	b.login("google", "a@example.com")
	second := b.sessionCookie()
	if first == "" || second == "" || first == second {
		t.Fatalf("session id before %q and after %q a second login: want two different ids", first, second)
	}
	// The old id no longer works.
	old := e.browser()
	u, _ := url.Parse(e.srv.URL)
	old.jar.SetCookies(u, []*http.Cookie{{Name: "hero_session", Value: first, Path: "/"}})
	if code, _ := old.get("/settings/projects"); code != http.StatusSeeOther {
		t.Fatalf("old session id: status %d, want 303 to the login page", code)
	}
	// A session id planted before login (fixation) is replaced.
	planted := e.browser()
	planted.jar.SetCookies(u, []*http.Cookie{{Name: "hero_session", Value: "attacker-chosen", Path: "/"}})
	planted.login("google", "v@example.com")
	if planted.sessionCookie() == "attacker-chosen" {
		t.Fatal("login kept a session id chosen before login")
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *web.Config) { c.TrustProxy = true })
	b := e.browser()
	b.login("google", "a@example.com")
	// Log in again behind a TLS-terminating proxy: the cookie is Secure.
	b.once.Jar = nil
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/auth/google/login", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := b.once.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var oauth *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "hero_oauth" {
			oauth = c
		}
	}
	if oauth == nil || !oauth.Secure || !oauth.HttpOnly || oauth.SameSite != http.SameSiteLaxMode {
		t.Fatalf("login attempt cookie behind https proxy: %+v", oauth)
	}
	// A direct login answer carries HttpOnly, SameSite=Lax, not Secure on http.
	rec := httptest.NewRecorder()
	mux := http.NewServeMux()
	e.web.Mount(mux)
	tok, err := e.web.AdminLoginURL(t.Context(), "http://127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, strings.TrimPrefix(tok, "http://127.0.0.1"), nil)
	r.RemoteAddr = "127.0.0.1:5000"
	mux.ServeHTTP(rec, r)
	var sess *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "hero_session" {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Secure {
		t.Fatalf("session cookie over plain http: %+v", sess)
	}
	rec = httptest.NewRecorder()
	tok, _ = e.web.AdminLoginURL(t.Context(), "http://127.0.0.1")
	r = httptest.NewRequest(http.MethodGet, strings.TrimPrefix(tok, "http://127.0.0.1"), nil)
	r.RemoteAddr = "127.0.0.1:5000"
	r.Header.Set("X-Forwarded-Proto", "https")
	mux.ServeHTTP(rec, r)
	// Through a proxy the admin link is refused (it is loopback-only).
	if rec.Code != http.StatusForbidden {
		t.Fatalf("admin link with proxy headers: %d, want 403", rec.Code)
	}
	r = httptest.NewRequest(http.MethodGet, "https://127.0.0.1"+strings.TrimPrefix(tok, "http://127.0.0.1"), nil)
	r.RemoteAddr = "127.0.0.1:5000"
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, r)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "hero_session" && !c.Secure {
			t.Fatalf("session cookie over TLS is not Secure: %+v", c)
		}
	}
}

func TestLoginStateIsBoundToTheBrowser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The victim starts a login; the attacker's browser finishes it with
	// the victim's callback URL: refused.
	victim := e.browser()
	e.idp.as(fakePerson{Email: "victim@example.com"})
	resp, err := victim.once.Get(e.srv.URL + "/auth/google/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = victim.once.Get(resp.Header.Get("Location")) // the provider approves
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	attacker := e.browser()
	resp, err = attacker.follow.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Query().Get("error") != "expired" || attacker.sessionCookie() != "" {
		t.Fatalf("callback in another browser ended on %s with session %q", resp.Request.URL, attacker.sessionCookie())
	}
	// The state is spent: even the victim cannot replay it now.
	resp, err = victim.follow.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if victim.sessionCookie() != "" {
		t.Fatal("a spent state logged in")
	}
}

func TestIDTokenIsVerified(t *testing.T) {
	t.Parallel()
	cases := map[string]func(f *fakeIdP){
		"forged signature": func(f *fakeIdP) {
			k, _ := rsa.GenerateKey(rand.Reader, 2048)
			f.signWith = k
		},
		"wrong nonce":      func(f *fakeIdP) { f.nonce = "replayed" },
		"unverified email": func(f *fakeIdP) {},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.idp.mu.Lock()
			tamper(e.idp)
			e.idp.mu.Unlock()
			b := e.browser()
			e.idp.as(fakePerson{Email: "m@example.com", Unverified: name == "unverified email"})
			resp, err := b.follow.Get(e.srv.URL + "/auth/google/login")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if b.sessionCookie() != "" || !strings.HasSuffix(resp.Request.URL.Path, "/settings/login") {
				t.Fatalf("%s: logged in (ended on %s)", name, resp.Request.URL)
			}
			if _, err := e.db.UserByEmail(t.Context(), "m@example.com"); err == nil {
				t.Fatalf("%s: a user was created", name)
			}
		})
	}
}

func TestCrossSitePostIsRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login("google", siteAdmin)
	form := url.Values{"name": {"evil"}, "repo_url": {"https://example.com/e.git"}, "csrf": {b.csrf}}
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example"},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/settings/projects", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := b.once.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST with %v: status %d, want 403", h, resp.StatusCode)
		}
	}
	// Same site but no (or a wrong) token: rejected too.
	for _, tok := range []string{"", "wrong"} {
		f := url.Values{"name": {"evil"}, "repo_url": {"https://example.com/e.git"}, "csrf": {tok}}
		if code, _, _ := b.post("/settings/projects", f); code != http.StatusForbidden {
			t.Errorf("POST with csrf %q: status %d, want 403", tok, code)
		}
	}
	if _, err := e.db.ProjectByName(t.Context(), "evil"); err == nil {
		t.Fatal("a forged POST created a project")
	}
	// The real form works.
	if code, loc, _ := b.post("/settings/projects", url.Values{"name": {"good"}, "repo_url": {"https://example.com/g.git"}}); code != http.StatusSeeOther || loc != "/settings/projects/good?ok=created" {
		t.Fatalf("same-site POST: %d → %s", code, loc)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login("google", "a@example.com")
	// Active use keeps the session alive past the idle limit…
	for range 3 {
		e.clock.Add(50 * time.Minute)
		if code, _ := b.get("/settings/projects"); code != http.StatusOK {
			t.Fatalf("active session: status %d", code)
		}
	}
	// …but not past 59 idle minutes plus more.
	e.clock.Add(61 * time.Minute)
	if code, _ := b.get("/settings/projects"); code != http.StatusSeeOther {
		t.Fatalf("idle session: status %d, want 303 to login", code)
	}
	// The absolute limit ends even an active session.
	b.login("google", "a@example.com")
	for range 25 {
		e.clock.Add(59 * time.Minute)
		b.get("/settings/projects")
	}
	if code, _ := b.get("/settings/projects"); code != http.StatusSeeOther {
		t.Fatalf("session older than SessionMax: status %d, want 303", code)
	}
}

func TestLogoutEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	laptop, phone := e.browser(), e.browser()
	laptop.login("google", "a@example.com")
	phone.login("google", "a@example.com")
	if code, loc, _ := laptop.post("/settings/logout", nil); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/settings/login") {
		t.Fatalf("logout: %d %s", code, loc)
	}
	if code, _ := laptop.get("/settings/projects"); code != http.StatusSeeOther {
		t.Fatal("logged-out laptop still in")
	}
	if code, _ := phone.get("/settings/projects"); code != http.StatusOK {
		t.Fatal("logout on the laptop logged out the phone")
	}
	laptop.login("google", "a@example.com")
	if code, _, _ := laptop.post("/settings/logout-everywhere", nil); code != http.StatusSeeOther {
		t.Fatal("logout everywhere failed")
	}
	for name, b := range map[string]*browser{"laptop": laptop, "phone": phone} {
		if code, _ := b.get("/settings/projects"); code != http.StatusSeeOther {
			t.Errorf("%s still logged in after logout everywhere", name)
		}
	}
}

func TestAdminLoginLinkWorksOnceFromLoopback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *web.Config) { c.Google, c.GitHub = nil, nil })
	link, err := e.web.AdminLoginURL(t.Context(), e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	resp, err := b.follow.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/settings/projects" || b.sessionCookie() == "" {
		t.Fatalf("admin link ended on %s", resp.Request.URL)
	}
	b.refreshCSRF()
	if code, _, _ := b.post("/settings/projects", url.Values{"name": {"first"}, "repo_url": {"https://example.com/repo.git"}}); code != http.StatusSeeOther {
		t.Fatalf("the first-run admin cannot create a project: %d", code)
	}
	// Once only.
	again := e.browser()
	if code, body := again.get(strings.TrimPrefix(link, e.srv.URL)); code != http.StatusForbidden || !strings.Contains(body, "already used") {
		t.Fatalf("second use: %d %s", code, text(body))
	}
	// Only from loopback, and not through a proxy.
	link2, _ := e.web.AdminLoginURL(t.Context(), e.srv.URL)
	mux := http.NewServeMux()
	e.web.Mount(mux)
	path := strings.TrimPrefix(link2, e.srv.URL)
	for name, mod := range map[string]func(r *http.Request){
		"remote":  func(r *http.Request) { r.RemoteAddr = "203.0.113.7:4000" },
		"proxied": func(r *http.Request) { r.RemoteAddr = "127.0.0.1:4000"; r.Header.Set("X-Forwarded-For", "203.0.113.7") },
	} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		mod(r)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, rec.Code)
		}
	}
	// Refused attempts did not spend the link.
	b2 := e.browser()
	resp, err = b2.follow.Get(link2)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if b2.sessionCookie() == "" {
		t.Fatal("the link stopped working after refused remote attempts")
	}
	// A newer link (the next start) revokes an unused older one.
	older, _ := e.web.AdminLoginURL(t.Context(), e.srv.URL)
	newer, _ := e.web.AdminLoginURL(t.Context(), e.srv.URL)
	if code, _ := e.browser().get(strings.TrimPrefix(older, e.srv.URL)); code != http.StatusForbidden {
		t.Fatalf("an older unused link still works: %d", code)
	}
	b2 = e.browser()
	resp, err = b2.follow.Get(newer)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if b2.sessionCookie() == "" {
		t.Fatal("the link stopped working after refused remote attempts")
	}
	// The login page says how to get in.
	if _, body := e.browser().get("/settings/login"); !strings.Contains(body, "one-time admin link") {
		t.Fatalf("login page without providers:\n%s", text(body))
	}
}

func TestSecretValueNeverLeaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login("google", siteAdmin)
	const value = "s3cr3t-VALUE-4f9a-do-not-leak"
	if code, _, _ := b.post("/settings/projects", url.Values{"name": {"api"}, "repo_url": {"https://github.com/acme/api.git"}}); code != http.StatusSeeOther {
		t.Fatal("create project")
	}
	steps := []url.Values{
		{"name": {"NPM_TOKEN"}, "value": {value}},                 // add
		{"name": {"NPM_TOKEN"}, "value": {value + "-2"}},          // replace
		{"name": {"bad name"}, "value": {value}},                  // rejected name
		{"name": {"BIG"}, "value": {strings.Repeat(value, 2000)}}, // too big
		{"name": {"EMPTY"}, "value": {""}},
	}
	wantCodes := []int{303, 303, 400, 400, 400}
	for i, f := range steps {
		code, _, body := b.post("/settings/projects/api/secrets", f)
		if code != wantCodes[i] {
			t.Errorf("step %d: status %d, want %d: %s", i, code, wantCodes[i], text(body))
		}
	}
	// A name that would run code before any program starts is refused with
	// the reason (issue 8 #1).
	if code, _, body := b.post("/settings/projects/api/secrets", url.Values{"name": {"LD_PRELOAD"}, "value": {value}}); code != http.StatusBadRequest ||
		!strings.Contains(text(body), "the name is reserved because the dynamic loader acts on LD_ variables") {
		t.Errorf("LD_PRELOAD: status %d, page says: %.400s", code, text(body))
	}
	code, body := b.get("/settings/projects/api/secrets")
	if code != 200 || !strings.Contains(body, "NPM_TOKEN") || !strings.Contains(text(body), "replaced") || !strings.Contains(text(body), "added") {
		t.Fatalf("secrets page:\n%s", text(body))
	}
	if code, _, _ := b.post("/settings/projects/api/secrets/NPM_TOKEN/delete", nil); code != http.StatusSeeOther {
		t.Fatalf("delete: %d", code)
	}
	audit, err := e.db.ListSecretAudit(t.Context(), mustProject(t, e, "api").ID, 10)
	if err != nil || len(audit) != 3 || audit[0].Action != store.SecretDeleted || audit[2].Action != store.SecretAdded || audit[0].Actor != siteAdmin {
		t.Fatalf("audit: %+v %v", audit, err)
	}
	for name, s := range map[string]string{"response bodies": e.bodies.String(), "logs": e.logs.String()} {
		if strings.Contains(s, value) || strings.Contains(s, "s3cr3t") {
			t.Errorf("the secret value appears in the %s", name)
		}
	}
	if !strings.Contains(e.logs.String(), "NPM_TOKEN") {
		t.Error("secret changes are not logged by name")
	}
}

func mustProject(t *testing.T, e *env, name string) *store.Project {
	t.Helper()
	p, err := e.db.ProjectByName(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProjectSettingsValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login("google", siteAdmin)
	if code, _, _ := b.post("/settings/projects", url.Values{"name": {"web"}, "repo_url": {"git@github.com:acme/web.git"}}); code != 303 {
		t.Fatal("create")
	}
	good := url.Values{
		"repo_url": {"https://github.com/acme/web.git"}, "default_branch": {"develop"},
		"sandbox_provider": {"local"}, "sandbox_template": {"node20"}, "sandbox_network": {"on"},
		"sandbox_cpu_seconds": {"600"}, "sandbox_memory_mb": {"2048"}, "sandbox_max_processes": {"256"},
		"sandbox_idle_timeout_min": {"15"}, "sandbox_disk_mb": {"4096"}, "sandbox_install_secrets": {"on"}, "budget_per_run_usd": {"2.5"}, "budget_per_day_usd": {"20"},
		"max_steps": {"80"}, "wall_clock_min": {"45"}, "uncertainty_threshold": {"0.6"}, "confirmation_ttl_min": {"60"},
		"policy_rules":        {"run_command confirm ^npm publish\r\n# comment\r\ngit_push allow"},
		"issues_become_cards": {"on"},
	}
	if code, loc, body := b.post("/settings/projects/web", good); code != 303 || loc != "/settings/projects/web?ok=saved" {
		t.Fatalf("save: %d %s %s", code, loc, text(body))
	}
	p := mustProject(t, e, "web")
	want := store.Project{RepoURL: "https://github.com/acme/web.git", DefaultBranch: "develop",
		Sandbox:    store.SandboxConfig{Provider: "local", Template: "node20", NetworkAllowed: true, CPUSeconds: 600, MemoryMB: 2048, MaxProcesses: 256, IdleTimeoutS: 900, DiskMB: 4096, InstallSecrets: true},
		Governance: store.Governance{BudgetPerRunUSD: 2.5, BudgetPerDayUSD: 20, MaxSteps: 80, WallClockS: 2700, UncertaintyThreshold: 0.6, ConfirmationTTLS: 3600},
	}
	if p.RepoURL != want.RepoURL || p.DefaultBranch != want.DefaultBranch || p.Sandbox != want.Sandbox || p.Governance != want.Governance || !p.IssuesBecomeCards {
		t.Fatalf("saved project:\n%+v\nwant\n%+v", p, want)
	}
	if len(p.PolicyRules) != 2 || p.PolicyRules[0] != (store.PolicyRule{Tool: "run_command", Action: "confirm", Pattern: "^npm publish"}) || p.PolicyRules[1] != (store.PolicyRule{Tool: "git_push", Action: "allow"}) {
		t.Fatalf("rules: %+v", p.PolicyRules)
	}
	_, page := b.get("/settings/projects/web?ok=saved")
	for _, s := range []string{"Saved.", "run_command confirm ^npm publish", "Default rules", "delete_file", `name="issues_become_cards" checked`} {
		if !strings.Contains(page, s) && !strings.Contains(text(page), s) {
			t.Errorf("project page lacks %q", s)
		}
	}
	bad := map[string][2]string{
		"policy_rules":          {"run_command maybe", "unknown action \"maybe\""},
		"uncertainty_threshold": {"1.5", "Uncertainty threshold must be a number from 0 to 1"},
		"max_steps":             {"ten", "Max steps must be a whole number"},
		"repo_url":              {"https://user:tok@github.com/a/b.git", "must not contain a password"},
		"default_branch":        {"feat..x", "not a valid git branch name"},
		"sandbox_provider":      {"docker", "Sandbox provider must be local or e2b"},
		"sandbox_disk_mb":       {"8", "Disk (MB) must be at least 16"},
	}
	for field, c := range bad {
		f := url.Values{}
		for k, v := range good {
			f[k] = v
		}
		f.Set(field, c[0])
		if field == "policy_rules" {
			f.Set(field, "git_push allow\n"+c[0])
		}
		code, _, body := b.post("/settings/projects/web", f)
		if code != http.StatusBadRequest || !strings.Contains(text(body), c[1]) {
			t.Errorf("%s=%q: %d, want 400 saying %q; page says: %.300s", field, c[0], code, c[1], text(body))
		}
		// The form comes back as typed.
		if field == "max_steps" && !strings.Contains(body, `value="ten"`) {
			t.Error("the rejected form lost what was typed")
		}
	}
	if mustProject(t, e, "web").Governance != want.Governance {
		t.Fatal("a rejected form changed the project")
	}
	// Duplicate and invalid names.
	if code, _, body := b.post("/settings/projects", url.Values{"name": {"web"}, "repo_url": {"https://example.com/x.git"}}); code != http.StatusConflict || !strings.Contains(text(body), "already a project called") {
		t.Errorf("duplicate name: %d %s", code, text(body))
	}
	if code, _, _ := b.post("/settings/projects", url.Values{"name": {"../x"}, "repo_url": {"https://example.com/x.git"}}); code != http.StatusBadRequest {
		t.Errorf("bad name: %d", code)
	}
}

func TestMembersAndOwnersRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.project("shop", map[string]store.Role{"owner@example.com": "owner", "admin@example.com": "admin"})
	admin := e.browser()
	admin.login("google", "admin@example.com")
	if code, _, _ := admin.post("/settings/projects/shop/members", url.Values{"email": {"New@Example.com"}, "role": {"approver"}}); code != 303 {
		t.Fatalf("admin adds approver: %d", code)
	}
	_, body := admin.get("/settings/projects/shop/members")
	if !strings.Contains(body, "new@example.com") {
		t.Fatal("new member not listed")
	}
	if code, _, body := admin.post("/settings/projects/shop/members", url.Values{"email": {"x@example.com"}, "role": {"owner"}}); code != http.StatusForbidden || !strings.Contains(text(body), "Only an owner") {
		t.Fatalf("admin makes an owner: %d", code)
	}
	if code, _, _ := admin.post("/settings/projects/shop/members", url.Values{"email": {"owner@example.com"}, "role": {"viewer"}}); code != http.StatusForbidden {
		t.Fatalf("admin demotes the owner: %d", code)
	}
	if code, _, body := admin.post("/settings/projects/shop/members", url.Values{"email": {"x@example.com"}, "role": {"god"}}); code != 400 || !strings.Contains(text(body), "Role must be one of") {
		t.Fatalf("unknown role: %d", code)
	}
	owner := e.browser()
	owner.login("google", "owner@example.com")
	ou, _ := e.db.UserByEmail(t.Context(), "owner@example.com")
	if code, _, body := owner.post("/settings/projects/shop/members/"+itoa(ou.ID)+"/remove", nil); code != 400 || !strings.Contains(text(body), "at least one owner") {
		t.Fatalf("last owner removes themself: %d %s", code, text(body))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCleanupRemovesExpiredSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	idle, fresh := e.browser(), e.browser()
	idle.login("google", "a@example.com")
	e.clock.Add(2 * time.Hour)
	fresh.login("google", "b@example.com")
	if err := e.web.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := e.db.Bun().NewSelect().Table("web_sessions").ColumnExpr("COUNT(*)").Scan(t.Context(), &n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d sessions left after cleanup, want only the fresh one", n)
	}
	if code, _ := fresh.get("/settings/projects"); code != http.StatusOK {
		t.Fatal("cleanup ended a live session")
	}
}

// A project's repository may be a directory on this machine only under
// HERO_LOCAL_REPO_ROOT, links followed, and never hero's data directory:
// /etc, a link out of the root and the data directory are refused with
// the reason on the page, and nothing is saved.
func TestLocalRepositoryPaths(t *testing.T) {
	t.Parallel()
	root, data := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, filepath.Join(root, "data")); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *web.Config) { c.LocalRepos = sandbox.LocalRepos{Root: root, DataDir: data} })
	b := e.browser()
	b.login("google", siteAdmin)
	for _, c := range [][2]string{
		{"/etc", "not under HERO_LOCAL_REPO_ROOT"},
		{"file:///etc", "not under HERO_LOCAL_REPO_ROOT"},
		{filepath.Join(root, "escape"), "(/etc once links are followed) is not under HERO_LOCAL_REPO_ROOT"},
		{filepath.Join(root, "data"), "hero's data directory"},
		{data, "hero's data directory"},
		{filepath.Join(root, "missing"), "no such file or directory"},
	} {
		code, _, body := b.post("/settings/projects", url.Values{"name": {"local"}, "repo_url": {c[0]}})
		if code != http.StatusBadRequest || !strings.Contains(text(body), c[1]) {
			t.Errorf("%s: %d, want 400 saying %q; page says: %.300s", c[0], code, c[1], text(body))
		}
	}
	if _, err := e.db.ProjectByName(t.Context(), "local"); err == nil {
		t.Fatal("a refused path was saved")
	}
	for i, ok := range []string{filepath.Join(root, "app"), "file://" + filepath.Join(root, "app")} {
		if code, _, body := b.post("/settings/projects", url.Values{"name": {fmt.Sprintf("local%d", i)}, "repo_url": {ok}}); code != http.StatusSeeOther {
			t.Errorf("%s under the root: %d %.300s", ok, code, text(body))
		}
	}
	// Without a root, no local path at all.
	none := newEnv(t)
	nb := none.browser()
	nb.login("google", siteAdmin)
	if code, _, body := nb.post("/settings/projects", url.Values{"name": {"local"}, "repo_url": {filepath.Join(root, "app")}}); code != http.StatusBadRequest || !strings.Contains(text(body), "HERO_LOCAL_REPO_ROOT") {
		t.Errorf("no root: %d %.300s", code, text(body))
	}
}

// Replicas share the database: another replica's start (its own admin
// link) leaves this replica's unused link and the administrator's chat
// link code working.
func TestAdminLinkOfAnotherReplicaSurvives(t *testing.T) {
	t.Parallel()
	var cfg web.Config
	e := newEnv(t, func(c *web.Config) { c.Google, c.GitHub, c.Replica = nil, nil, "replica-a"; cfg = *c })
	mine, err := e.web.AdminLoginURL(t.Context(), e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := e.db.UserByEmail(t.Context(), "admin@localhost")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.CreateLinkCode(t.Context(), admin.ID, "K7M2XQ9D", e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	cfg.Replica = "replica-b"
	other, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.AdminLoginURL(t.Context(), e.srv.URL); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	resp, err := b.follow.Get(mine)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if b.sessionCookie() == "" {
		t.Fatal("another replica's start revoked this replica's admin link")
	}
	if id, err := e.db.UseLinkCode(t.Context(), "K7M2XQ9D", e.clock.Now()); err != nil || id != admin.ID {
		t.Fatalf("another replica's start revoked the administrator's chat link code: %d %v", id, err)
	}
}
