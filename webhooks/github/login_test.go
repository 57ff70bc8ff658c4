package github

import (
	"testing"

	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// hero learns its own login before the surface is built (cmd/hero puts
// it into Config.BotLogin), so nothing is set after construction.
func TestLoginOfAToken(t *testing.T) {
	t.Parallel()
	api := githubtest.NewServer(t, testToken)
	login, err := Login(t.Context(), api.APIURL(), StaticToken(testToken))
	if err != nil || login != "hero-token-user" {
		t.Fatalf("login %q, %v", login, err)
	}
	if _, err := Login(t.Context(), api.APIURL(), StaticToken("ghp_not_accepted")); err == nil {
		t.Fatal("a token the API refuses gave a login")
	}
}
