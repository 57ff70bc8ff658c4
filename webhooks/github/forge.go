package github

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
)

// Forge returns where a run of project p publishes: its GitHub repository,
// when the project's RepoURL is one (on the API's host, or any host for a
// run started from GitHub). It is an engine.ForgeFunc.
func (s *Service) Forge(_ context.Context, p *store.Project, ex *store.Execution) (engine.Forge, error) {
	host, repo, ok := parseRepoURL(p.RepoURL)
	if !ok {
		return nil, nil
	}
	f := &forge{s: s, project: p, repo: repo}
	if ex.Surface == s.Name() {
		th, err := ParseThread(ex.ThreadRef)
		if err != nil {
			return nil, err
		}
		f.thread = &th
	} else if !slices.Contains(s.hosts, host) {
		return nil, nil
	}
	remote, err := httpsRemote(p.RepoURL, host, repo)
	if err != nil {
		return nil, err
	}
	f.remote = remote
	return f, nil
}

// httpsRemote is the URL git pushes to: the project's own http(s) URL, or
// the https form of an ssh one (the token authenticates over https only).
func httpsRemote(raw, host string, repo Repo) (string, error) {
	if strings.HasPrefix(raw, "https://") || strings.HasPrefix(raw, "http://") {
		if strings.Contains(strings.SplitN(strings.SplitN(raw, "://", 2)[1], "/", 2)[0], "@") {
			return "", errors.New("the project's repository URL contains credentials; remove them (hero uses its own token)")
		}
		return raw, nil
	}
	return fmt.Sprintf("https://%s/%s/%s.git", host, repo.Owner, repo.Name), nil
}

type forge struct {
	s       *Service
	project *store.Project
	repo    Repo
	remote  string
	thread  *Thread // nil for runs started elsewhere
}

var _ engine.Forge = (*forge)(nil)

// branchPattern is what Push accepts: no leading dash, no refspec syntax.
var branchPattern = regexp.MustCompile(`^[A-Za-z0-9._][A-Za-z0-9._/-]{0,200}$`)

// Push pushes branch from the sandbox's repository to the project's
// remote. The token reaches only this one git process, through
// GIT_CONFIG_* environment variables: never argv, .git/config or the
// remote URL. The default branch (and main/master) is refused, and the
// refspec has no "+", so nothing is ever forced.
func (f *forge) Push(ctx context.Context, sb sandbox.Sandbox, branch string) error {
	branch = strings.TrimPrefix(branch, "refs/heads/")
	if !branchPattern.MatchString(branch) || strings.Contains(branch, "..") || strings.HasSuffix(branch, ".lock") {
		return fmt.Errorf("push: %q is not a branch name hero pushes", branch)
	}
	protected := []string{"main", "master"}
	if d := strings.TrimPrefix(f.project.DefaultBranch, "refs/heads/"); d != "" {
		protected = append(protected, d)
	}
	if slices.Contains(protected, branch) {
		return fmt.Errorf("push: refusing to push %s, the default or a protected branch; push a branch of your own", branch)
	}
	tok, err := f.s.cfg.Credentials.Token(ctx, f.repo)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + tok))
	env := map[string]string{
		"GIT_TERMINAL_PROMPT": "0",
		"GIT_CONFIG_COUNT":    "2",
		"GIT_CONFIG_KEY_0":    "http.extraHeader",
		"GIT_CONFIG_VALUE_0":  "Authorization: Basic " + basic,
		"GIT_CONFIG_KEY_1":    "credential.helper",
		"GIT_CONFIG_VALUE_1":  "",
	}
	ref := "refs/heads/" + branch
	var out bytes.Buffer
	res, err := sb.Exec(ctx, sandbox.Cmd{
		Args:    []string{"git", "push", "--porcelain", "--", f.remote, ref + ":" + ref},
		Env:     env,
		Network: true,
		Stdout:  &out, Stderr: &out,
		Timeout: 5 * time.Minute,
	})
	scrub := func(s string) string {
		return strings.NewReplacer(tok, "[token]", basic, "[token]").Replace(s)
	}
	if err != nil {
		return fmt.Errorf("push %s: %s", branch, scrub(err.Error()))
	}
	if res.ExitCode != 0 || res.TimedOut {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 800 {
			msg = msg[len(msg)-800:]
		}
		return fmt.Errorf("push %s: git exited %d: %s", branch, res.ExitCode, scrub(msg))
	}
	return nil
}

