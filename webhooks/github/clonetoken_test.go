package github

import (
	"context"
	"errors"
	"testing"

	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
)

type repoCreds struct{ got []Repo }

func (c *repoCreds) Token(_ context.Context, r Repo) (string, error) {
	c.got = append(c.got, r)
	if r.Owner == "broken" {
		return "", errors.New("no installation")
	}
	return "tok-" + r.Owner, nil
}

func TestCloneCredentialAsksForTheProjectsRepository(t *testing.T) {
	creds := &repoCreds{}
	s := newTestPublisher(t, PublisherConfig{Credentials: creds})
	ctx := t.Context()
	c, err := s.CloneCredential(ctx, &store.Project{RepoURL: "https://github.com/acme/web.git"})
	if err != nil || c == nil || *c != *mirror.TokenCredential("https://github.com", "tok-acme") || len(creds.got) != 1 || creds.got[0] != (Repo{Owner: "acme", Name: "web"}) {
		t.Fatalf("CloneCredential = %+v, %v; asked for %v", c, err, creds.got)
	}
	for _, u := range []string{"/home/me/src/web", "https://evil.example/acme/web.git", "http://github.com/acme/web", "https://github.com:8443/acme/web", "git@github.com:acme/web.git"} {
		if c, err := s.CloneCredential(ctx, &store.Project{RepoURL: u}); c != nil || err != nil {
			t.Fatalf("%s got a credential: %+v, %v", u, c, err)
		}
	}
	if _, err := s.CloneCredential(ctx, &store.Project{RepoURL: "https://github.com/broken/x"}); err == nil {
		t.Fatal("a credentials failure was hidden")
	}
}

// Credentials go to the web origin of GITHUB_API_URL only: scheme, host
// and port compared.
func TestWebOriginAndBinding(t *testing.T) {
	for api, want := range map[string]string{
		"":                               "https://github.com",
		"https://api.github.com/":        "https://github.com",
		"https://ghe.example/api/v3":     "https://ghe.example",
		"http://ghe.example:8080/api/v3": "http://ghe.example:8080",
		"https://GHE.example:443/api/v3": "https://ghe.example",
	} {
		if got := WebOrigin(api); got != want {
			t.Errorf("WebOrigin(%q) = %q, want %q", api, got, want)
		}
	}
	ghe := []string{"http://ghe.example:8080"}
	if BindCredential(ghe, "http://ghe.example:8080/o/r.git", "t") == nil {
		t.Error("the configured host got no credential")
	}
	for _, u := range []string{"https://ghe.example:8080/o/r", "http://ghe.example/o/r", "http://ghe.example:8081/o/r", "http://ghe.example.evil.com:8080/o/r", "ssh://ghe.example/o/r"} {
		if BindCredential(ghe, u, "t") != nil {
			t.Errorf("%s got the credential", u)
		}
	}
}
