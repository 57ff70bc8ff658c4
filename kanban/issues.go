package kanban

import (
	"context"
	"errors"
	"fmt"

	"github.com/hero-dev/hero/store"
)

// Changes made where a card is shown (its GitHub issue) arrive here from
// that surface's deliveries, which are deduplicated like any other. A
// change that is only the echo of hero's own write finds the card where
// it already is and changes nothing.

// MoveByIssue moves the card of an issue to the column named by slug (a
// person changed the issue's hero: label). The person needs the member
// role, as everywhere. Returns nil, nil when the issue has no card.
func (s *Service) MoveByIssue(ctx context.Context, a Actor, projectID int64, number int, slug string) (*Move, error) {
	c, err := s.db.CardByIssue(ctx, projectID, number)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.move(ctx, a, "", c.ID, slug, fmt.Sprintf("label on issue #%d", number), wipGuard)
}

// IssueClosed moves the card of a closed issue to done, and of a reopened
// one back to todo (unless it is not in done). by is who did it on GitHub,
// for the note. Returns nil, nil when there is nothing to move.
func (s *Service) IssueClosed(ctx context.Context, projectID int64, number int, closed bool, by string) (*Move, error) {
	c, err := s.db.CardByIssue(ctx, projectID, number)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if closed {
		return s.hostMove(ctx, c, store.KindDone, fmt.Sprintf("issue #%d closed by %s", number, by))
	}
	cols, err := s.db.BoardColumns(ctx, c.BoardID)
	if err != nil {
		return nil, err
	}
	if done := columnOfKind(cols, store.KindDone); done == nil || c.ColumnID != done.ID {
		return nil, nil // reopened while not done: it stays where it is
	}
	return s.hostMove(ctx, c, store.KindTodo, fmt.Sprintf("issue #%d reopened by %s", number, by))
}

// PullRequestMerged moves the card whose run opened a merged pull request
// to done.
func (s *Service) PullRequestMerged(ctx context.Context, projectID int64, url, by string) (*Move, error) {
	c, err := s.db.CardByPullRequest(ctx, projectID, url)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.hostMove(ctx, c, store.KindDone, fmt.Sprintf("%s merged by %s", url, by))
}

// hostMove is a move hero makes because of what happened elsewhere (an
// issue closed, a pull request merged): no WIP limit refuses it, the work
// is done whether or not the column has room.
func (s *Service) hostMove(ctx context.Context, c *store.KanbanCard, kind, note string) (*Move, error) {
	cols, err := s.db.BoardColumns(ctx, c.BoardID)
	if err != nil {
		return nil, err
	}
	to := columnOfKind(cols, kind)
	if to == nil {
		return nil, nil
	}
	card, from, moved, err := s.db.MoveCard(ctx, c.ID, to.ID, hero.ID, hero.Surface, note, nil)
	if err != nil {
		return nil, err
	}
	p, err := s.db.ProjectByID(ctx, c.ProjectID)
	if err != nil {
		return nil, err
	}
	if moved {
		s.log.Info("card moved", "card", card.ID, "to", to.Name, "why", note)
		s.projectMoved(ctx, card, to)
	}
	return &Move{Card: card, Project: p, From: from, To: to, Moved: moved}, nil
}

