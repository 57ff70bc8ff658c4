package github

import (
	"context"
	"errors"
	"testing"

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

func TestCloneTokenAsksForTheProjectsRepository(t *testing.T) {
	creds := &repoCreds{}
	s := &Service{cfg: Config{Credentials: creds}}
	ctx := t.Context()
	tok, err := s.CloneToken(ctx, &store.Project{RepoURL: "https://github.com/acme/web.git"})
	if err != nil || tok != "tok-acme" || len(creds.got) != 1 || creds.got[0] != (Repo{Owner: "acme", Name: "web"}) {
		t.Fatalf("CloneToken = %q, %v; asked for %v", tok, err, creds.got)
	}
	if tok, err := s.CloneToken(ctx, &store.Project{RepoURL: "/home/me/src/web"}); tok != "" || err != nil {
		t.Fatalf("a local path got a token: %q, %v", tok, err)
	}
	if _, err := s.CloneToken(ctx, &store.Project{RepoURL: "https://github.com/broken/x"}); err == nil {
		t.Fatal("a credentials failure was hidden")
	}
}
