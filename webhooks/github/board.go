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
	boards BoardStore
	apiURL string
	creds  Credentials
	rl     *rateLimiter
	hosts  []string
	log    *slog.Logger
}

var _ kanban.Projection = (*Board)(nil)

// BoardStore reads and saves boards (their GitHub Project link).
type BoardStore interface {
	BoardByID(ctx context.Context, id int64) (*store.KanbanBoard, error)
	UpdateBoard(ctx context.Context, b *store.KanbanBoard) error
}

// BoardConfig is what the projection needs: the same API root,
// credentials and hosts as the Service, and the boards.
type BoardConfig struct {
	Boards      BoardStore
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
	if cfg.Credentials == nil || cfg.Boards == nil {
		return nil, errors.New("github board: credentials and boards are required")
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
	b := &Board{boards: cfg.Boards, apiURL: cfg.APIURL, creds: cfg.Credentials, rl: newRateLimiter(cfg.Transport, cfg.WritePace, 2*time.Minute), hosts: cfg.Hosts, log: cfg.Log.With("projection", "github")}
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
	board, err := b.boards.BoardByID(ctx, c.BoardID)
	if err != nil {
		return kanban.Links{}, err
	}
	cl := b.client(repo)
	thread := func(n int) []store.KanbanCardThread {
		return []store.KanbanCardThread{{Surface: "github", ThreadRef: Thread{Repo: repo, Number: n}.String()}}
	}
	if c.IssueNumber > 0 {
		// The card came from this issue: show its column there.
		return kanban.Links{Threads: thread(c.IssueNumber)}, b.show(ctx, repo, board, c.IssueNumber, col)
	}
	req := &gh.IssueRequest{Title: gh.String(c.Title), Body: gh.String(issueBody(c))}
	if board.GitHubProject == "" {
		req.Labels = &[]string{LabelPrefix + col.Slug}
	}
	is, _, err := cl.Issues.Create(ctx, repo.Owner, repo.Name, req)
	if err != nil {
		return kanban.Links{}, fmt.Errorf("open the issue of card %s in %s: %w", c.ID, repo, err)
	}
	links := kanban.Links{IssueNumber: is.GetNumber(), IssueURL: is.GetHTMLURL(), Threads: thread(is.GetNumber())}
	if board.GitHubProject != "" || col.Kind == store.KindDone {
		if err := b.show(ctx, repo, board, is.GetNumber(), col); err != nil {
			return links, err
		}
	}
	b.log.Info("card issue opened", "card", c.ID, "issue", is.GetHTMLURL())
	return links, nil
}

// CardMoved puts the new column's label on the card's issue and takes the
// other hero: labels off; into done closes the issue, out of it reopens.
func (b *Board) CardMoved(ctx context.Context, p *store.Project, c *store.KanbanCard, to *store.KanbanColumn) error {
	repo, ok := b.repo(p)
	if !ok || c.IssueNumber == 0 {
		return nil
	}
	board, err := b.boards.BoardByID(ctx, c.BoardID)
	if err != nil {
		return err
	}
	return b.show(ctx, repo, board, c.IssueNumber, to)
}

// show makes issue n show column to: its Status in the linked GitHub
// Project, else its hero: label; closed in a done column, open elsewhere.
func (b *Board) show(ctx context.Context, repo Repo, board *store.KanbanBoard, n int, to *store.KanbanColumn) error {
	cl := b.client(repo)
	is, _, err := cl.Issues.Get(ctx, repo.Owner, repo.Name, n)
	if err != nil {
		return fmt.Errorf("read issue %s#%d: %w", repo, n, err)
	}
	if board.GitHubProject != "" {
		if err := b.setStatus(ctx, repo, board, is.GetNodeID(), to); err != nil {
			return err
		}
	} else if err := b.label(ctx, cl, repo, is, to); err != nil {
		return err
	}
	state := "open"
	if to.Kind == store.KindDone {
		state = "closed"
	}
	if is.GetState() != state {
		if _, _, err := cl.Issues.Edit(ctx, repo.Owner, repo.Name, n, &gh.IssueRequest{State: gh.String(state)}); err != nil {
			return fmt.Errorf("set issue %s#%d %s: %w", repo, n, state, err)
		}
	}
	return nil
}

// label puts hero:<column> on the issue and takes other hero: labels off.
func (b *Board) label(ctx context.Context, cl *gh.Client, repo Repo, is *gh.Issue, to *store.KanbanColumn) error {
	n := is.GetNumber()
	want := LabelPrefix + to.Slug
	has := false
	for _, l := range is.Labels {
		name := l.GetName()
		switch {
		case name == want:
			has = true
		case strings.HasPrefix(name, LabelPrefix):
			if _, err := cl.Issues.RemoveLabelForIssue(ctx, repo.Owner, repo.Name, n, name); err != nil && !isNotFound(err) {
				return fmt.Errorf("take label %s off issue %s#%d: %w", name, repo, n, err)
			}
		}
	}
	if !has {
		if _, _, err := cl.Issues.AddLabelsToIssue(ctx, repo.Owner, repo.Name, n, []string{want}); err != nil {
			return fmt.Errorf("label issue %s#%d: %w", repo, n, err)
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
