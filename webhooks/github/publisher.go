package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
)

// SurfaceName is the surface name of runs started from GitHub
// (store.Execution.Surface): their work branch and forge follow the
// issue or pull request they were started from.
const SurfaceName = "github"

// PublisherConfig configures a Publisher. Zero values take the defaults
// noted.
type PublisherConfig struct {
	// APIURL is the REST API root (GITHUB_API_URL; "" is api.github.com,
	// https://HOST/api/v3 for GitHub Enterprise).
	APIURL      string
	Credentials Credentials
	// Hosts are the web hosts (host[:port]) whose repositories hero
	// publishes to, and the only ones its credentials go to, over the
	// API's scheme (default: the web host of APIURL; see WebOrigin).
	Hosts []string
	// Mirrors holds hero's host-side copy of each project's repository:
	// pushes go from there, never from the workspace (required to push).
	Mirrors *mirror.Mirrors
	// WritePace spaces content-creating API calls (default 1 s, GitHub's
	// advice; negative: none); MaxRateWait is the longest wait for a rate
	// limit before a call fails (default 2 min).
	WritePace   time.Duration
	MaxRateWait time.Duration
	// Transport carries API requests (tests); default http.DefaultTransport.
	Transport http.RoundTripper
}

// Publisher is hero's GitHub account at work on repositories: it lets
// runs publish (Forge: push, open pull requests, comment on their issue),
// gives the mirror its clone credential (CloneCredential), names runs'
// work branches (WorkBranch), and is the API client — credentials,
// pacing, rate limits, the hosts credentials may go to — that the GitHub
// surface (Service) shares. It needs no engine: cmd/hero builds it first
// and hands it to the workspaces, the engine and the Service.
type Publisher struct {
	apiURL  string
	creds   Credentials
	mirrors *mirror.Mirrors
	rl      *rateLimiter
	hosts   []string // web hosts, lower case
	origins []string // where credentials may go: scheme://host[:port]
}

// NewPublisher checks cfg and returns the publisher.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("github: credentials are required (GITHUB_TOKEN, a GitHub App, or an OAuth login)")
	}
	if cfg.WritePace < 0 {
		cfg.WritePace = 0
	} else if cfg.WritePace == 0 {
		cfg.WritePace = time.Second
	}
	if cfg.MaxRateWait <= 0 {
		cfg.MaxRateWait = 2 * time.Minute
	}
	p := &Publisher{apiURL: cfg.APIURL, creds: cfg.Credentials, mirrors: cfg.Mirrors,
		rl: newRateLimiter(cfg.Transport, cfg.WritePace, cfg.MaxRateWait)}
	if _, err := newClient(cfg.APIURL, p.rl, nil); err != nil {
		return nil, err
	}
	p.hosts = append([]string(nil), cfg.Hosts...)
	if len(p.hosts) == 0 {
		p.hosts = []string{webHost(cfg.APIURL)}
	}
	for i := range p.hosts {
		p.hosts[i] = strings.ToLower(p.hosts[i])
	}
	p.origins = origins(cfg.APIURL, cfg.Hosts)
	return p, nil
}

// client returns an API client acting for repo.
func (p *Publisher) client(repo Repo) *gh.Client {
	c, _ := newClient(p.apiURL, p.rl, func(ctx context.Context) (string, error) {
		return p.creds.Token(ctx, repo)
	})
	return c
}

// createComment comments on an issue or pull request.
func (p *Publisher) createComment(ctx context.Context, th Thread, body string) (int64, error) {
	c, _, err := p.client(th.Repo).Issues.CreateComment(ctx, th.Repo.Owner, th.Repo.Name, th.Number, &gh.IssueComment{Body: gh.String(clipComment(body))})
	if err != nil {
		return 0, fmt.Errorf("comment on %s#%d: %w", th.Repo, th.Number, err)
	}
	return c.GetID(), nil
}

// WorkBranch is the branch a run works on and pushes to by default:
// the head branch of hero's own pull request when the run continues it
// (continues is then true: the workspace checks that branch out),
// hero/<issue>-<short slug of its title> for other runs started from
// GitHub, and hero/<run id> for runs started elsewhere. cmd/hero's
// workspaces take it.
func (p *Publisher) WorkBranch(ex *store.Execution) (branch string, continues bool) {
	if ex == nil {
		return "", false
	}
	if ex.Surface != SurfaceName {
		return "hero/" + ex.ID, false
	}
	th, err := ParseThread(ex.ThreadRef)
	if err != nil {
		return "hero/" + ex.ID, false
	}
	if th.Branch != "" {
		return th.Branch, true
	}
	// The task's first line is "GitHub issue o/r#N: <title>" (see
	// onComment and onIssue).
	first, _, _ := strings.Cut(ex.Task, "\n")
	_, title, _ := strings.Cut(first, ": ")
	if slug := slugify(title, 4, 32); slug != "" {
		return fmt.Sprintf("hero/%d-%s", th.Number, slug), false
	}
	return fmt.Sprintf("hero/%d", th.Number), false
}
