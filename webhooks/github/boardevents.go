package github

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// BoardEvents is the board as GitHub's deliveries change it.
type BoardEvents interface {
	IssueCard(ctx context.Context, a kanban.Actor, projectID int64, number int, title, issueURL string) (*store.KanbanCard, *kanban.Move, error)
	IssueOpened(ctx context.Context, a kanban.Actor, projectID int64, number int, title, issueURL string) (*store.KanbanCard, *store.KanbanColumn, error)
	MoveByIssue(ctx context.Context, a kanban.Actor, projectID int64, number int, slug string) (*kanban.Move, error)
	RestoreIssue(ctx context.Context, projectID int64, number int) (*store.KanbanCard, *store.KanbanColumn, error)
	IssueClosed(ctx context.Context, projectID int64, number int, closed bool, by string) (*kanban.Move, error)
	PullRequestMerged(ctx context.Context, projectID int64, url, by string) (*kanban.Move, error)
}

// boardEvent says whether a delivery is for the board: a hero: label
// added or removed, an issue opened (a card when the project makes every
// issue one), closed or reopened, a pull request merged.
func (s *Service) boardEvent(event string, p *eventPayload) bool {
	if s.cfg.Board == nil {
		return false
	}
	if event == "projects_v2_item" {
		// Only a draft's text edit is surely no move; any other shape,
		// known or not, is followed by reading the item back.
		return p.Action == "edited" && p.ProjectsV2Item != nil && (p.Changes == nil || p.Changes.FieldValue != nil || !p.Changes.Body)
	}
	if p.Repository == nil {
		return false
	}
	switch {
	case event == "issues" && p.Issue != nil && (p.Action == "labeled" || p.Action == "unlabeled"):
		return p.Label != nil && strings.HasPrefix(p.Label.Name, LabelPrefix)
	case event == "issues" && p.Issue != nil && (p.Action == "closed" || p.Action == "reopened" || p.Action == "opened"):
		return p.Issue.PullRequest == nil
	case event == "pull_request" && p.Action == "closed" && p.PullRequest != nil:
		return p.PullRequest.Merged
	}
	return false
}

// onBoardEvent moves the card a delivery is about. What hero's own
// account did is the echo of the board's own writes: ignored, so nothing
// loops. A removed label moves nothing (the label added with it does).
func (s *Service) onBoardEvent(ctx context.Context, log *slog.Logger, event string, p *eventPayload) error {
	if s.isSelf(p.Sender.Login) {
		log.Debug("board change by hero itself ignored (echo)")
		return nil
	}
	if event == "projects_v2_item" {
		return s.onProjectItem(ctx, log, p)
	}
	proj, repo, err := s.project(ctx, p.Repository)
	if err != nil || proj == nil {
		return err
	}
	by := "@" + p.Sender.Login
	var m *kanban.Move
	switch {
	case p.Action == "opened":
		return s.issueOpened(ctx, log, p, proj)
	case event == "pull_request":
		m, err = s.cfg.Board.PullRequestMerged(ctx, proj.ID, p.PullRequest.HTMLURL, by)
	case p.Action == "closed" || p.Action == "reopened":
		m, err = s.cfg.Board.IssueClosed(ctx, proj.ID, p.Issue.Number, p.Action == "closed", by)
	case p.Action == "labeled":
		if isBot(p.Sender) && !s.allowListed(p.Sender.Login) {
			log.Info("hero: label changed by a bot ignored", "login", p.Sender.Login)
			return nil
		}
		m, err = s.cfg.Board.MoveByIssue(ctx, s.boardActor(repo, p.Sender.Login), proj.ID, p.Issue.Number, strings.TrimPrefix(p.Label.Name, LabelPrefix))
		if kanban.KindOf(err) != 0 {
			return s.labelRefused(ctx, log, repo, proj, p, err)
		}
	default:
		return nil
	}
	if err != nil {
		return err
	}
	if m != nil && m.Moved {
		log.Info("card moved from GitHub", "card", m.Card.ID, "to", m.To.Name, "by", by)
	}
	return nil
}

