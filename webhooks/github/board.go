package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// LabelPrefix starts the label that shows a card's column on its issue:
// "hero:in-progress".
const LabelPrefix = "hero:"

// Board shows a project's kanban board on GitHub, for projects whose
// repository is on this GitHub: a card is an issue (creating a card opens
// it), the card's column is a hero:<column> label, and the done column
// closes the issue (leaving it reopens it). It is a kanban.Projection.
//
// Its writes come back as webhook deliveries sent by hero's own account;
// the Service ignores those (the echo), so a change never loops.
type Board struct {
	apiURL string
	creds  Credentials
	rl     *rateLimiter
	hosts  []string
	log    *slog.Logger
}

var _ kanban.Projection = (*Board)(nil)

// BoardConfig is what the projection needs: the same API root,
// credentials and hosts as the Service.
type BoardConfig struct {
	APIURL      string
	Credentials Credentials
	Hosts       []string
	// WritePace spaces content-creating calls (default 1 s, GitHub's
	// advice; negative: none).
	WritePace time.Duration
	Transport http.RoundTripper
	Log       *slog.Logger
}

// NewBoard returns the GitHub projection of boards.
func NewBoard(cfg BoardConfig) (*Board, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("github board: credentials are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.WritePace == 0:
		cfg.WritePace = time.Second
	case cfg.WritePace < 0:
		cfg.WritePace = 0
	}
	b := &Board{apiURL: cfg.APIURL, creds: cfg.Credentials, rl: newRateLimiter(cfg.Transport, cfg.WritePace, 2*time.Minute), hosts: cfg.Hosts, log: cfg.Log.With("projection", "github")}
	if _, err := newClient(cfg.APIURL, b.rl, nil); err != nil {
		return nil, err
	}
	if len(b.hosts) == 0 {
		b.hosts = []string{webHost(cfg.APIURL)}
	}
	for i := range b.hosts {
		b.hosts[i] = strings.ToLower(b.hosts[i])
	}
	return b, nil
}

// repo returns the project's repository when it is on this GitHub: the
// credentials go nowhere else.
func (b *Board) repo(p *store.Project) (Repo, bool) {
	host, repo, ok := parseRepoURL(p.RepoURL)
	return repo, ok && slices.Contains(b.hosts, host)
}

func (b *Board) client(repo Repo) *gh.Client {
	c, _ := newClient(b.apiURL, b.rl, func(ctx context.Context) (string, error) { return b.creds.Token(ctx, repo) })
	return c
}

// issueBody is what the issue of a card says: the card's text and where
// the card lives.
func issueBody(c *store.KanbanCard) string {
	body := strings.TrimSpace(c.Body)
	if body != "" {
		body += "\n\n"
	}
	return body + fmt.Sprintf("<sub>hero card `%s` · its column is the `hero:` label; moving the card on the board or changing the label moves it everywhere.</sub>", c.ID)
}

// CardCreated opens the card's issue with its column's label (an issue
// the card came from only gets the label), and names the issue as one of
// the card's threads, where its runs report.
func (b *Board) CardCreated(ctx context.Context, p *store.Project, c *store.KanbanCard, col *store.KanbanColumn) (kanban.Links, error) {
	repo, ok := b.repo(p)
	if !ok {
		return kanban.Links{}, nil
	}
	label := LabelPrefix + col.Slug
	if c.IssueNumber > 0 {
		if _, _, err := b.client(repo).Issues.AddLabelsToIssue(ctx, repo.Owner, repo.Name, c.IssueNumber, []string{label}); err != nil {
			return kanban.Links{}, fmt.Errorf("label issue %s#%d: %w", repo, c.IssueNumber, err)
		}
		return kanban.Links{Threads: []store.KanbanCardThread{{Surface: "github", ThreadRef: Thread{Repo: repo, Number: c.IssueNumber}.String()}}}, nil
	}
	is, _, err := b.client(repo).Issues.Create(ctx, repo.Owner, repo.Name, &gh.IssueRequest{
		Title: gh.String(c.Title), Body: gh.String(issueBody(c)), Labels: &[]string{label},
	})
	if err != nil {
		return kanban.Links{}, fmt.Errorf("open the issue of card %s in %s: %w", c.ID, repo, err)
	}
	if col.Kind == store.KindDone {
		if _, _, err := b.client(repo).Issues.Edit(ctx, repo.Owner, repo.Name, is.GetNumber(), &gh.IssueRequest{State: gh.String("closed")}); err != nil {
			return kanban.Links{}, fmt.Errorf("close issue %s#%d: %w", repo, is.GetNumber(), err)
		}
	}
	b.log.Info("card issue opened", "card", c.ID, "issue", is.GetHTMLURL())
	return kanban.Links{IssueNumber: is.GetNumber(), IssueURL: is.GetHTMLURL(),
		Threads: []store.KanbanCardThread{{Surface: "github", ThreadRef: Thread{Repo: repo, Number: is.GetNumber()}.String()}}}, nil
}

