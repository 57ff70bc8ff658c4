package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// gheFront serves a fake GitHub Enterprise on one origin, as a real one
// is: the REST API under /api/v3 and git everywhere else.
func gheFront(t *testing.T, api *githubtest.Server, git *githubtest.GitServer) string {
	t.Helper()
	apiURL, _ := url.Parse(api.URL)
	gitURL, _ := url.Parse(git.URL)
	toAPI, toGit := httputil.NewSingleHostReverseProxy(apiURL), httputil.NewSingleHostReverseProxy(gitURL)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok {
			r.URL.Path = rest
			toAPI.ServeHTTP(w, r)
			return
		}
		toGit.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// A model that behaves like real ones — edit, test, git_commit, git_push
// to a branch it names, create_pull_request — succeeds from the terminal
// on a GitHub repository: the workspace starts on its own work branch,
// the push creates hero/fix-add from the run's HEAD, and the pull
// request's head is that branch, its base the default branch.
func TestRunCommitPushPullRequestOnGitHub(t *testing.T) {
	enginetest.RequireBwrap(t)
	const token = "ghp_terminalTOKEN0123456789"
	api := githubtest.NewServer(t, token)
	git := githubtest.NewGitServer(t, "acme", "calc", map[string]string{
		"calc.go": "package calc\n\nfunc Add(a, b int) int { return a - b }\n",
		"test.sh": "#!/bin/sh\ngrep -q 'return a + b' calc.go && echo 'all tests passed'\n",
	}, api.ValidToken)
	front := gheFront(t, api, git)
	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("run_command", `{"command":"git symbolic-ref --short HEAD"}`)),
		openaitest.Tools(openaitest.Call("edit_file", `{"path":"calc.go","old":"return a - b","new":"return a + b"}`)),
		openaitest.Tools(openaitest.Call("run_command", `{"command":"sh test.sh"}`)),
		openaitest.Tools(openaitest.Call("git_commit", `{"message":"Fix Add"}`)),
		openaitest.Tools(openaitest.Call("git_push", `{"branch":"hero/fix-add"}`)),
		openaitest.Tools(openaitest.Call("create_pull_request", `{"title":"Fix Add","body":"Add subtracted."}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"Fixed Add and opened a pull request."}`)),
	)
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini",
		"GITHUB_TOKEN": token, "GITHUB_API_URL": front + "/api/v3"}
	if _, _, err := hero(t, env, "", false, "project", "add", "calc", "--repo", front+"/acme/calc"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := hero(t, env, "", false, "run", "--yes", "--project", "calc", "fix the Add function")
	if err != nil {
		t.Fatalf("hero run: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, want := range []string{"│ hero/r", "all tests passed", "push branch hero/fix-add", "Fixed Add and opened a pull request.", "pull request: https://github.com/acme/calc/pull/"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got, err := git.Git("show", "hero/fix-add:calc.go"); err != nil || !strings.Contains(got, "return a + b") {
		t.Fatalf("remote hero/fix-add: %v %s", err, got)
	}
	if got, _ := git.Git("show", "main:calc.go"); !strings.Contains(got, "return a - b") {
		t.Fatal("main changed")
	}
	pulls := api.Pulls()
	if len(pulls) != 1 || pulls[0].Head != "hero/fix-add" || pulls[0].Base != "main" || pulls[0].Title != "Fix Add" {
		t.Fatalf("pulls: %+v", pulls)
	}
}
