package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

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
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, clipMrkdwn(line, maxSectionText), false, false), nil, nil),
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
		th, err := a.postCard(ctx, b.ChannelID, c, col, cols, false)
		if err != nil {
			errs = append(errs, err)
		} else if th != nil {
			links.Threads = append(links.Threads, *th)
		}
	}
	return links, errors.Join(errs...)
}

// postCard posts a card in a bound channel ("T/C") once (kanban.PostOnce:
// a claim per card and channel; the catch-up takes over claims of
// replicas that died mid-post and adopts a post whose reply was lost,
// found by its metadata). nil when it was posted before, or is being
// posted by another replica.
func (a *Adapter) postCard(ctx context.Context, channelID string, c *store.KanbanCard, col *store.KanbanColumn, cols []store.KanbanColumn, catchUp bool) (*store.KanbanCardThread, error) {
	return kanban.PostOnce(ctx, a.db, kanban.CardPost{
		Kind: slackCardClaim, Key: c.ID + "@" + channelID, Owner: a.cfg.Owner, CatchUp: catchUp,
		Shown: func(ctx context.Context) (bool, error) { return a.cardShownIn(ctx, c.ID, channelID) },
		Find: func(ctx context.Context) (*store.KanbanCardThread, error) {
			return a.findCardMessage(ctx, channelID, c)
		},
		Post: func(ctx context.Context) (*store.KanbanCardThread, error) {
			return a.postCardMessage(ctx, channelID, c, col, cols)
		},
	})
}

// slackCardClaim is the kind of the once-claims of card posts.
const slackCardClaim = "slack-card"

// cardMetadataType is the event type of the metadata hero attaches to a
// card's message, so that the message can be found again by card id.
const cardMetadataType = "hero_card"

// cardShownIn reports whether the card has a recorded message in the
// channel ("T/C").
func (a *Adapter) cardShownIn(ctx context.Context, cardID, channelID string) (bool, error) {
	ts, err := a.db.CardThreads(ctx, cardID)
	if err != nil {
		return false, err
	}
	for _, t := range ts {
		if t.Surface == Surface && strings.HasPrefix(t.ThreadRef, channelID+"/") {
			return true, nil
		}
	}
	return false, nil
}

// maxHistoryPages bounds the search for an earlier card post (200
// messages a page, newest first, back to the card's creation).
const maxHistoryPages = 10

// findCardMessage looks in the channel's history since the card was
// created for a message of hero's carrying the card's metadata: a post
// whose outcome hero never learned. nil when there is none.
func (a *Adapter) findCardMessage(ctx context.Context, channelID string, c *store.KanbanCard) (*store.KanbanCardThread, error) {
	team, ch, _ := strings.Cut(channelID, "/")
	cl, err := a.client(ctx, team)
	if err != nil {
		return nil, err
	}
	p := &slack.GetConversationHistoryParameters{
		ChannelID: ch, Limit: 200, IncludeAllMetadata: true, Inclusive: true,
		Oldest: fmt.Sprintf("%d.000000", c.CreatedAt.Add(-time.Minute).Unix()),
	}
	for range maxHistoryPages {
		h, err := cl.api.GetConversationHistoryContext(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("look for an earlier post of card %s in %s: %w", c.ID, channelID, err)
		}
		for _, m := range h.Messages {
			if m.Metadata.EventType != cardMetadataType || fmt.Sprint(m.Metadata.EventPayload["card_id"]) != c.ID {
				continue
			}
			if cl.botUserID != "" && m.User != cl.botUserID {
				continue
			}
			return &store.KanbanCardThread{Surface: Surface, ThreadRef: threadRef(team, ch, m.Timestamp)}, nil
		}
		if !h.HasMore || h.ResponseMetaData.NextCursor == "" {
			return nil, nil
		}
		p.Cursor = h.ResponseMetaData.NextCursor
	}
	return nil, nil
}

func (a *Adapter) postCardMessage(ctx context.Context, channelID string, c *store.KanbanCard, col *store.KanbanColumn, cols []store.KanbanColumn) (*store.KanbanCardThread, error) {
	team, ch, _ := strings.Cut(channelID, "/")
	cl, err := a.client(ctx, team)
	if err != nil {
		return nil, err
	}
	meta := slack.MsgOptionMetadata(slack.SlackMetadata{EventType: cardMetadataType, EventPayload: map[string]any{"card_id": c.ID}})
	_, ts, err := cl.api.PostMessageContext(ctx, ch, slack.MsgOptionText(cardText(c, col), false), slack.MsgOptionBlocks(cardBlocks(c, col, cols)...), meta, noUnfurl())
	if err != nil {
		return nil, fmt.Errorf("post card %s in %s: %w", c.ID, channelID, err)
	}
	return &store.KanbanCardThread{Surface: Surface, ThreadRef: threadRef(team, ch, ts)}, nil
}

