package github

import (
	"strconv"
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// reviewPayload is a real pull_request_review_comment delivery, pointed
// at pull request number of the served repository with head branch head
// opened by author.
func reviewPayload(t *testing.T, repoURL string, number int, head, author string, commentID int64, login, assoc, body string) []byte {
	t.Helper()
	return fixture(t, "testdata/pull_request_review_comment.created.json", map[string]any{
		"repository.html_url": repoURL, "pull_request.number": number, "pull_request.head.ref": head, "pull_request.user.login": author,
		"comment.id": commentID, "comment.body": body, "comment.user.login": login, "comment.author_association": assoc,
		"comment.updated_at": freshTime(),
	})
}

// A review comment on hero's own pull request continues the work on its
// branch: the workspace checks the branch out as pushed, the agent reads
// the review, commits, and git_push (after /hero approve) fast-forwards
// the same branch. No second pull request is opened.
func TestEndToEndReviewContinuesBranch(t *testing.T) {
	t.Parallel()
	const branch = "hero/1-fix-readme"
	e := newE2E(t,
		openaitest.Tools(openaitest.Call("run_command", `{"command":"git status --short --branch"}`)),
		openaitest.Tools(openaitest.Call("read_pull_request", `{}`)),
		openaitest.Tools(openaitest.Call("edit_file", `{"path":"README.md","old":"Hello world","new":"Hello, world"}`)),
		openaitest.Tools(openaitest.Call("git_commit", `{"message":"Add the comma asked for in review"}`)),
		openaitest.Tools(openaitest.Call("git_push", `{"branch":"hero/1-fix-readme"}`)),
		openaitest.Text("Pushed the comma to the pull request's branch."),
	)
	// hero's earlier work: the branch and its pull request.
	first := e.git.Commit(branch, "Fix the typo in the README", map[string]string{"README.md": "# Hello-World\n\nHello world\n"})
	e.api.AddPull(githubtest.PullRequest{Repo: "Codertocat/Hello-World", Number: 2, Title: "Fix the README typo", Head: branch, Base: "main", Author: "hero-bot", Body: "Fixes #1"})
	const review = `Please write "Hello, world" with a comma.`
	rid := e.api.AddReviewComment(githubtest.ReviewComment{Repo: "Codertocat/Hello-World", Pull: 2, Author: "Codertocat", Association: "OWNER", Body: review, Path: "README.md", Line: 3})

	repoURL := e.git.RepoURL("Codertocat", "Hello-World")
	if code := e.deliver("pull_request_review_comment", "rv-1", reviewPayload(t, repoURL, 2, branch, "hero-bot", rid, "Codertocat", "OWNER", review)); code != 202 {
		t.Fatalf("delivery: %d", code)
	}
	enginetest.Eventually(t, "👀 on the review comment", func() bool {
		for _, r := range e.api.Reactions() {
			if r.ReviewCommentID == rid && r.Content == "eyes" {
				return true
			}
		}
		return false
	})
	push := e.pendingID("")
	if _, _, pushes := e.git.Counts(); pushes != 0 {
		t.Fatal("pushed before approval")
	}
	approve := fixture(t, "issue_comment.created.json", map[string]any{
		"repository.html_url": repoURL, "issue.number": 2, "issue.pull_request": map[string]any{"url": "x"},
		"comment.id": 9200, "comment.body": "/hero approve " + push, "comment.user.login": "Codertocat", "comment.author_association": "OWNER",
	})
	if code := e.deliver("issue_comment", "rv-approve", approve); code != 202 {
		t.Fatalf("approve delivery: %d", code)
	}
	sum := e.summary()

	// The same branch moved forward from hero's earlier commit.
	if out, err := e.git.Git("merge-base", "--is-ancestor", first, branch); err != nil {
		t.Fatalf("%s is not a fast-forward of %s: %v %s", branch, first, err, out)
	}
	if log, _ := e.git.Git("log", "--format=%s", "main.."+branch); strings.TrimSpace(log) != "Add the comma asked for in review\nFix the typo in the README" {
		t.Fatalf("branch history:\n%s", log)
	}
	if out, _ := e.git.Git("show", branch+":README.md"); !strings.Contains(out, "Hello, world") {
		t.Fatalf("README on the branch:\n%s", out)
	}
	if out, _ := e.git.Git("branch", "--list", "hero/*"); strings.TrimSpace(out) != branch {
		t.Fatalf("branches: %q", out)
	}
	if len(e.api.Pulls()) != 1 {
		t.Fatalf("pulls %+v", e.api.Pulls())
	}
	if !strings.Contains(sum, "hero finished") {
		t.Fatalf("summary:\n%s", sum)
	}

	exs, err := e.db.ListExecutions(t.Context(), store.ExecutionFilter{})
	if err != nil || len(exs) != 1 {
		t.Fatalf("runs: %v %v", exs, err)
	}
	if want := "Codertocat/Hello-World#2@r" + strconv.FormatInt(rid, 10) + " on " + branch; exs[0].ThreadRef != want {
		t.Fatalf("ThreadRef %q; want %q", exs[0].ThreadRef, want)
	}
	if !strings.Contains(exs[0].Task, review) || !strings.Contains(exs[0].Task, "README.md line 265") { // the payload's line
		t.Fatalf("task:\n%s", exs[0].Task)
	}
	steps, _ := e.db.ListSteps(t.Context(), exs[0].ID)
	out := map[string]string{}
	for _, s := range steps {
		out[s.Tool] += s.Output + "\n"
	}
	// The workspace was on the branch, tracking the pushed one.
	if !strings.Contains(out["run_command"], "## "+branch+"...origin/"+branch) {
		t.Errorf("git status in the workspace:\n%s", out["run_command"])
	}
	// The review reached the model as untrusted data.
	if !strings.HasPrefix(strings.TrimSpace(out["read_pull_request"]), "UNTRUSTED DATA:") || !strings.Contains(out["read_pull_request"], review) {
		t.Errorf("read_pull_request:\n%s", out["read_pull_request"])
	}
	// The pull request exists, so the forge refuses to open another.
	f, err := e.pub.Forge(t.Context(), e.project, &exs[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.CreatePullRequest(t.Context(), branch, "again", "", false); err == nil || !strings.Contains(err.Error(), "pull request #2 already exists for branch "+branch) {
		t.Errorf("second pull request: %v", err)
	}
}

// Which comments on pull requests continue hero's branch, which start an
// ordinary run, and which do nothing.
func TestReviewTriggers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	const own = "hero/1-fix-readme"
	e.api.AddPull(githubtest.PullRequest{Repo: "Codertocat/Hello-World", Number: 2, Head: own, Base: "main", Author: "hero-bot", Title: "Fix"})
	e.api.AddPull(githubtest.PullRequest{Repo: "Codertocat/Hello-World", Number: 3, Head: "changes", Base: "main", Author: "Codertocat", Title: "Other"})
	review := func(number int, head, author, login, assoc, body string, edits map[string]any) []byte {
		m := map[string]any{"pull_request.number": number, "pull_request.head.ref": head, "pull_request.user.login": author,
			"comment.body": body, "comment.user.login": login, "comment.author_association": assoc, "comment.updated_at": freshTime()}
		for k, v := range edits {
			m[k] = v
		}
		return fixture(t, "testdata/pull_request_review_comment.created.json", m)
	}
	reviewed := func(state string, body any) []byte {
		return fixture(t, "testdata/pull_request_review.submitted.json", map[string]any{
			"pull_request.number": 2, "pull_request.head.ref": own, "pull_request.user.login": "hero-bot",
			"review.state": state, "review.body": body, "review.user.login": "Codertocat", "review.author_association": "OWNER",
			"review.submitted_at": freshTime()})
	}
	onPull := func(number int, body string) []byte {
		return fixture(t, "issue_comment.created.json", map[string]any{"issue.number": number, "issue.pull_request": map[string]any{"url": "x"},
			"comment.body": body, "comment.user.login": "Codertocat", "comment.author_association": "OWNER", "comment.updated_at": freshTime()})
	}
	cases := []struct {
		event, id string
		body      []byte
		ref       string // the started run's ThreadRef; "" for no run
	}{
		{"pull_request_review_comment", "r-own", review(2, own, "hero-bot", "Codertocat", "OWNER", "use a comma", nil), "Codertocat/Hello-World#2@r284312630 on " + own},
		{"pull_request_review_comment", "r-untrusted", review(2, own, "hero-bot", "stranger", "NONE", "use a comma", nil), ""},
		{"pull_request_review_comment", "r-by-hero", review(2, own, "hero-bot", "hero-bot", "NONE", "use a comma", nil), ""},
		{"pull_request_review_comment", "r-not-hero-pr", review(3, "changes", "Codertocat", "Codertocat", "OWNER", "use a comma", nil), ""},
		{"pull_request_review_comment", "r-someone-elses-hero-branch", review(3, "hero/9-x", "Codertocat", "Codertocat", "OWNER", "use a comma", nil), ""},
		{"pull_request_review_comment", "r-fork", review(2, own, "hero-bot", "Codertocat", "OWNER", "use a comma", map[string]any{"pull_request.head.repo.full_name": "evil/Hello-World"}), ""},
		{"pull_request_review_comment", "r-mention-elsewhere", review(3, "changes", "Codertocat", "Codertocat", "OWNER", "@hero rename this", nil), "Codertocat/Hello-World#3@r284312630"},
		{"pull_request_review_comment", "r-edited", review(2, own, "hero-bot", "Codertocat", "OWNER", "use a comma", map[string]any{"action": "edited"}), ""},
		{"issue_comment", "c-own-pr", onPull(2, "@hero please also update the docs"), "Codertocat/Hello-World#2@c1362934389 on " + own},
		{"pull_request_review", "v-changes", reviewed("changes_requested", "Please split the function."), "Codertocat/Hello-World#2 on " + own},
		{"pull_request_review", "v-approved", reviewed("approved", "LGTM, thanks!"), ""},
		{"pull_request_review", "v-empty", reviewed("commented", nil), ""},
		{"issue_comment", "c-other-pr", onPull(3, "@hero please also update the docs"), "Codertocat/Hello-World#3@c1362934389"},
	}
	want := 0
	for _, c := range cases {
		if code := e.deliver(c.event, c.id, c.body); code != 202 {
			t.Fatalf("%s: status %d", c.id, code)
		}
		if err := e.waitHandled(c.id); err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		if c.ref != "" {
			want++
		}
		rec := e.rec()
		if got := len(rec.Starts()); got != want {
			t.Fatalf("%s: %d starts, want %d", c.id, got, want)
		}
		if c.ref != "" {
			got := rec.Starts()[want-1].ThreadRef
			// The comment ids come from the payloads.
			if strings.Split(got, "@")[0] != strings.Split(c.ref, "@")[0] || strings.Contains(c.ref, " on ") != strings.Contains(got, " on "+own) {
				t.Fatalf("%s: ThreadRef %q, want like %q", c.id, got, c.ref)
			}
		}
	}
	// 👀 went on the review comment (not an issue comment with its id).
	var eyes bool
	for _, r := range e.api.Reactions() {
		eyes = eyes || (r.ReviewCommentID == 284312630 && r.Content == "eyes")
	}
	// A review's summary has no reactions of its own: 👀 on the pull request.
	var prEyes bool
	for _, r := range e.api.Reactions() {
		prEyes = prEyes || (r.Issue == 2 && r.CommentID == 0 && r.ReviewCommentID == 0 && r.Content == "eyes")
	}
	if !eyes || !prEyes {
		t.Fatalf("reactions %+v", e.api.Reactions())
	}
	// The untrusted reviewer got no reply (only people who call hero do).
	for _, c := range e.api.Comments() {
		if strings.Contains(c.Body, "stranger") {
			t.Fatalf("reply to an untrusted review remark: %q", c.Body)
		}
	}
	// The run on hero's branch checks it out.
	rec := e.rec()
	starts := rec.Starts()
	first := starts[0]
	var fromReview engine.StartRequest
	for _, st := range starts {
		if st.ThreadRef == "Codertocat/Hello-World#2 on "+own {
			fromReview = st
		}
	}
	if !strings.Contains(fromReview.Task, "Please split the function.") || !strings.Contains(fromReview.Task, "git_push") {
		t.Fatalf("task from the review:\n%s", fromReview.Task)
	}
	if b, continues := e.pub.WorkBranch(&store.Execution{Surface: "github", ThreadRef: first.ThreadRef}); b != own || !continues {
		t.Fatalf("WorkBranch = %q, %v", b, continues)
	}
	// A run about an issue gets a new branch named after the issue; a run
	// started elsewhere one named after the run.
	issueRun := &store.Execution{ID: "r1", Surface: "github", ThreadRef: "Codertocat/Hello-World#1", Task: "GitHub issue Codertocat/Hello-World#1: Fix the README's typo (urgent!!)\n\nbody"}
	if b, continues := e.pub.WorkBranch(issueRun); b != "hero/1-fix-the-readme-s" || continues {
		t.Fatalf("WorkBranch of an issue run = %q, %v", b, continues)
	}
	if b, continues := e.pub.WorkBranch(&store.Execution{ID: "r7f3a2c9", Surface: "slack"}); b != "hero/r7f3a2c9" || continues {
		t.Fatalf("WorkBranch of a Slack run = %q, %v", b, continues)
	}
}