// CardMoved puts the new column's label on the card's issue and takes the
// other hero: labels off; into done closes the issue, out of it reopens.
func (b *Board) CardMoved(ctx context.Context, p *store.Project, c *store.KanbanCard, to *store.KanbanColumn) error {
	repo, ok := b.repo(p)
	if !ok || c.IssueNumber == 0 {
		return nil
	}
	cl := b.client(repo)
	is, _, err := cl.Issues.Get(ctx, repo.Owner, repo.Name, c.IssueNumber)
	if err != nil {
		return fmt.Errorf("read issue %s#%d: %w", repo, c.IssueNumber, err)
	}
	want := LabelPrefix + to.Slug
	has := false
	for _, l := range is.Labels {
		name := l.GetName()
		switch {
		case name == want:
			has = true
		case strings.HasPrefix(name, LabelPrefix):
			if _, err := cl.Issues.RemoveLabelForIssue(ctx, repo.Owner, repo.Name, c.IssueNumber, name); err != nil && !isNotFound(err) {
				return fmt.Errorf("take label %s off issue %s#%d: %w", name, repo, c.IssueNumber, err)
			}
		}
	}
	if !has {
		if _, _, err := cl.Issues.AddLabelsToIssue(ctx, repo.Owner, repo.Name, c.IssueNumber, []string{want}); err != nil {
			return fmt.Errorf("label issue %s#%d: %w", repo, c.IssueNumber, err)
		}
	}
	state := "open"
	if to.Kind == store.KindDone {
		state = "closed"
	}
	if is.GetState() != state {
		if _, _, err := cl.Issues.Edit(ctx, repo.Owner, repo.Name, c.IssueNumber, &gh.IssueRequest{State: gh.String(state)}); err != nil {
			return fmt.Errorf("set issue %s#%d %s: %w", repo, c.IssueNumber, state, err)
		}
	}
	return nil
}

var _ kanban.IssueReader = (*Board)(nil)

// maxDiscussion bounds the issue text quoted into a card's run.
const maxDiscussion = 32 << 10

// IssueDiscussion returns a card's issue as its run reads it: title,
// body and the latest comments with their authors. It is untrusted text
// (the board quotes it as data).
func (b *Board) IssueDiscussion(ctx context.Context, p *store.Project, number int) (string, error) {
	repo, ok := b.repo(p)
	if !ok {
		return "", nil
	}
	cl := b.client(repo)
	is, _, err := cl.Issues.Get(ctx, repo.Owner, repo.Name, number)
	if err != nil {
		return "", fmt.Errorf("read issue %s#%d: %w", repo, number, err)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "#%d %s (by @%s)\n\n%s\n", number, is.GetTitle(), is.GetUser().GetLogin(), is.GetBody())
	cs, _, err := cl.Issues.ListComments(ctx, repo.Owner, repo.Name, number, &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 30}})
	if err != nil {
		return "", fmt.Errorf("read comments of issue %s#%d: %w", repo, number, err)
	}
	for _, c := range cs {
		fmt.Fprintf(&out, "\n@%s:\n%s\n", c.GetUser().GetLogin(), c.GetBody())
	}
	s := out.String()
	if len(s) > maxDiscussion {
		s = s[:maxDiscussion] + "\n[… cut]"
	}
	return s, nil
}
