package github

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A plain repository webhook's failed deliveries are asked for again,
// with the hook given (GITHUB_HOOK_ID) or discovered by its URL; a
// redelivery request that fails is retried on a later pass (after its
// backoff), not lost.
func TestRedeliverRepositoryHook(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		cfg     Redelivery
		hookURL string
	}{
		{"configured id", Redelivery{RepoHooks: true, HookID: 55}, "https://elsewhere.example/hook"},
		{"discovered by path", Redelivery{RepoHooks: true}, "https://hero.example.com/github/webhook"},
		{"discovered by url", Redelivery{RepoHooks: true, HookURL: "https://hero.example.com/github/webhook/"}, "https://hero.example.com/github/webhook"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			api := githubtest.NewServer(t, testToken)
			clk := &clock{t: time.Now()}
			e := newEnv(t, nil, api, nil, fixtureRepo, func(cfg *envConfig) { cfg.Now = clk.now; cfg.Pub.Hosts = []string{"github.com"} })
			now := clk.now()
			e.deliver("issues", "g-late", fixture(t, "issues.opened.json", nil))
			// Another hook (not hero's) with a failure that must be left alone.
			api.AddRepoHook(githubtest.RepoHook{ID: 54, Repo: "Codertocat/Hello-World", URL: "https://ci.example/hook"},
				githubtest.HookDelivery{ID: 1, GUID: "g-ci", StatusCode: 500, Event: "push", At: now.Add(-time.Hour)})
			api.AddRepoHook(githubtest.RepoHook{ID: 55, Repo: "Codertocat/Hello-World", URL: c.hookURL},
				githubtest.HookDelivery{ID: 2, GUID: "g-ok", StatusCode: 202, Event: "issues", At: now.Add(-time.Hour)},
				githubtest.HookDelivery{ID: 3, GUID: "g-late", StatusCode: 503, Event: "issues", At: now.Add(-time.Hour)},
				githubtest.HookDelivery{ID: 4, GUID: "g-lost", StatusCode: 0, Event: "issue_comment", At: now.Add(-20 * time.Minute)},
				githubtest.HookDelivery{ID: 5, GUID: "g-lost", StatusCode: 502, Event: "issue_comment", At: now.Add(-10 * time.Minute)},
				githubtest.HookDelivery{ID: 6, GUID: "g-flaky", StatusCode: 500, Event: "issue_comment", At: now.Add(-5 * time.Minute)})
			// GitHub fails the first request for g-flaky.
			api.FailNext("/repos/Codertocat/Hello-World/hooks/55/deliveries/6/attempts", 502)

			n, err := e.svc.RedeliverFailed(t.Context(), c.cfg)
			if n != 1 || err == nil || !strings.Contains(err.Error(), "g-flaky") {
				t.Fatalf("first pass: %d accepted, err %v", n, err)
			}
			if got := api.Redelivered(); !slices.Equal(got, []int64{5}) {
				t.Fatalf("redelivered %v; want the newest attempt of g-lost", got)
			}
			r, err := e.db.RedeliveryRequest(t.Context(), "g-flaky")
			if err != nil || r.Status != store.RedeliveryPending || r.Attempts != 1 || !strings.Contains(r.LastError, "502") || r.Hook != "repo:Codertocat/Hello-World:55" {
				t.Fatalf("failed request as recorded: %+v %v", r, err)
			}
			// Not due yet: nothing is asked.
			if n, err := e.svc.RedeliverFailed(t.Context(), c.cfg); n != 0 || err != nil || len(api.Redelivered()) != 1 {
				t.Fatalf("before the backoff: %d %v %v", n, err, api.Redelivered())
			}
			// After the backoff it is asked again, and only it.
			clk.add(2 * time.Minute)
			if n, err := e.svc.RedeliverFailed(t.Context(), c.cfg); n != 1 || err != nil {
				t.Fatalf("retry: %d %v", n, err)
			}
			if got := api.Redelivered(); !slices.Equal(got, []int64{5, 6}) {
				t.Fatalf("redelivered %v", got)
			}
			if r, _ := e.db.RedeliveryRequest(t.Context(), "g-flaky"); r.Status != store.RedeliveryRequested || r.Attempts != 2 {
				t.Fatalf("after the retry: %+v", r)
			}
			clk.add(time.Hour)
			if n, err := e.svc.RedeliverFailed(t.Context(), c.cfg); n != 0 || err != nil || len(api.Redelivered()) != 2 {
				t.Fatalf("third pass asked again: %d %v", n, err)
			}
		})
	}
}

// A token that may not list hooks gets a message naming GITHUB_HOOK_ID.
func TestRedeliverHookDiscoveryRefused(t *testing.T) {
	t.Parallel()
	api := githubtest.NewServer(t, testToken)
	e := newEnv(t, nil, api, nil, fixtureRepo, func(cfg *envConfig) { cfg.Pub.Hosts = []string{"github.com"} })
	api.FailNext("/repos/Codertocat/Hello-World/hooks", 404)
	if _, err := e.svc.RedeliverFailed(t.Context(), Redelivery{RepoHooks: true}); err == nil || !strings.Contains(err.Error(), "GITHUB_HOOK_ID") {
		t.Fatalf("err %v", err)
	}
}

// When GitHub's redelivery fails as well (hero was still down), the next
// pass asks again for the newest attempt; a delivery that keeps failing
// is given up after redeliveryMaxAttempts requests.
func TestRedeliveryThatFailsAgainIsAskedAgain(t *testing.T) {
	t.Parallel()
	api := githubtest.NewServer(t, testToken)
	clk := &clock{t: time.Now()}
	e := newEnv(t, nil, api, nil, fixtureRepo, func(cfg *envConfig) { cfg.Now = clk.now; cfg.Pub.Hosts = []string{"github.com"} })
	cfg := Redelivery{RepoHooks: true, HookID: 55}
	api.AddRepoHook(githubtest.RepoHook{ID: 55, Repo: "Codertocat/Hello-World", URL: "https://hero.example.com/github/webhook"},
		githubtest.HookDelivery{ID: 10, GUID: "g-down", StatusCode: 502, Event: "issue_comment", At: clk.now().Add(-time.Hour)})
	for i := range redeliveryMaxAttempts + 2 {
		n, err := e.svc.RedeliverFailed(t.Context(), cfg)
		if err != nil {
			t.Fatalf("pass %d: %v", i, err)
		}
		if want := i < redeliveryMaxAttempts; (n == 1) != want {
			t.Fatalf("pass %d: %d redeliveries asked", i, n)
		}
		// GitHub's redelivery failed too: a new attempt in the log.
		clk.add(2 * time.Hour)
		api.AddRepoHookDelivery(55, githubtest.HookDelivery{ID: int64(11 + i), GUID: "g-down", StatusCode: 502, Event: "issue_comment", At: time.Now().Add(time.Minute)})
	}
	got := api.Redelivered()
	if len(got) != redeliveryMaxAttempts || got[0] != 10 || got[1] != 11 {
		t.Fatalf("redelivered %v", got)
	}
	if r, err := e.db.RedeliveryRequest(t.Context(), "g-down"); err != nil || r.Status != store.RedeliveryGaveUp {
		t.Fatalf("request %+v %v", r, err)
	}
}