// PostMissingCards posts the cards created since then that no bound
// channel shows yet: cards added where Slack is not reachable (hero card
// add on the command line) appear within one period of hero serve.
func (a *Adapter) PostMissingCards(ctx context.Context, since time.Time) error {
	bs, err := a.db.ListBindings(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range bs {
		if b.Surface != Surface {
			continue
		}
		err := kanban.PostMissing(ctx, a.db, b.ProjectID, since,
			func(*store.KanbanCard) string { return b.ChannelID },
			func(ctx context.Context, channel string, c *store.KanbanCard, col *store.KanbanColumn, cols []store.KanbanColumn) (*store.KanbanCardThread, error) {
				return a.postCard(ctx, channel, c, col, cols, true)
			})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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

// maxHomeBlocks is Slack's limit of blocks in a Home tab view.
const maxHomeBlocks = 100

// publishHome shows the person's boards on hero's App Home tab: for each
// of their projects, each column with its cards. Past Slack's 100 blocks
// the rest is summarised as counts, with the web board for the whole.
func (a *Adapter) publishHome(ctx context.Context, team, user string) error {
	if a.cfg.Board == nil || user == "" {
		return nil
	}
	w, err := a.who(ctx, team, user, "")
	if err != nil {
		return err
	}
	blocks := homeBlocks(ctx, a, w)
	cl, err := a.client(ctx, team)
	if err != nil {
		return err
	}
	_, err = cl.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user,
		View: slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}})
	if err != nil {
		return fmt.Errorf("publish the App Home of %s: %w", w.id, err)
	}
	return nil
}

// maxSectionText is Slack's limit on a section's text, in characters:
// past it Slack refuses the whole message or view.
const maxSectionText = 3000

// fitSection is a section's mrkdwn: head, then lines one a line, then
// "… and N more" for the more lines not offered. Lines that would push
// the text past maxSectionText are left out and counted in that summary
// instead (escaped titles can be five times as long as typed).
func fitSection(head string, lines []string, more int) string {
	summary := func(n int) string { return fmt.Sprintf("\n_… and %d more_", n) }
	size := utf8.RuneCountInString
	body := head
	for i, l := range lines {
		next := body + "\n" + l
		need := size(next)
		if rest := len(lines) - i - 1 + more; rest > 0 {
			need += size(summary(rest))
		}
		if need > maxSectionText {
			return clipMrkdwn(body+summary(len(lines)-i+more), maxSectionText)
		}
		body = next
	}
	if more > 0 {
		body += summary(more)
	}
	return clipMrkdwn(body, maxSectionText)
}

// clipMrkdwn cuts escaped mrkdwn to at most limit characters, ending in
// "…": on a rune boundary, and before an escape (&amp;) it would cut in
// half, which Slack would show as a stray "&am".
func clipMrkdwn(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)[:limit-1]
	for i := len(r) - 1; i >= 0 && i >= len(r)-len("&amp;"); i-- {
		if r[i] == ';' {
			break
		}
		if r[i] == '&' {
			r = r[:i]
			break
		}
	}
	return string(r) + "…"
}

func homeBlocks(ctx context.Context, a *Adapter, w who) []slack.Block {
	text := func(s string) slack.Block {
		return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, s, false, false), nil, nil)
	}
	if w.hero == nil {
		return []slack.Block{text("Link your Slack account to hero (*Link a chat account* on the settings page, then `/hero link CODE`) to see your projects' boards here.")}
	}
	var projects []store.Project
	if w.hero.IsAdmin {
		projects, _ = a.db.ListProjects(ctx)
	} else if prs, err := a.db.ProjectsOfUser(ctx, w.hero.ID); err == nil {
		for _, pr := range prs {
			projects = append(projects, pr.Project)
		}
	}
	if len(projects) == 0 {
		return []slack.Block{text("You are not a member of any hero project yet.")}
	}
	actor := kanban.Actor{ID: w.id, Surface: Surface, Role: func(ctx context.Context, projectID int64) (store.Role, error) {
		return a.eng.Role(ctx, projectID, w.principal())
	}}
	var out []slack.Block
	hidden := 0
	for _, p := range projects {
		b, err := a.cfg.Board.Board(ctx, actor, p.Name)
		if err != nil {
			continue
		}
		if len(out)+2 > maxHomeBlocks-1 {
			for _, col := range b.Columns {
				hidden += len(col.Cards)
			}
			continue
		}
		out = append(out, slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, p.Name, false, false)))
		for _, col := range b.Columns {
			if len(out) >= maxHomeBlocks-1 {
				hidden += len(col.Cards)
				continue
			}
			var lines []string
			for _, c := range col.Cards[:min(len(col.Cards), 10)] {
				lines = append(lines, fmt.Sprintf("• %s `%s`", mrkdwn(c.Title), c.ID))
			}
			out = append(out, text(fitSection(fmt.Sprintf("*%s* (%d)", mrkdwn(col.Name), len(col.Cards)), lines, len(col.Cards)-len(lines))))
		}
	}
	if hidden > 0 {
		out = append(out, text(fmt.Sprintf("%d more cards do not fit here; the settings page shows every board.", hidden)))
	}
	return out
}
