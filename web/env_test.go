package web_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/vault"
	"github.com/hero-dev/hero/web"
)

const (
	testKey  = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	testSalt = "00112233445566778899aabbccddeeff"
)

// syncBuffer collects log lines and response bodies so tests can search
// them for secret values.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeRuns records cancellations; the engine's own checks are tested in
// the engine package.
type fakeRuns struct {
	mu        sync.Mutex
	cancelled []string
}

func (f *fakeRuns) Cancel(_ context.Context, id string, by engine.Principal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, id+" by "+by.ID)
	return nil
}

// Decide refuses: deciding is tested against the real engine
// (decide_test.go), whose rules decide who may.
func (f *fakeRuns) Decide(context.Context, string, engine.Decision) (*store.Confirmation, error) {
	return nil, fmt.Errorf("this test's runs take no decisions: %w", engine.ErrNotAllowed)
}

// clock is a settable clock for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a settings page on a real SQLite database, served over HTTP, with
// a fake Google and GitHub in front.
type env struct {
	t      testing.TB
	db     *store.DB
	srv    *httptest.Server
	web    *web.Server
	idp    *fakeIdP
	logs   *syncBuffer
	bodies *syncBuffer
	runs   *fakeRuns
	clock  *clock
}

const siteAdmin = "lead@example.com"

func newEnv(t testing.TB, opts ...func(*web.Config)) *env {
	t.Helper()
	kr, err := vault.Parse("1:"+testKey, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "hero.db"), "", log, store.WithKeyring(kr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	idp := newFakeIdP(t)
	e := &env{t: t, db: db, idp: idp, logs: logs, bodies: &syncBuffer{}, runs: &fakeRuns{},
		clock: &clock{t: time.Now().UTC()}}
	idp.now = e.clock.Now
	cfg := web.Config{
		DB: db, Log: log, Runs: e.runs, Now: e.clock.Now,
		Google: web.GoogleDefaults(web.OAuthConfig{
			ClientID: idp.clientID, ClientSecret: idp.clientSecret,
			AuthURL: idp.srv.URL + "/authorize", TokenURL: idp.srv.URL + "/token",
			Issuer: idp.srv.URL, JWKSURL: idp.srv.URL + "/jwks",
		}),
		GitHub: web.GitHubDefaults(web.OAuthConfig{
			ClientID: idp.clientID, ClientSecret: idp.clientSecret,
			AuthURL: idp.srv.URL + "/authorize", TokenURL: idp.srv.URL + "/token", APIURL: idp.srv.URL + "/api",
		}),
		AdminEmails: []string{siteAdmin},
		SessionIdle: time.Hour, SessionMax: 24 * time.Hour,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.web, err = web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.web.Mount(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// recorder keeps every response body the test browser sees.
type recorder struct {
	next http.RoundTripper
	out  *syncBuffer
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.out.Write(body)
	r.out.Write([]byte("\n"))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// browser is one person's cookie jar against env.
type browser struct {
	e      *env
	follow *http.Client // follows redirects, like a browser
	once   *http.Client // stops at the first response
	jar    *cookiejar.Jar
	csrf   string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	tr := recorder{next: http.DefaultTransport, out: e.bodies}
	return &browser{e: e, jar: jar,
		follow: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second},
		once: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// login goes through the provider's login flow as email and returns the
// URL it ended on.
func (b *browser) login(provider, email string) string {
	b.e.t.Helper()
	b.e.idp.as(fakePerson{Email: email, Name: "Person " + email})
	resp, err := b.follow.Get(b.e.srv.URL + "/auth/" + provider + "/login")
	if err != nil {
		b.e.t.Fatal(err)
	}
	resp.Body.Close()
	b.refreshCSRF()
	return resp.Request.URL.String()
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// refreshCSRF reads the session's CSRF token from a page.
func (b *browser) refreshCSRF() {
	b.e.t.Helper()
	_, body := b.get("/settings/integrations")
	if m := csrfRE.FindStringSubmatch(body); m != nil {
		b.csrf = m[1]
	}
}

// get returns the status of the first response and the final body.
func (b *browser) get(path string) (int, string) {
	b.e.t.Helper()
	resp, err := b.once.Get(b.e.srv.URL + path)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post sends a form with the session's CSRF token and returns the first
// response's status, its Location and body.
func (b *browser) post(path string, form url.Values) (int, string, string) {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	resp, err := b.once.PostForm(b.e.srv.URL+path, form)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// sessionCookie is the browser's current session cookie value.
func (b *browser) sessionCookie() string {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == "hero_session" {
			return c.Value
		}
	}
	return ""
}

// text strips tags, for assertions on what a person reads.
func text(page string) string {
	s := regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(page, " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

// project creates a project directly in the database, with members.
func (e *env) project(name string, members map[string]store.Role) *store.Project {
	e.t.Helper()
	ctx := e.t.Context()
	p := &store.Project{Name: name, RepoURL: "https://github.com/acme/" + name + ".git", DefaultBranch: "main"}
	if err := e.db.CreateProject(ctx, p); err != nil {
		e.t.Fatal(err)
	}
	for email, role := range members {
		u, err := e.db.EnsureUser(ctx, email, "")
		if err != nil {
			e.t.Fatal(err)
		}
		if err := e.db.SetMember(ctx, p.ID, u.ID, role); err != nil {
			e.t.Fatal(err)
		}
	}
	return p
}
