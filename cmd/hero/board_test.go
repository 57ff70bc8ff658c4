package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// TestBoardAndCardCommands drives the board from the command line as a
// user would: add cards, see them under their columns, move one, show it
// with its history, and get specific errors for bad input.
func TestBoardAndCardCommands(t *testing.T) {
	env := map[string]string{"HERO_DATA_DIR": t.TempDir()}
	if _, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", "https://example.com/web.git"); err != nil {
		t.Fatal(err)
	}
	out, _, err := hero(t, env, "", false, "card", "add", "--project", "web", "Fix the login loop", "--body", "It loops after a reset.")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^card (k[a-z2-7]{8}) created in To do\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("card add printed %q", out)
	}
	id := m[1]
	if out, _, err = hero(t, env, "", false, "card", "add", "--project", "web", "--column", "backlog", "Write docs"); err != nil || !strings.Contains(out, "created in Backlog") {
		t.Fatalf("add in backlog: %v %q", err, out)
	}
	out, _, err = hero(t, env, "", false, "board", "show", "--project", "web")
	if err != nil {
		t.Fatal(err)
	}
	want := "Backlog (1)\n  k"
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "\nTo do (1)\n  "+id+"  Fix the login loop\n") || !strings.Contains(out, "\nIn progress (0)\n  (no cards)\n") {
		t.Fatalf("board show:\n%s", out)
	}
	if out, _, err = hero(t, env, "", false, "card", "move", id, "Review"); err != nil || out != "card "+id+" moved from To do to Review\n" {
		t.Fatalf("move: %v %q", err, out)
	}
	if out, _, err = hero(t, env, "", false, "card", "move", "--project", "web", id, "review"); err != nil || out != "card "+id+" is already in Review\n" {
		t.Fatalf("move again: %v %q", err, out)
	}
	out, _, err = hero(t, env, "", false, "card", "show", id)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"card " + id + ": Fix the login loop\n", "project: web\n", "column: Review\n", "It loops after a reset.", "created it in To do (cli)", "moved it from To do to Review (cli)"} {
		if !strings.Contains(out, w) {
			t.Errorf("card show lacks %q:\n%s", w, out)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"card", "add", "--project", "web", "x", "--column", "Doing"}, `there is no column "Doing"; the columns are Backlog, To do, In progress, Review, Done`},
		{[]string{"card", "add", "--project", "web", ""}, "a card needs a title"},
		{[]string{"card", "add", "x"}, "usage: hero card add --project NAME"},
		{[]string{"card", "add", "--project", "nope", "x"}, `there is no project named "nope"`},
		{[]string{"card", "move", "kzzzzzzzz", "Done"}, "there is no card kzzzzzzzz"},
		{[]string{"card", "move", "--project", "other", id, "Done"}, "there is no card " + id + " in project other"},
		{[]string{"card", "show"}, "usage: hero card show"},
		{[]string{"board", "link", "--project", "web", "--github-project", "https://github.com/acme/web"}, "is not a GitHub Project URL"},
	} {
		if _, _, err := hero(t, env, "", false, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if out, _, err = hero(t, env, "", false, "board", "link", "--project", "web", "--github-project", "https://github.com/orgs/acme/projects/3"); err != nil || !strings.Contains(out, "linked to GitHub Project https://github.com/orgs/acme/projects/3") {
		t.Fatalf("link: %v %q", err, out)
	}
	if p, err := kanban.ParseGitHubProject("https://ghe.example.com/users/ana/projects/12"); err != nil || p.Host != "ghe.example.com" || p.Org || p.Number != 12 {
		t.Fatalf("parse GHE user project: %+v %v", p, err)
	}
}

// TestCardAddOnGitHub: with GitHub credentials, a card added from the
// command line is an issue on the project's repository, labelled with its
// column, and hero card add prints its URL.
func TestCardAddOnGitHub(t *testing.T) {
	const token = "ghp_boardTOKEN0123456789"
	api := githubtest.NewServer(t, token)
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "GITHUB_TOKEN": token, "GITHUB_API_URL": api.URL + "/"}
	if _, _, err := hero(t, env, "", false, "project", "add", "shop", "--repo", api.URL+"/acme/shop"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := hero(t, env, "", false, "card", "add", "--project", "shop", "--column", "Backlog", "Fix the cart", "--body", "It forgets items.")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	m := regexp.MustCompile(`^card (k[a-z2-7]{8}) created in Backlog: https://github.com/acme/shop/issues/1\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("card add printed %q (stderr %s)", out, errOut)
	}
	is, ok := api.Issue("acme/shop", 1)
	if !ok || is.Title != "Fix the cart" || len(is.Labels) != 1 || is.Labels[0] != "hero:backlog" {
		t.Fatalf("issue on GitHub: %+v", is)
	}
	if out, _, err = hero(t, env, "", false, "card", "move", m[1], "Done"); err != nil {
		t.Fatal(err)
	}
	if is, _ = api.Issue("acme/shop", 1); is.State != "closed" || is.Labels[0] != "hero:done" {
		t.Fatalf("issue after the move to Done: %+v", is)
	}
	if out, _, _ = hero(t, env, "", false, "card", "show", m[1]); !strings.Contains(out, "issue: https://github.com/acme/shop/issues/1") || !strings.Contains(out, "thread: github acme/shop#1") {
		t.Fatalf("card show:\n%s", out)
	}
}
