package github

import (
	"strings"
	"testing"

	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// TestPost: scheduled work reports on an issue as a comment by hero.
func TestPost(t *testing.T) {
	api := githubtest.NewServer(t, testToken)
	db := openStore(t, t.TempDir())
	e := newEnv(t, db, api, nil, api.URL+"/acme/shop")
	ref, err := e.svc.Post(t.Context(), "acme/shop#7@c99 on hero/7-x", "Board digest for project shop")
	if err != nil || ref != "acme/shop#7" {
		t.Fatalf("Post = %q, %v", ref, err)
	}
	var found bool
	for _, c := range api.Comments() {
		if c.Repo == "acme/shop" && c.Issue == 7 && c.Author == "" && c.Body == "Board digest for project shop" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no comment by hero on acme/shop#7: %+v", api.Comments())
	}
	if _, err := e.svc.Post(t.Context(), "not a thread", "x"); err == nil || !strings.Contains(err.Error(), "is not owner/repo#number") {
		t.Fatalf("bad place: %v", err)
	}
}
