package github

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

func readForge(t *testing.T, api *githubtest.Server, threadRef string) engine.Forge {
	t.Helper()
	svc, err := NewPublisher(PublisherConfig{APIURL: api.APIURL(), Credentials: StaticToken(testToken), WritePace: -1, Hosts: []string{"github.com"}})
	if err != nil {
		t.Fatal(err)
	}
	p := &store.Project{Name: "p", RepoURL: "https://github.com/acme/app", DefaultBranch: "main"}
	ex := &store.Execution{Surface: "slack", ThreadRef: "C1/1.0"}
	if threadRef != "" {
		ex = &store.Execution{Surface: "github", ThreadRef: threadRef}
	}
	f, err := svc.Forge(t.Context(), p, ex)
	if err != nil || f == nil {
		t.Fatalf("forge: %v %v", f, err)
	}
	return f
}

// The reading tools' forge side: issue with labels and the latest page of
// comments, pull request with branches, comments and review comments, the
// run's own number by default, clear errors otherwise.
func TestForgeReadsIssueAndPullRequest(t *testing.T) {
	t.Parallel()
	api := githubtest.NewServer(t, testToken)
	api.AddIssue(githubtest.Issue{Repo: "acme/app", Number: 12, Title: "Leap years", Body: "parse(2024-02-29) fails", Author: "octocat", Labels: []string{"bug"}})
	for i := range 57 {
		api.AddComment("acme/app", 12, "alice", "MEMBER", fmt.Sprintf("comment %d", i))
	}
	api.AddPull(githubtest.PullRequest{Repo: "acme/app", Number: 13, Title: "Fix leap years", Head: "hero/12-leap-years", Base: "main", Body: "Fixes #12", Draft: true})
	api.AddComment("acme/app", 13, "bob", "OWNER", "Looks good, one thing below.")
	api.AddReviewComment(githubtest.ReviewComment{Repo: "acme/app", Pull: 13, Author: "bob", Association: "OWNER", Body: "Also 1900.", Path: "date.go", Line: 42})

	f := readForge(t, api, "acme/app#12@c77")
	is, err := f.ReadIssue(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if is.Number != 12 || is.Title != "Leap years" || is.Author != "octocat" || strings.Join(is.Labels, ",") != "bug" || is.IsPullRequest || is.State != "open" {
		t.Fatalf("issue %+v", is)
	}
	// The newest comments are shown; the count of older ones is told.
	if n := len(is.Comments); n != 50 || is.MoreComments != 7 || is.Comments[0].Body != "comment 7" || is.Comments[n-1].Body != "comment 56" || is.Comments[0].Association != "MEMBER" {
		t.Fatalf("comments: %d shown, %d more, last %+v", n, is.MoreComments, is.Comments[n-1])
	}
	pr, err := f.ReadPullRequest(t.Context(), 13)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Head != "hero/12-leap-years" || pr.Base != "main" || !pr.Draft || len(pr.Comments) != 1 || pr.Comments[0].Author != "bob" ||
		len(pr.ReviewComments) != 1 || pr.ReviewComments[0].Path != "date.go" || pr.ReviewComments[0].Line != 42 || pr.ReviewComments[0].Association != "OWNER" {
		t.Fatalf("pull request %+v", pr)
	}
	if _, err := f.ReadPullRequest(t.Context(), 0); err == nil || !strings.Contains(err.Error(), "#12 is not a pull request of acme/app") {
		t.Fatalf("the run's issue read as a pull request: %v", err)
	}
	if _, err := f.ReadIssue(t.Context(), 999); err == nil || !strings.Contains(err.Error(), "issue #999 was not found in acme/app") {
		t.Fatalf("missing issue: %v", err)
	}
	// A pull request run reads its own pull request by default.
	if pr, err := readForge(t, api, "acme/app#13@r5 on hero/12-leap-years").ReadPullRequest(t.Context(), 0); err != nil || pr.Number != 13 {
		t.Fatalf("own pull request: %+v %v", pr, err)
	}
	// A run started elsewhere must name the number.
	if _, err := readForge(t, api, "").ReadIssue(t.Context(), 0); err == nil || !strings.Contains(err.Error(), "give the number") {
		t.Fatalf("no thread: %v", err)
	}
}