// CreatePullRequest opens a pull request from head into the project's
// default branch; a run about an issue gets "Fixes #N" in the body so
// merging closes it.
func (f *forge) CreatePullRequest(ctx context.Context, head, title, body string, draft bool) (string, error) {
	if f.thread != nil && f.thread.Branch != "" && head == f.thread.Branch {
		return "", fmt.Errorf("pull request #%d already exists for branch %s; pushing the branch with git_push updates it, so there is no new pull request to open", f.thread.Number, head)
	}
	c := f.s.client(f.repo)
	base := strings.TrimPrefix(f.project.DefaultBranch, "refs/heads/")
	if base == "" {
		r, _, err := c.Repositories.Get(ctx, f.repo.Owner, f.repo.Name)
		if err != nil {
			return "", fmt.Errorf("read the default branch of %s: %w", f.repo, err)
		}
		base = r.GetDefaultBranch()
	}
	if f.thread != nil && f.thread.Branch == "" && sameRepo(f.thread.Repo, f.repo) {
		fixes := fmt.Sprintf("Fixes #%d", f.thread.Number)
		if !strings.Contains(body, fixes) {
			body = strings.TrimRight(body, "\n") + "\n\n" + fixes
			body = strings.TrimLeft(body, "\n")
		}
	}
	pr, _, err := c.PullRequests.Create(ctx, f.repo.Owner, f.repo.Name, &gh.NewPullRequest{
		Title: gh.String(title), Head: gh.String(head), Base: gh.String(base), Body: gh.String(clipComment(body)), Draft: gh.Bool(draft),
	})
	if err != nil {
		return "", fmt.Errorf("open pull request on %s: %w", f.repo, err)
	}
	return pr.GetHTMLURL(), nil
}

// Comment posts on the issue the run is about.
func (f *forge) Comment(ctx context.Context, body string) error {
	if f.thread == nil {
		return errors.New("this run was not started from a GitHub issue, so there is nothing to comment on")
	}
	return f.s.reply(ctx, *f.thread, body)
}

// Reading limits: the latest comments of each kind are fetched, one page.
const readPage = 50

// number resolves a reading tool's number: n itself, or (0) the issue or
// pull request the run is about.
func (f *forge) number(n int, what string) (int, error) {
	if n > 0 {
		return n, nil
	}
	if f.thread == nil || !sameRepo(f.thread.Repo, f.repo) {
		return 0, fmt.Errorf("this run was not started from a GitHub %s of %s; give the number to read", what, f.repo)
	}
	return f.thread.Number, nil
}