// IssueCard makes the card of an issue that asked hero for work (the
// trigger label): a new card in the board's doing column linked to the
// issue, or the issue's existing card moved there, past the WIP limit either
// way (the board cannot refuse work asked for on GitHub). Either starts its run.
// The actor needs the member role, as for any card.
func (s *Service) IssueCard(ctx context.Context, a Actor, projectID int64, number int, title, issueURL string) (*store.KanbanCard, *Move, error) {
	p, err := s.db.ProjectByID(ctx, projectID)
	if err != nil {
		return nil, nil, err
	}
	b, cols, err := s.boardOf(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	col := columnOfKind(cols, store.KindDoing)
	if col == nil {
		return nil, nil, refuse(Invalid, "the board of %s has no column of kind doing", p.Name)
	}
	existing := func(c *store.KanbanCard) (*store.KanbanCard, *Move, error) {
		// Into doing regardless of its WIP limit, as a new card of the
		// issue goes: the work was asked for where the board cannot
		// refuse it, and which delivery made the card must not decide.
		m, err := s.move(ctx, a, "", c.ID, col.Slug, fmt.Sprintf("trigger label on issue #%d", number), nil)
		return c, m, err
	}
	c, err := s.db.CardByIssue(ctx, projectID, number)
	if err == nil {
		return existing(c)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, nil, err
	}
	if err := authorize(ctx, a, p, store.RoleMember, "adding a card"); err != nil {
		return nil, nil, err
	}
	if len(title) > maxTitle {
		title = title[:maxTitle]
	}
	c = &store.KanbanCard{ProjectID: p.ID, BoardID: b.ID, ColumnID: col.ID, Title: title, Creator: a.ID, IssueNumber: number, IssueURL: issueURL}
	// Into doing regardless of its WIP limit: the work was asked for where
	// the board cannot refuse it.
	if err := s.db.CreateCard(ctx, c, a.ID, a.Surface, fmt.Sprintf("from issue #%d", number), nil); errors.Is(err, store.ErrIssueHasCard) {
		// Another delivery about the issue (it was opened, or labelled
		// twice) made its card meanwhile: that card goes to work.
		if c, err = s.db.CardByIssue(ctx, projectID, number); err != nil {
			return nil, nil, err
		}
		return existing(c)
	} else if err != nil {
		return nil, nil, err
	}
	s.projectCreated(ctx, p, c, col)
	m := &Move{Card: c, Project: p, To: col, Moved: true}
	if s.cfg.Runs != nil {
		m.Run, m.RunErr = s.startRun(ctx, a, m)
	}
	return c, m, nil
}

// IssueOpened makes a newly opened issue a card in the board's first
// column (Backlog) when its project says every issue becomes a card
// (store.Project.IssuesBecomeCards); the trigger label is then not
// needed. The surface decides who is trusted to open one (GitHub: the
// repository's owners, members and collaborators); a is its author, the
// card's creator. It returns nil, nil when the project does not want
// cards of every issue or the issue already has one (the trigger label
// made it, before or at the same moment).
func (s *Service) IssueOpened(ctx context.Context, a Actor, projectID int64, number int, title, issueURL string) (*store.KanbanCard, *store.KanbanColumn, error) {
	p, err := s.db.ProjectByID(ctx, projectID)
	if err != nil {
		return nil, nil, err
	}
	if !p.IssuesBecomeCards {
		return nil, nil, nil
	}
	if _, err := s.db.CardByIssue(ctx, projectID, number); err == nil {
		return nil, nil, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, nil, err
	}
	b, cols, err := s.boardOf(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	if len(cols) == 0 {
		return nil, nil, refuse(Invalid, "the board of %s has no columns", p.Name)
	}
	col := &cols[0]
	if len(title) > maxTitle {
		title = title[:maxTitle]
	}
	c := &store.KanbanCard{ProjectID: p.ID, BoardID: b.ID, ColumnID: col.ID, Title: title, Creator: a.ID, IssueNumber: number, IssueURL: issueURL}
	// Into the first column regardless of its WIP limit: the issue is
	// open whether or not the board has room for it.
	err = s.db.CreateCard(ctx, c, a.ID, a.Surface, fmt.Sprintf("issue #%d opened (every issue becomes a card)", number), nil)
	if errors.Is(err, store.ErrIssueHasCard) {
		return nil, nil, nil // the trigger label made it meanwhile
	}
	if err != nil {
		return nil, nil, err
	}
	s.projectCreated(ctx, p, c, col)
	return c, col, nil
}

// RestoreIssue shows the card of an issue in its column again wherever
// the card lives, after a change made on the issue was refused (a hero:
// label set by someone who may not move the card goes back to the
// card's column). It returns the card and its column, or nil, nil when
// the issue has no card.
func (s *Service) RestoreIssue(ctx context.Context, projectID int64, number int) (*store.KanbanCard, *store.KanbanColumn, error) {
	c, err := s.db.CardByIssue(ctx, projectID, number)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	cols, err := s.db.BoardColumns(ctx, c.BoardID)
	if err != nil {
		return nil, nil, err
	}
	for i := range cols {
		if cols[i].ID == c.ColumnID {
			s.projectMoved(ctx, c, &cols[i])
			return c, &cols[i], nil
		}
	}
	return c, nil, nil
}
