package github

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

func TestOAuthTokenRefreshedAndPersisted(t *testing.T) {
	t.Parallel()
	db := openStore(t, t.TempDir())
	api := githubtest.NewServer(t)
	api.EnableOAuth("ghr_first", 8*time.Hour)
	// The stored token expired a minute ago.
	if err := db.SaveGitHubToken(t.Context(), "octo", store.OAuthToken{AccessToken: "ghu_expired", RefreshToken: "ghr_first", Expiry: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	o, err := NewOAuthCredentials("Iv1.client", "secret", api.URL+"/login/oauth/access_token", "octo", db, nil,
		WithOnToken(func(tok string) { seen = append(seen, tok) }))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := o.Token(t.Context(), Repo{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "ghu_fresh") || !api.ValidToken(tok) {
		t.Fatalf("token %q", tok)
	}
	stored, err := db.GitHubToken(t.Context(), "octo")
	if err != nil {
		t.Fatal(err)
	}
	if stored.AccessToken != tok || !strings.HasPrefix(stored.RefreshToken, "ghr_next") || time.Until(stored.Expiry) < 7*time.Hour {
		t.Fatalf("persisted %+v", stored)
	}
	// Still valid: no second refresh.
	if again, _ := o.Token(t.Context(), Repo{}); again != tok || api.RefreshCalls() != 1 {
		t.Fatalf("second call refreshed (%d calls)", api.RefreshCalls())
	}
	// A restart reads the rotated pair and uses it; the old refresh token
	// no longer works at the endpoint.
	o2, _ := NewOAuthCredentials("Iv1.client", "secret", api.URL+"/login/oauth/access_token", "octo", db, nil)
	o2.now = func() time.Time { return time.Now().Add(8 * time.Hour) } // past expiry
	tok2, err := o2.Token(t.Context(), Repo{})
	if err != nil || tok2 == tok || !api.ValidToken(tok2) {
		t.Fatalf("refresh after restart: %q %v", tok2, err)
	}
	if len(seen) != 2 || seen[0] != "ghu_expired" || seen[1] != tok {
		t.Fatalf("OnToken saw %v", seen)
	}
	// A refresh token the endpoint refuses is a clear error without it.
	if err := db.SaveGitHubToken(t.Context(), "bad", store.OAuthToken{AccessToken: "x", RefreshToken: "ghr_revoked", Expiry: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	o3, _ := NewOAuthCredentials("Iv1.client", "secret", api.URL+"/login/oauth/access_token", "bad", db, nil)
	if _, err := o3.Token(t.Context(), Repo{}); err == nil || strings.Contains(err.Error(), "ghr_revoked") || !strings.Contains(err.Error(), "refresh") {
		t.Fatalf("revoked refresh: %v", err)
	}
}

func testKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

func TestAppInstallationTokenReminted(t *testing.T) {
	t.Parallel()
	key, pemText := testKey(t)
	parsed, err := ParsePrivateKey(strings.ReplaceAll(pemText, "\n", `\n`)) // as an env file holds it
	if err != nil || !parsed.Equal(key) {
		t.Fatalf("parse key: %v", err)
	}
	api := githubtest.NewServer(t)
	api.EnableApp(4242, &key.PublicKey, 77, time.Hour)
	var mu sync.Mutex
	var observed []string // what the redactor is taught (WithOnToken)
	app, err := NewAppCredentials(4242, parsed, api.APIURL(), nil, WithOnToken(func(tok string) {
		mu.Lock()
		observed = append(observed, tok)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	app.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	repo := Repo{"Codertocat", "Hello-World"}

	t1, err := app.Token(t.Context(), repo)
	if err != nil || !api.ValidToken(t1) {
		t.Fatalf("first token %q %v", t1, err)
	}
	// Cached while far from expiry (the JWT is checked with real time by
	// the fake, so only the token cache sees the advanced clock).
	advance(30 * time.Minute)
	if t2, _ := app.Token(t.Context(), repo); t2 != t1 || app.Mints() != 1 {
		t.Fatalf("re-minted too early (%d mints)", app.Mints())
	}
	// Within the 5-minute margin of its one-hour life: a new one.
	advance(26 * time.Minute)
	t3, err := app.Token(t.Context(), repo)
	if err != nil || t3 == t1 || app.Mints() != 2 {
		t.Fatalf("not re-minted before expiry: %q %v (%d mints)", t3, err, app.Mints())
	}
	if m := api.Minted(); len(m) != 2 {
		t.Fatalf("minted %v", m)
	}
	mu.Lock()
	if len(observed) != 2 || observed[0] != t1 || observed[1] != t3 {
		t.Fatalf("the token observer saw %d tokens, want the two minted", len(observed))
	}
	mu.Unlock()
	// The installation was looked up once, with the App's JWT.
	var lookups int
	for _, c := range api.Calls() {
		if c.Path == "/repos/Codertocat/Hello-World/installation" {
			lookups++
			if strings.Count(c.Token, ".") != 2 {
				t.Fatalf("installation lookup without a JWT: %q", c.Token)
			}
		}
	}
	if lookups != 1 {
		t.Fatalf("%d installation lookups", lookups)
	}
	// A wrong key is refused by GitHub.
	other, _ := testKey(t)
	bad, _ := NewAppCredentials(4242, other, api.APIURL(), nil)
	if _, err := bad.Token(t.Context(), repo); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestRateLimitHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	// A secondary rate limit with Retry-After: the comment is retried
	// after the wait instead of failing.
	e.api.RateLimitNext("/repos/Codertocat/Hello-World/issues/1/comments", http.StatusForbidden, "Retry-After", "1")
	start := time.Now()
	if err := e.svc.reply(t.Context(), Thread{Repo: Repo{"Codertocat", "Hello-World"}, Number: 1}, "hello"); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("retried after %s, before Retry-After", waited)
	}
	if cs := e.api.Comments(); len(cs) != 1 {
		t.Fatalf("comments %d", len(cs))
	}
	// Primary limit exhausted with a reset beyond the longest wait: a clear
	// error, no endless retry.
	e.api.RateLimitNext("/repos/Codertocat/Hello-World/issues/1/comments", http.StatusForbidden,
		"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	err := e.svc.reply(t.Context(), Thread{Repo: Repo{"Codertocat", "Hello-World"}, Number: 1}, "again")
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("exhausted limit: %v", err)
	}
}

// TestWritesArePaced: content-creating calls are spaced by WritePace.
func TestWritesArePaced(t *testing.T) {
	t.Parallel()
	const pace = 150 * time.Millisecond
	e := newEnv(t, nil, nil, nil, fixtureRepo, func(c *envConfig) { c.Pub.WritePace = pace })
	th := Thread{Repo: Repo{"Codertocat", "Hello-World"}, Number: 1}
	const writes = 4
	start := time.Now()
	for i := range writes {
		if err := e.svc.reply(t.Context(), th, "n"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The pace holds write i until i paces after the first, which went
	// after start; the network and a loaded machine only make a write
	// later. (Two arrivals' distance is no measure: the first can be late
	// by any amount.) Unpaced writes land within a few ms of start.
	calls := e.api.Calls()
	if len(calls) != writes {
		t.Fatalf("%d writes arrived, want %d", len(calls), writes)
	}
	for i, c := range calls {
		if at, least := c.At.Sub(start), time.Duration(i)*pace; at < least {
			t.Errorf("write %d arrived %s after the first was asked for, want at least %s at a pace of %s", i, at, least, pace)
		}
	}
}

func TestRedeliverFailed(t *testing.T) {
	t.Parallel()
	key, _ := testKey(t)
	api := githubtest.NewServer(t, testToken)
	api.EnableApp(4242, &key.PublicKey, 77, time.Hour)
	e := newEnv(t, nil, api, nil, fixtureRepo)
	app, err := NewAppCredentials(4242, key, api.APIURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// g-ok succeeded; g-late failed but hero has it since; g-retried
	// failed then succeeded; g-old is outside the window; g-lost failed.
	e.deliver("issues", "g-late", fixture(t, "issues.opened.json", nil))
	api.AddDelivery(githubtest.HookDelivery{ID: 1, GUID: "g-old", StatusCode: 502, Event: "issues", At: now.Add(-48 * time.Hour)})
	api.AddDelivery(githubtest.HookDelivery{ID: 2, GUID: "g-ok", StatusCode: 202, Event: "issues", At: now.Add(-time.Hour)})
	api.AddDelivery(githubtest.HookDelivery{ID: 3, GUID: "g-late", StatusCode: 503, Event: "issues", At: now.Add(-time.Hour)})
	api.AddDelivery(githubtest.HookDelivery{ID: 4, GUID: "g-retried", StatusCode: 0, Event: "issues", At: now.Add(-50 * time.Minute)})
	api.AddDelivery(githubtest.HookDelivery{ID: 5, GUID: "g-retried", StatusCode: 200, Event: "issues", At: now.Add(-40 * time.Minute)})
	api.AddDelivery(githubtest.HookDelivery{ID: 6, GUID: "g-lost", StatusCode: 500, Event: "issue_comment", At: now.Add(-10 * time.Minute)})
	n, err := e.svc.RedeliverFailed(t.Context(), Redelivery{App: app, Window: 24 * time.Hour})
	if err != nil || n != 1 {
		t.Fatalf("redelivered %d: %v", n, err)
	}
	if got := api.Redelivered(); len(got) != 1 || got[0] != 6 {
		t.Fatalf("redelivered ids %v", got)
	}
	// The next run asks nothing again.
	if n, err := e.svc.RedeliverFailed(t.Context(), Redelivery{App: app, Window: 24 * time.Hour}); err != nil || n != 0 || len(api.Redelivered()) != 1 {
		t.Fatalf("second pass: %d %v", n, err)
	}
}