// ReadIssue returns issue number (0: the run's own) with its latest
// comments.
func (f *forge) ReadIssue(ctx context.Context, number int) (*engine.ForgeIssue, error) {
	n, err := f.number(number, "issue")
	if err != nil {
		return nil, err
	}
	c := f.s.client(f.repo)
	is, _, err := c.Issues.Get(ctx, f.repo.Owner, f.repo.Name, n)
	if err != nil {
		return nil, readErr(err, "issue", n, f.repo)
	}
	out := &engine.ForgeIssue{
		Number: is.GetNumber(), Title: is.GetTitle(), Body: is.GetBody(), Author: is.GetUser().GetLogin(),
		State: is.GetState(), URL: is.GetHTMLURL(), IsPullRequest: is.IsPullRequest(),
	}
	for _, l := range is.Labels {
		out.Labels = append(out.Labels, l.GetName())
	}
	out.Comments, out.MoreComments, err = f.issueComments(ctx, c, n, is.GetComments())
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadPullRequest returns pull request number (0: the run's own) with
// its issue comments and review comments.
func (f *forge) ReadPullRequest(ctx context.Context, number int) (*engine.ForgePullRequest, error) {
	n, err := f.number(number, "pull request")
	if err != nil {
		return nil, err
	}
	c := f.s.client(f.repo)
	pr, _, err := c.PullRequests.Get(ctx, f.repo.Owner, f.repo.Name, n)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("#%d is not a pull request of %s (read_issue reads issues)", n, f.repo)
		}
		return nil, readErr(err, "pull request", n, f.repo)
	}
	out := &engine.ForgePullRequest{
		ForgeIssue: engine.ForgeIssue{
			Number: pr.GetNumber(), Title: pr.GetTitle(), Body: pr.GetBody(), Author: pr.GetUser().GetLogin(),
			State: pr.GetState(), URL: pr.GetHTMLURL(), IsPullRequest: true,
		},
		Head: pr.GetHead().GetRef(), Base: pr.GetBase().GetRef(), Draft: pr.GetDraft(), Merged: pr.GetMerged(),
	}
	for _, l := range pr.Labels {
		out.Labels = append(out.Labels, l.GetName())
	}
	if out.Comments, out.MoreComments, err = f.issueComments(ctx, c, n, pr.GetComments()); err != nil {
		return nil, err
	}
	// The newest review comments, as issueComments does.
	var rcs []*gh.PullRequestComment
	page := lastPage(pr.GetReviewComments())
	for p := page; p >= max(page-1, 1) && len(rcs) < readPage; p-- {
		opts := &gh.PullRequestListCommentsOptions{ListOptions: gh.ListOptions{PerPage: readPage, Page: p}}
		got, _, err := c.PullRequests.ListComments(ctx, f.repo.Owner, f.repo.Name, n, opts)
		if err != nil {
			return nil, readErr(err, "review comments of pull request", n, f.repo)
		}
		rcs = append(got, rcs...)
	}
	rcs = rcs[max(len(rcs)-readPage, 0):]
	for _, rc := range rcs {
		out.ReviewComments = append(out.ReviewComments, engine.ForgeComment{
			Author: rc.GetUser().GetLogin(), Association: rc.GetAuthorAssociation(), Body: rc.GetBody(),
			CreatedAt: rc.GetCreatedAt().Time, Path: rc.GetPath(), Line: rc.GetLine(),
		})
	}
	out.MoreReviewComments = max(pr.GetReviewComments()-len(rcs), 0)
	return out, nil
}

// issueComments returns the latest readPage comments of an issue (total
// is its comment count) and how many older ones were left out. The newest
// are on the last page; when it is short the page before fills up.
func (f *forge) issueComments(ctx context.Context, c *gh.Client, n, total int) ([]engine.ForgeComment, int, error) {
	page := lastPage(total)
	var cs []*gh.IssueComment
	for p := page; p >= max(page-1, 1) && len(cs) < readPage; p-- {
		opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: readPage, Page: p}}
		got, _, err := c.Issues.ListComments(ctx, f.repo.Owner, f.repo.Name, n, opts)
		if err != nil {
			return nil, 0, readErr(err, "comments of", n, f.repo)
		}
		cs = append(got, cs...)
	}
	cs = cs[max(len(cs)-readPage, 0):]
	out := make([]engine.ForgeComment, 0, len(cs))
	for _, ic := range cs {
		out = append(out, engine.ForgeComment{
			Author: ic.GetUser().GetLogin(), Association: ic.GetAuthorAssociation(), Body: ic.GetBody(), CreatedAt: ic.GetCreatedAt().Time,
		})
	}
	return out, max(total-len(out), 0), nil
}

// lastPage is the page holding the newest of total items.
func lastPage(total int) int {
	if total <= readPage {
		return 1
	}
	return (total + readPage - 1) / readPage
}

func isNotFound(err error) bool {
	var er *gh.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == 404
}

func readErr(err error, what string, n int, repo Repo) error {
	if isNotFound(err) {
		return fmt.Errorf("%s #%d was not found in %s", what, n, repo)
	}
	return fmt.Errorf("read %s #%d of %s: %w", what, n, repo, err)
}