// boardActor is a GitHub person on the board, authorised like every
// other GitHub action: a linked hero account holds its hero role, anyone
// else the role their repository permission grants (bot.GitHubRole:
// write → member, who may move cards; triage or read → viewer, who may
// not), through the engine's one Role.
func (s *Service) boardActor(repo Repo, login string) kanban.Actor {
	return kanban.Actor{ID: "github:" + login, Surface: "github", Role: func(ctx context.Context, projectID int64) (store.Role, error) {
		who := engine.Principal{ID: "github:" + login}
		u, err := s.HeroUser(ctx, bot.Actor{ID: login})
		if err != nil {
			return "", err
		}
		if u != nil {
			who.UserID = u.ID
		} else {
			perm, err := s.grantedPermission(ctx, repo, login)
			if err != nil {
				return "", err
			}
			who.Granted = bot.GitHubRole(perm)
		}
		return s.cfg.Engine.Role(ctx, projectID, who)
	}}
}

// grantedPermission is login's permission on repo as hero counts it: what
// GitHub says, raised to write for the allow-list (trusted as a
// collaborator).
func (s *Service) grantedPermission(ctx context.Context, repo Repo, login string) (string, error) {
	perm, err := s.permission(ctx, repo, login)
	if err != nil {
		return "", err
	}
	if s.allowListed(login) && !bot.GitHubRole(perm).AtLeast(store.RoleMember) {
		perm = "write"
	}
	return perm, nil
}

// labelRefused answers a hero: label the board refused (the person may
// not move cards, the column is full or unknown): the issue shows the
// card's column again and the person is told why, on the issue.
func (s *Service) labelRefused(ctx context.Context, log *slog.Logger, repo Repo, proj *store.Project, p *eventPayload, refusal error) error {
	log.Info("hero: label change refused", "repo", repo.String(), "issue", p.Issue.Number, "login", p.Sender.Login, "reason", refusal.Error())
	c, col, err := s.cfg.Board.RestoreIssue(ctx, proj.ID, p.Issue.Number)
	if err != nil {
		return err
	}
	if c == nil || col == nil {
		return nil
	}
	why := strings.TrimSuffix(refusal.Error(), ".")
	if kanban.KindOf(refusal) == kanban.NotFound {
		// The board hides its cards from people outside the project;
		// the card of this issue is in plain sight here.
		why = "you hold no role in hero project " + proj.Name
	}
	msg := fmt.Sprintf("@%s %s. The card stays in %s, so its label is back to `%s%s`.", p.Sender.Login, why, col.Name, LabelPrefix, col.Slug)
	if k := kanban.KindOf(refusal); k == kanban.Forbidden || k == kanban.NotFound {
		msg += fmt.Sprintf(" Moving a card by its label needs write access to %s, or the member role in hero project %s for a GitHub account linked on the settings page.", repo, proj.Name)
	}
	return s.reply(ctx, Thread{Repo: repo, Number: p.Issue.Number}, msg)
}

// issueOpened makes a newly opened issue a card in the board's first
// column when the project makes every issue a card; only a trusted
// author's (owners, members, collaborators, the allow-list).
func (s *Service) issueOpened(ctx context.Context, log *slog.Logger, p *eventPayload, proj *store.Project) error {
	if !proj.IssuesBecomeCards {
		return nil
	}
	if !s.trusted(p.Issue.User, p.Issue.AuthorAssociation) {
		log.Info("issue not made a card: its author is not trusted", "issue", p.Issue.Number, "login", p.Issue.User.Login, "association", p.Issue.AuthorAssociation)
		return nil
	}
	issueURL := strings.TrimSuffix(p.Repository.HTMLURL, "/") + fmt.Sprintf("/issues/%d", p.Issue.Number)
	a := kanban.Actor{ID: "github:" + p.Issue.User.Login, Surface: "github"}
	c, col, err := s.cfg.Board.IssueOpened(ctx, a, proj.ID, p.Issue.Number, p.Issue.Title, issueURL)
	if kanban.KindOf(err) != 0 {
		log.Info("issue not made a card", "issue", p.Issue.Number, "reason", err.Error())
		return nil
	}
	if err != nil || c == nil {
		return err
	}
	log.Info("opened issue is a card", "card", c.ID, "issue", p.Issue.Number, "column", col.Name)
	return nil
}

