package github

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	gh "github.com/google/go-github/v60/github"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
)

// Forge returns where a run of project p publishes: its GitHub repository,
// when the project's RepoURL is one (on this GitHub's host, or any host
// for a run started from GitHub: then it comments there, but pushes only
// to this GitHub's host). It is an engine.ForgeFunc.
func (pub *Publisher) Forge(_ context.Context, p *store.Project, ex *store.Execution) (engine.Forge, error) {
	host, repo, ok := parseRepoURL(p.RepoURL)
	if !ok {
		return nil, nil
	}
	f := &forge{p: pub, project: p, ex: ex, repo: repo}
	if ex.Surface == SurfaceName {
		th, err := ParseThread(ex.ThreadRef)
		if err != nil {
			return nil, err
		}
		f.thread = &th
	} else if !slices.Contains(pub.hosts, host) {
		return nil, nil
	}
	remote, err := pub.pushRemote(p.RepoURL, host, repo)
	if err != nil {
		return nil, err
	}
	f.remote = remote
	f.work, _ = pub.WorkBranch(ex)
	return f, nil
}

// pushRemote is the URL hero pushes to: the project's own http(s) URL,
// or for an ssh one the same repository on this GitHub's web origin (the
// token authenticates over http(s) only).
func (pub *Publisher) pushRemote(raw, host string, repo Repo) (string, error) {
	if strings.HasPrefix(raw, "https://") || strings.HasPrefix(raw, "http://") {
		if strings.Contains(strings.SplitN(strings.SplitN(raw, "://", 2)[1], "/", 2)[0], "@") {
			return "", errors.New("the project's repository URL contains credentials; remove them (hero uses its own token)")
		}
		return raw, nil
	}
	for _, o := range pub.origins {
		if u, err := url.Parse(o); err == nil && strings.EqualFold(u.Hostname(), strings.Split(host, ":")[0]) {
			return fmt.Sprintf("%s/%s/%s.git", o, repo.Owner, repo.Name), nil
		}
	}
	return fmt.Sprintf("https://%s/%s/%s.git", host, repo.Owner, repo.Name), nil
}

type forge struct {
	p       *Publisher
	project *store.Project
	ex      *store.Execution
	repo    Repo
	remote  string
	thread  *Thread // nil for runs started elsewhere
	work    string  // the run's work branch

	mu         sync.Mutex
	lastPushed string
}

var _ engine.Forge = (*forge)(nil)

// branchPattern is what Push accepts: no leading dash, no refspec syntax.
var branchPattern = regexp.MustCompile(`^[A-Za-z0-9._][A-Za-z0-9._/-]{0,200}$`)

// maxBundle bounds what a run may bring back for one push.
const maxBundle = 2 << 30

// Push publishes the workspace's HEAD as branch ("" is the run's work
// branch) on the project's remote, creating the branch if needed.
//
// Host git never runs on the workspace's model-controlled .git: git in
// the sandbox (without network) writes a bundle of HEAD, hero's mirror
// fetches it (every object checked) into refs/hero/runs/<run id>, and the
// push goes from the mirror with hero's own configuration: no hooks, no
// url/credential/core settings from the workspace, global and system
// config off, the token only in the environment of that one git process
// and only for this GitHub's origin, redirects off. The default branch
// (and main/master) is refused, and nothing is ever forced.
func (f *forge) Push(ctx context.Context, sb sandbox.Sandbox, branch string) (string, error) {
	if err := f.push(ctx, sb, &branch); err != nil {
		return "", err
	}
	f.mu.Lock()
	f.lastPushed = branch
	f.mu.Unlock()
	return branch, nil
}

func (f *forge) push(ctx context.Context, sb sandbox.Sandbox, branchp *string) error {
	if *branchp == "" {
		*branchp = f.work
	}
	branch := strings.TrimPrefix(*branchp, "refs/heads/")
	*branchp = branch
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
	if f.p.mirrors == nil {
		return errors.New("push: hero has no mirror directory configured, so it cannot push")
	}
	origin, err := mirror.Origin(f.remote)
	if err != nil || !slices.Contains(f.p.origins, origin) {
		return fmt.Errorf("push: %s is not on %s, the only host hero's GitHub credentials go to", mirror.Clean(f.remote), strings.Join(f.p.origins, ", "))
	}
	repo, err := f.p.mirrors.Repo(ctx, f.project.ID)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if err := bringBack(ctx, sb, repo, f.ex.ID); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	tok, err := f.p.creds.Token(ctx, f.repo)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	remote := mirror.Remote{URL: f.remote, Credential: BindCredential(f.p.origins, f.remote, tok)}
	if err := repo.Push(ctx, remote, mirror.RunRef(f.ex.ID), branch); err != nil {
		if errors.Is(err, mirror.ErrRejected) {
			return fmt.Errorf("push %s: the remote branch has commits the run's HEAD does not contain, and hero never force-pushes; push to a new branch instead: %w", branch, err)
		}
		return fmt.Errorf("push %s: %w", branch, err)
	}
	return nil
}

// bringBack stores the workspace's HEAD in the mirror as the run's ref,
// carrying only the commits the mirror lacks out of the sandbox.
func bringBack(ctx context.Context, sb sandbox.Sandbox, repo *mirror.Repo, runID string) error {
	head, err := sandbox.Head(ctx, sb)
	if err != nil {
		return err
	}
	if repo.Has(ctx, head) {
		return repo.SetRunRef(ctx, runID, head)
	}
	tips, err := repo.Tips(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp("", "hero-run-*.bundle")
	if err != nil {
		return fmt.Errorf("bring the run's commits out: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = sandbox.ExportHead(ctx, sb, tmp, tips, maxBundle)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	got, err := repo.FetchBundle(ctx, tmp.Name(), runID)
	if err != nil {
		return err
	}
	if got != head {
		return fmt.Errorf("the workspace's HEAD moved while it was being pushed (%.12s, then %.12s); push again", head, got)
	}
	return nil
}

// LastPushed is the branch this run pushed last, "" before any push.
func (f *forge) LastPushed() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastPushed
}

// CreatePullRequest opens a pull request from head ("" is the branch
// this run pushed last) into the project's default branch; a run about
// an issue gets "Fixes #N" in the body so merging closes it.
func (f *forge) CreatePullRequest(ctx context.Context, head, title, body string, draft bool) (string, error) {
	if head == "" {
		if head = f.LastPushed(); head == "" {
			return "", errors.New("this run has pushed no branch yet: commit with git_commit and push with git_push first")
		}
	}
	if f.thread != nil && f.thread.Branch != "" && head == f.thread.Branch {
		return "", fmt.Errorf("pull request #%d already exists for branch %s; pushing the branch with git_push updates it, so there is no new pull request to open", f.thread.Number, head)
	}
	c := f.p.client(f.repo)
	base := strings.TrimPrefix(f.project.DefaultBranch, "refs/heads/")
	if base == "" {
		r, _, err := c.Repositories.Get(ctx, f.repo.Owner, f.repo.Name)
		if err != nil {
			return "", fmt.Errorf("read the default branch of %s: %w", f.repo, err)
		}
		base = r.GetDefaultBranch()
	}
	// The model wrote title and body: no remote images or links, no mentions.
	title, body = safeMarkdown(title, f.p.hosts), safeMarkdown(body, f.p.hosts)
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
	_, err := f.p.createComment(ctx, *f.thread, safeMarkdown(body, f.p.hosts))
	return err
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
	c := f.p.client(f.repo)
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
	c := f.p.client(f.repo)
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
