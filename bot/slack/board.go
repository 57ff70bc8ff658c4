package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// The board in Slack: every card of a project is a root message in each
// channel bound to the project, showing its column and assignee with a
// Move ▸ select, a Start button and a link to its issue; the message's
// thread is the card's discussion, where its runs report. A move made
// anywhere edits the message. The buttons go through the board's rules
// (kanban), as every surface does.

// Board is what the Slack surface asks of the board; *kanban.Service is
// one.
type Board interface {
	MoveCard(ctx context.Context, a kanban.Actor, project, id, column string) (*kanban.Move, error)
}

// Action ids of a card message's controls.
const (
	actionCardMove  = "hero_card_move"
	actionCardStart = "hero_card_start"
)

var _ kanban.Projection = (*Adapter)(nil)

// cardBlocks renders a card's root message.
func cardBlocks(c *store.KanbanCard, col *store.KanbanColumn, cols []store.KanbanColumn) []slack.Block {
	line := fmt.Sprintf("*%s*\n%s · card `%s`", mrkdwn(c.Title), mrkdwn(col.Name), c.ID)
	if c.Assignee != "" {
		line += " · assigned to " + mrkdwn(c.Assignee)
	}
	var opts []*slack.OptionBlockObject
	var initial *slack.OptionBlockObject
	for _, k := range cols {
		o := slack.NewOptionBlockObject(c.ID+" "+k.Slug, slack.NewTextBlockObject(slack.PlainTextType, k.Name, false, false), nil)
		opts = append(opts, o)
		if k.ID == col.ID {
			initial = o
		}
	}
	move := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, slack.NewTextBlockObject(slack.PlainTextType, "Move ▸", false, false), actionCardMove, opts...)
	move.InitialOption = initial
	elems := []slack.BlockElement{move}
	if col.Kind != store.KindDoing {
		elems = append(elems, slack.NewButtonBlockElement(actionCardStart, c.ID, slack.NewTextBlockObject(slack.PlainTextType, "Start", false, false)).WithStyle(slack.StylePrimary))
	}
	if c.IssueURL != "" {
		b := slack.NewButtonBlockElement("hero_card_issue", c.ID, slack.NewTextBlockObject(slack.PlainTextType, "Open issue", false, false))
		b.URL = c.IssueURL
		elems = append(elems, b)
	}
	return []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, line, false, false), nil, nil),
		slack.NewActionBlock("card_"+c.ID, elems...),
	}
}

func cardText(c *store.KanbanCard, col *store.KanbanColumn) string {
	return fmt.Sprintf("%s (%s)", c.Title, col.Name)
}

// CardCreated posts the card in every Slack channel bound to its project;
// each message's thread becomes a place the card lives.
func (a *Adapter) CardCreated(ctx context.Context, p *store.Project, c *store.KanbanCard, col *store.KanbanColumn) (kanban.Links, error) {
	bs, err := a.db.ListBindings(ctx)
	if err != nil {
		return kanban.Links{}, err
	}
	cols, err := a.db.BoardColumns(ctx, c.BoardID)
	if err != nil {
		return kanban.Links{}, err
	}
	var links kanban.Links
	var errs []error
	for _, b := range bs {
		if b.Surface != Surface || b.ProjectID != p.ID {
			continue
		}
		team, ch, _ := strings.Cut(b.ChannelID, "/")
		cl, err := a.client(ctx, team)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, ts, err := cl.api.PostMessageContext(ctx, ch, slack.MsgOptionText(cardText(c, col), false), slack.MsgOptionBlocks(cardBlocks(c, col, cols)...), noUnfurl())
		if err != nil {
			errs = append(errs, fmt.Errorf("post card %s in %s: %w", c.ID, b.ChannelID, err))
			continue
		}
		links.Threads = append(links.Threads, store.KanbanCardThread{Surface: Surface, ThreadRef: threadRef(team, ch, ts)})
	}
	return links, errors.Join(errs...)
}

// CardMoved edits the card's messages to show its new column.
func (a *Adapter) CardMoved(ctx context.Context, p *store.Project, c *store.KanbanCard, to *store.KanbanColumn) error {
	ts, err := a.db.CardThreads(ctx, c.ID)
	if err != nil {
		return err
	}
	cols, err := a.db.BoardColumns(ctx, c.BoardID)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range ts {
		if t.Surface != Surface {
			continue
		}
		team, ch, msg, err := parseRef(t.ThreadRef)
		if err != nil {
			continue
		}
		cl, err := a.client(ctx, team)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, _, _, err := cl.api.UpdateMessageContext(ctx, ch, msg, slack.MsgOptionText(cardText(c, to), false), slack.MsgOptionBlocks(cardBlocks(c, to, cols)...)); err != nil {
			errs = append(errs, fmt.Errorf("update card %s in %s: %w", c.ID, t.ThreadRef, err))
		}
	}
	return errors.Join(errs...)
}

// onCardAction handles a card message's Move select and Start button.
// The person acts with their role in the card's project (through
// engine.Role, as every surface); a refusal is told to them alone.
func (a *Adapter) onCardAction(ctx context.Context, w who, act *slack.BlockAction) error {
	if a.cfg.Board == nil {
		return nil
	}
	var id, column string
	switch act.ActionID {
	case actionCardMove:
		id, column, _ = strings.Cut(act.SelectedOption.Value, " ")
	case actionCardStart:
		id = act.Value
		c, err := a.db.Card(ctx, id)
		if err != nil {
			a.ephemeral(w, fmt.Sprintf("There is no card `%s`.", id))
			return nil
		}
		cols, err := a.db.BoardColumns(ctx, c.BoardID)
		if err != nil {
			return err
		}
		for _, k := range cols {
			if k.Kind == store.KindDoing {
				column = k.Slug
				break
			}
		}
	}
	if id == "" || column == "" {
		return nil
	}
	actor := kanban.Actor{ID: w.id, Surface: Surface, Role: func(ctx context.Context, projectID int64) (store.Role, error) {
		return a.eng.Role(ctx, projectID, w.principal())
	}}
	m, err := a.cfg.Board.MoveCard(ctx, actor, "", id, column)
	if kanban.KindOf(err) != 0 {
		a.ephemeral(w, err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	if m.RunErr != nil {
		a.ephemeral(w, fmt.Sprintf("Card `%s` is in %s, but its run did not start: %v", m.Card.ID, m.To.Name, m.RunErr))
	}
	return nil
}