// issueCard makes the issue a card in the doing column, whose run does
// the work (instead of a run of the issue alone): for the trigger label
// on an issue written by a trusted author. The labeller is trusted as for
// the run it replaces (labelling needs triage access), or holds their
// linked hero role.
func (s *Service) issueCard(ctx context.Context, log *slog.Logger, p *eventPayload, proj *store.Project) error {
	_, repo, _ := parseRepoURL(p.Repository.HTMLURL)
	a := s.boardActor(repo, p.Sender.Login)
	linked := a.Role
	a.Role = func(ctx context.Context, projectID int64) (store.Role, error) {
		if u, _ := s.HeroUser(ctx, bot.Actor{ID: p.Sender.Login}); u != nil {
			return linked(ctx, projectID)
		}
		return store.RoleMember, nil
	}
	issueURL := strings.TrimSuffix(p.Repository.HTMLURL, "/") + fmt.Sprintf("/issues/%d", p.Issue.Number)
	c, m, err := s.cfg.Board.IssueCard(ctx, a, proj.ID, p.Issue.Number, p.Issue.Title, issueURL)
	if kanban.KindOf(err) != 0 {
		log.Info("issue not made a card", "issue", p.Issue.Number, "reason", err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	if m != nil && m.RunErr != nil {
		log.Warn("card run did not start", "card", c.ID, "err", m.RunErr)
	}
	log.Info("issue is a card", "card", c.ID, "issue", p.Issue.Number)
	return nil
}

// onProjectItem follows a Status changed in a linked GitHub Project: for
// each board linked to that project, the item is read back with the
// board's repository's credentials (the delivery names no repository,
// and its changes.field_value has had several shapes), and the card of
// its issue moves to the column named like the Status.
func (s *Service) onProjectItem(ctx context.Context, log *slog.Logger, p *eventPayload) error {
	it, field := p.ProjectsV2Item, ""
	if p.Changes != nil && p.Changes.FieldValue != nil {
		field = p.Changes.FieldValue.FieldNodeID
	}
	boards, err := s.cfg.Store.BoardsOfGitHubProject(ctx, it.ProjectNodeID)
	if err != nil {
		return err
	}
	for _, b := range boards {
		if field != "" && b.GitHubStatusField != "" && field != b.GitHubStatusField {
			continue // another field than Status
		}
		proj, err := s.cfg.Store.ProjectByID(ctx, b.ProjectID)
		if err != nil {
			return err
		}
		host, repo, ok := parseRepoURL(proj.RepoURL)
		if !ok || !slices.Contains(s.hosts, host) {
			continue
		}
		item, err := readProjectItem(ctx, s.client(repo), s.pub.apiURL, it.NodeID)
		if err != nil {
			return err
		}
		if item == nil || item.ProjectID != it.ProjectNodeID {
			continue // a draft or a pull request, or no Status
		}
		if !strings.EqualFold(item.Repo, repo.String()) {
			continue // an issue of another repository in the same project
		}
		m, err := s.cfg.Board.MoveByIssue(ctx, s.boardActor(repo, p.Sender.Login), proj.ID, item.Issue, item.Status)
		if kanban.KindOf(err) != 0 {
			log.Info("project Status change refused", "issue", item.Issue, "status", item.Status, "login", p.Sender.Login, "reason", err.Error())
			continue
		}
		if err != nil {
			return err
		}
		if m != nil && m.Moved {
			log.Info("card moved from a GitHub Project", "card", m.Card.ID, "to", m.To.Name, "by", p.Sender.Login)
		}
	}
	return nil
}

// itemChanges is the changes of a projects_v2_item edited delivery, read
// defensively: GitHub has sent changes.field_value in several shapes, so
// a shape hero does not know is not an error (the delivery would be
// parked and the move lost) but leaves FieldNodeID empty, and the item is
// read back for its Status.
type itemChanges struct {
	FieldValue *itemFieldValue // nil when no field changed
	Body       bool            // a draft issue's text changed
}

type itemFieldValue struct {
	FieldNodeID string // "" when missing or not a string
}

func (c *itemChanges) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return nil // not an object: an unknown shape, read the item back
	}
	if fv, ok := raw["field_value"]; ok {
		c.FieldValue = &itemFieldValue{}
		var known struct {
			FieldNodeID any `json:"field_node_id"`
		}
		if json.Unmarshal(fv, &known) == nil {
			c.FieldValue.FieldNodeID, _ = known.FieldNodeID.(string)
		}
	}
	_, c.Body = raw["body"]
	return nil
}
