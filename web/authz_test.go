package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hero-dev/hero/store"
)

// TestAuthorizationTable sends every route as every kind of person and
// checks the status: anonymous, a logged-in stranger, each project role,
// and a site administrator. Each case gets its own project, so mutating
// routes that succeed do not disturb the next case.
func TestAuthorizationTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()

	who := []string{"anonymous", "stranger", "viewer", "member", "approver", "admin", "owner", "siteadmin"}
	emails := map[string]string{
		"stranger": "stranger@example.com", "viewer": "viewer@example.com", "member": "member@example.com",
		"approver": "approver@example.com", "admin": "admin@example.com", "owner": "owner@example.com",
		"siteadmin": siteAdmin,
	}
	browsers := map[string]*browser{"anonymous": e.browser()}
	for _, w := range who[1:] {
		browsers[w] = e.browser()
		browsers[w].login("google", emails[w])
	}

	type route struct {
		method, path string
		form         url.Values
		// want maps who → status; missing entries use the defaults below.
		want map[string]int
		// anon is the status for anonymous visitors when it is not the
		// usual 303 to the login page (GET) or 401 (POST).
		anon int
	}
	const (
		ok   = http.StatusOK
		see  = http.StatusSeeOther
		deny = http.StatusForbidden
		none = http.StatusNotFound
	)
	// min returns the statuses of a project route open from role min up.
	min := func(role string, success int) map[string]int {
		m := map[string]int{"stranger": none, "siteadmin": success}
		for _, r := range []string{"viewer", "member", "approver", "admin", "owner"} {
			if roleRank(r) >= roleRank(role) {
				m[r] = success
			} else {
				m[r] = deny
			}
		}
		return m
	}
	everyone := func(status int) map[string]int {
		m := map[string]int{}
		for _, w := range who[1:] {
			m[w] = status
		}
		return m
	}
	routes := []route{
		{"GET", "/settings/login", nil, everyone(ok), ok},
		{"GET", "/settings/static/style.css", nil, everyone(ok), ok},
		{"GET", "/settings", nil, everyone(see), see},
		{"GET", "/auth/google/login", nil, everyone(http.StatusFound), http.StatusFound},
		{"GET", "/auth/github/login", nil, everyone(http.StatusFound), http.StatusFound},
		{"GET", "/auth/gitlab/login", nil, everyone(none), none},
		{"GET", "/auth/github/login?connect=1", nil,
			map[string]int{"stranger": deny, "viewer": deny, "member": deny, "approver": deny, "admin": deny, "owner": deny, "siteadmin": http.StatusFound}, deny},
		{"GET", "/auth/admin?token=nope", nil, everyone(deny), deny},
		{"GET", "/settings/projects", nil, everyone(ok), 0},
		{"POST", "/settings/projects", url.Values{"name": {"new-{case}"}, "repo_url": {"https://example.com/x.git"}},
			map[string]int{"stranger": deny, "viewer": deny, "member": deny, "approver": deny, "admin": deny, "owner": deny, "siteadmin": see}, 0},
		{"GET", "/settings/projects/{p}", nil, min("viewer", ok), 0},
		{"POST", "/settings/projects/{p}", url.Values{"repo_url": {"https://github.com/a/b.git"}}, min("admin", see), 0},
		{"POST", "/settings/projects/{p}/delete", url.Values{"confirm_name": {"{p}"}}, min("owner", see), 0},
		{"GET", "/settings/projects/{p}/members", nil, min("viewer", ok), 0},
		{"POST", "/settings/projects/{p}/members", url.Values{"email": {"someone@example.com"}, "role": {"member"}}, min("admin", see), 0},
		{"POST", "/settings/projects/{p}/members/{target}/remove", nil, min("admin", see), 0},
		{"GET", "/settings/projects/{p}/secrets", nil, min("viewer", ok), 0},
		{"POST", "/settings/projects/{p}/secrets", url.Values{"name": {"TOKEN"}, "value": {"v"}}, min("admin", see), 0},
		{"POST", "/settings/projects/{p}/secrets/OLD/delete", nil, min("admin", see), 0},
		{"GET", "/settings/runs", nil, everyone(ok), 0},
		{"GET", "/settings/runs?project={p}", nil, min("viewer", ok), 0},
		{"GET", "/settings/runs/{run}", nil, min("viewer", ok), 0},
		{"POST", "/settings/runs/{run}/cancel", nil, min("member", see), 0},
		{"GET", "/settings/integrations", nil, everyone(ok), 0},
		{"POST", "/settings/logout", nil, everyone(see), 0},
		{"POST", "/settings/logout-everywhere", nil, everyone(see), 0},
	}
	for ri, rt := range routes {
		for _, w := range who {
			name := fmt.Sprintf("%s %s as %s", rt.method, rt.path, w)
			// A fresh project per case, with everyone in their role and
			// a target member, a secret and a running run.
			pname := fmt.Sprintf("p%d-%s", ri, w)
			members := map[string]store.Role{"target@example.com": store.RoleViewer}
			for _, r := range []string{"viewer", "member", "approver", "admin", "owner"} {
				members[emails[r]] = store.Role(r)
			}
			p := e.project(pname, members)
			if err := e.db.SetSecret(ctx, p.ID, "OLD", []byte("old"), "test"); err != nil {
				t.Fatal(err)
			}
			ex := &store.Execution{ProjectID: p.ID, Status: store.StatusRunning, Surface: "slack", Task: "t", Model: "m"}
			if err := e.db.CreateExecution(ctx, ex); err != nil {
				t.Fatal(err)
			}
			target, _ := e.db.UserByEmail(ctx, "target@example.com")
			r := strings.NewReplacer("{p}", pname, "{run}", ex.ID, "{target}", itoa(target.ID), "{case}", fmt.Sprint(ri)+w)
			path := r.Replace(rt.path)

			b := browsers[w]
			var code int
			var body string
			if rt.method == "GET" {
				code, body = b.get(path)
			} else {
				form := url.Values{}
				for k, v := range rt.form {
					form.Set(k, r.Replace(v[0]))
				}
				code, _, body = b.post(path, form)
			}
			want, found := rt.want[w]
			if w == "anonymous" {
				want, found = http.StatusUnauthorized, true
				if rt.method == "GET" {
					want = see
				}
				if rt.anon != 0 {
					want = rt.anon
				}
			}
			if !found {
				t.Fatalf("%s: no expectation", name)
			}
			if code != want {
				t.Errorf("%s: status %d, want %d: %.200s", name, code, want, text(body))
			}
			if strings.HasPrefix(rt.path, "/settings/logout") && code == see {
				b.login("google", emails[w]) // back in for the next routes
			}
		}
	}
	// Allowed cancels reached the engine, as the person who clicked.
	e.runs.mu.Lock()
	defer e.runs.mu.Unlock()
	if len(e.runs.cancelled) != 5 || !strings.HasSuffix(e.runs.cancelled[0], " by web:member@example.com") {
		t.Errorf("cancellations: %q, want member, approver, admin, owner and site admin", e.runs.cancelled)
	}
}

func roleRank(role string) int {
	for i, r := range []string{"viewer", "member", "approver", "admin", "owner"} {
		if r == role {
			return i + 1
		}
	}
	return 0
}
