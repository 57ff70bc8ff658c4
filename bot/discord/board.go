package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// The board on Discord: a board linked to a forum channel (hero board
// link --discord-forum ID) shows each card as a forum post — a thread in
// the forum with the card as its first message — whose one status tag is
// the card's column. The forum gets a tag per column (Discord allows 20
// per forum). A person changing a post's tag moves the card through the
// board's rules (kanban), as on every surface; a change the rules refuse
// is put back and the person told why. hero's own tag changes come back
// as thread updates too: a post that shows the card's column changes
// nothing, and an update the audit log attributes to hero is an echo.
// The post is also one of the places the card lives: the card's runs
// report there, and replies mentioning hero steer the latest one.

var _ kanban.Projection = (*Adapter)(nil)

// Discord's limits on forums: tags per forum, tags per post, characters
// in a tag's name and a post's title.
const (
	maxForumTags = 20
	maxPostTags  = 5
	maxTagName   = 20
	maxPostTitle = 100
)

// kindThreadUpdate is a gateway THREAD_UPDATE of a card's post, as JSON.
const kindThreadUpdate = "thread_update"

// tagName is the forum tag that shows a column.
func tagName(col *store.KanbanColumn) string {
	r := []rune(strings.TrimSpace(col.Name))
	if len(r) > maxTagName {
		r = r[:maxTagName]
	}
	return string(r)
}

// forumOf is the forum a board is linked to ("" when none).
func (a *Adapter) forumOf(ctx context.Context, boardID int64) (string, error) {
	b, err := a.db.BoardByID(ctx, boardID)
	if err != nil {
		return "", fmt.Errorf("board %d: %w", boardID, err)
	}
	return b.DiscordForum, nil
}

// statusTags makes sure the forum has a tag for each column (named like
// it, added through the channel's available_tags) and returns column id
// → tag id.
func (a *Adapter) statusTags(ctx context.Context, forum string, cols []store.KanbanColumn) (map[int64]string, error) {
	ch, err := a.api.Channel(forum, discordgo.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read discord forum %s: %w", forum, err)
	}
	if ch.Type != discordgo.ChannelTypeGuildForum {
		return nil, fmt.Errorf("discord channel %s is not a forum (type %d): link the board to a forum channel", forum, ch.Type)
	}
	find := func(tags []discordgo.ForumTag) (map[int64]string, []store.KanbanColumn) {
		out := map[int64]string{}
		var missing []store.KanbanColumn
		for _, c := range cols {
			i := slices.IndexFunc(tags, func(t discordgo.ForumTag) bool { return strings.EqualFold(t.Name, tagName(&c)) })
			if i < 0 {
				missing = append(missing, c)
				continue
			}
			out[c.ID] = tags[i].ID
		}
		return out, missing
	}
	ids, missing := find(ch.AvailableTags)
	if len(missing) == 0 {
		return ids, nil
	}
	if n := len(ch.AvailableTags) + len(missing); n > maxForumTags {
		return nil, fmt.Errorf("discord forum %s has %d tags and the board needs %d more for its columns; Discord allows %d: remove some of the forum's tags", forum, len(ch.AvailableTags), len(missing), maxForumTags)
	}
	tags := append([]discordgo.ForumTag(nil), ch.AvailableTags...)
	for _, c := range missing {
		tags = append(tags, discordgo.ForumTag{Name: tagName(&c)})
	}
	ch, err = a.api.ChannelEditComplex(forum, &discordgo.ChannelEdit{AvailableTags: &tags}, discordgo.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("add the board's column tags to discord forum %s: %w", forum, err)
	}
	if ids, missing = find(ch.AvailableTags); len(missing) > 0 {
		return nil, fmt.Errorf("discord forum %s did not keep the tag %q", forum, tagName(&missing[0]))
	}
	return ids, nil
}

// cardPost is a card's first message in its post.
func cardPost(c *store.KanbanCard) string {
	s := fmt.Sprintf("**%s**\ncard `%s`", escape(c.Title), c.ID)
	if strings.TrimSpace(c.Body) != "" {
		s += "\n\n" + escape(c.Body)
	}
	if c.IssueURL != "" {
		s += "\nIssue: " + c.IssueURL
	}
	return s + "\n\nThe post's tag is the card's column: change it to move the card. Mention hero here to steer the card's run."
}

// CardCreated posts a new card in its board's forum, tagged with its
// column; the post becomes a place the card lives.
func (a *Adapter) CardCreated(ctx context.Context, p *store.Project, c *store.KanbanCard, col *store.KanbanColumn) (kanban.Links, error) {
	forum, err := a.forumOf(ctx, c.BoardID)
	if err != nil || forum == "" {
		return kanban.Links{}, err
	}
	cols, err := a.db.BoardColumns(ctx, c.BoardID)
	if err != nil {
		return kanban.Links{}, err
	}
	th, err := a.postCard(ctx, forum, c, col, cols, false)
	if err != nil || th == nil {
		return kanban.Links{}, err
	}
	return kanban.Links{Threads: []store.KanbanCardThread{*th}}, nil
}

// postCard posts a card in a forum once (kanban.PostOnce: a claim per
// card and forum; the catch-up takes over claims of replicas that died
// mid-post and adopts a post whose reply was lost, found among the
// forum's active threads). nil when it was posted before, or is being
// posted by another replica. cols are the card's board's columns.
func (a *Adapter) postCard(ctx context.Context, forum string, c *store.KanbanCard, col *store.KanbanColumn, cols []store.KanbanColumn, catchUp bool) (*store.KanbanCardThread, error) {
	return kanban.PostOnce(ctx, a.db, kanban.CardPost{
		Kind: discordCardClaim, Key: c.ID + "@" + forum, Owner: a.cfg.Owner, CatchUp: catchUp,
		Shown: func(ctx context.Context) (bool, error) { return a.hasPost(ctx, c.ID) },
		Find:  func(ctx context.Context) (*store.KanbanCardThread, error) { return a.findCardPost(ctx, forum, c) },
		Post: func(ctx context.Context) (*store.KanbanCardThread, error) {
			// The forum is read (and its tags made) only for a post
			// being made: the catch-up offers every card of the last
			// day each minute, nearly all of them posted long ago.
			tags, err := a.statusTags(ctx, forum, cols)
			if err != nil {
				return nil, err
			}
			th, err := a.api.ForumThreadStartComplex(forum,
				&discordgo.ThreadStart{Name: bot.OneLine(c.Title, maxPostTitle), AutoArchiveDuration: 10080, AppliedTags: []string{tags[col.ID]}},
				&discordgo.MessageSend{Content: clip(cardPost(c)), AllowedMentions: noMentions()}, discordgo.WithContext(ctx))
			if err != nil {
				return nil, fmt.Errorf("post card %s in discord forum %s: %w", c.ID, forum, err)
			}
			return &store.KanbanCardThread{Surface: Surface, ThreadRef: th.ID}, nil
		},
	})
}

// discordCardClaim is the kind of the once-claims of card posts.
const discordCardClaim = "discord-card"

// hasPost reports whether the card has a recorded Discord post (a card
// lives in one forum, its board's).
func (a *Adapter) hasPost(ctx context.Context, cardID string) (bool, error) {
	ts, err := a.db.CardThreads(ctx, cardID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(ts, func(t store.KanbanCardThread) bool { return t.Surface == Surface }), nil
}

// findCardPost looks among the guild's active threads for a post of
// hero's in the forum named as the card whose first message carries the
// card's id (cardPost's "card `ID`"): a post whose outcome hero never
// learned. nil when there is none.
func (a *Adapter) findCardPost(ctx context.Context, forum string, c *store.KanbanCard) (*store.KanbanCardThread, error) {
	ch, err := a.api.Channel(forum, discordgo.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("look for an earlier post of card %s: read discord forum %s: %w", c.ID, forum, err)
	}
	me, err := a.botUser(ctx)
	if err != nil {
		return nil, err
	}
	list, err := a.api.GuildThreadsActive(ch.GuildID, discordgo.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("look for an earlier post of card %s in discord forum %s: %w", c.ID, forum, err)
	}
	name, marker := bot.OneLine(c.Title, maxPostTitle), fmt.Sprintf("card `%s`", c.ID)
	for _, th := range list.Threads {
		if th.ParentID != forum || th.OwnerID != me || th.Name != name {
			continue
		}
		// A forum post's first message has the post's id.
		m, err := a.api.ChannelMessage(th.ID, th.ID, discordgo.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("look for an earlier post of card %s: read post %s: %w", c.ID, th.ID, err)
		}
		if strings.Contains(m.Content, marker) {
			return &store.KanbanCardThread{Surface: Surface, ThreadRef: th.ID}, nil
		}
	}
	return nil, nil
}

// PostMissingCards posts the cards of boards linked to a forum that were
// created since then and have no post there yet: cards added where
// Discord is not reachable (hero card add on the command line), or
// before the board was linked, appear within one period of hero serve.
func (a *Adapter) PostMissingCards(ctx context.Context, since time.Time) error {
	ps, err := a.db.ListProjects(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range ps {
		boards, err := a.db.ProjectBoards(ctx, p.ID)
		if err != nil {
			return err
		}
		forums := map[int64]string{}
		for _, b := range boards {
			if b.DiscordForum != "" {
				forums[b.ID] = b.DiscordForum
			}
		}
		if len(forums) == 0 {
			continue
		}
		err = kanban.PostMissing(ctx, a.db, p.ID, since,
			func(c *store.KanbanCard) string { return forums[c.BoardID] },
			func(ctx context.Context, forum string, c *store.KanbanCard, col *store.KanbanColumn, cols []store.KanbanColumn) (*store.KanbanCardThread, error) {
				return a.postCard(ctx, forum, c, col, cols, true)
			})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CardMoved sets the status tag of the card's posts to its column,
// keeping any other tag people gave them.
func (a *Adapter) CardMoved(ctx context.Context, p *store.Project, c *store.KanbanCard, to *store.KanbanColumn) error {
	ts, err := a.db.CardThreads(ctx, c.ID)
	if err != nil {
		return err
	}
	var posts []string
	for _, t := range ts {
		if t.Surface == Surface {
			posts = append(posts, t.ThreadRef)
		}
	}
	if len(posts) == 0 {
		return nil
	}
	forum, err := a.forumOf(ctx, c.BoardID)
	if err != nil || forum == "" {
		return err
	}
	cols, err := a.db.BoardColumns(ctx, c.BoardID)
	if err != nil {
		return err
	}
	tags, err := a.statusTags(ctx, forum, cols)
	if err != nil {
		return err
	}
	var errs []error
	for _, post := range posts {
		if err := a.tagPost(ctx, forum, post, tags, to.ID); err != nil {
			errs = append(errs, fmt.Errorf("tag card %s's post %s: %w", c.ID, post, err))
		}
	}
	return errors.Join(errs...)
}

// tagPost gives a post exactly one status tag, column's, and keeps its
// other tags; it writes only when that changes something.
func (a *Adapter) tagPost(ctx context.Context, forum, post string, status map[int64]string, column int64) error {
	ch, err := a.api.Channel(post, discordgo.WithContext(ctx))
	if err != nil {
		return err
	}
	if ch.ParentID != forum {
		return nil // a thread of the card elsewhere: no tags there
	}
	isStatus := map[string]bool{}
	for _, id := range status {
		isStatus[id] = true
	}
	want := []string{status[column]}
	for _, t := range ch.AppliedTags {
		if !isStatus[t] && len(want) < maxPostTags {
			want = append(want, t)
		}
	}
	if sameSet(want, ch.AppliedTags) {
		return nil
	}
	edit := &discordgo.ChannelEdit{AppliedTags: &want}
	if ch.ThreadMetadata != nil && ch.ThreadMetadata.Archived {
		// An archived post takes no other change; the card moved, so
		// its post is live again.
		live := false
		edit.Archived = &live
	}
	_, err = a.api.ChannelEditComplex(post, edit, discordgo.WithContext(ctx))
	return err
}

func sameSet(x, y []string) bool {
	if len(x) != len(y) {
		return false
	}
	for _, v := range x {
		if !slices.Contains(y, v) {
			return false
		}
	}
	return true
}

// onGatewayThreadUpdate persists the update of a card's post; updates of
// other threads are dropped here. THREAD_UPDATE has no id, and the same
// tags may come back legitimately (a tag put back, then set again), so
// each update is stored under the moment it came in; handling one is
// idempotent (it compares the post with the card), so a replayed update
// changes nothing twice.
func (a *Adapter) onGatewayThreadUpdate(ch *discordgo.Channel) {
	if ch == nil || ch.ID == "" || ch.ParentID == "" || ch.AppliedTags == nil {
		return
	}
	ctx, cancel := context.WithTimeout(a.lifetime(), 30*time.Second)
	defer cancel()
	if _, err := a.db.CardByThread(ctx, Surface, ch.ID); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			a.log.Warn("card of a discord thread", "thread", ch.ID, "err", err)
		}
		return
	}
	body, err := json.Marshal(ch)
	if err != nil {
		a.log.Error("encode discord thread update", "thread", ch.ID, "err", err)
		return
	}
	tags := slices.Clone(ch.AppliedTags)
	slices.Sort(tags)
	id := fmt.Sprintf("tu:%s:%s:%d", ch.ID, strings.Join(tags, ","), time.Now().UnixNano())
	if _, err := a.inbox.Write(ctx, Surface, id, kindThreadUpdate, body); err != nil {
		a.log.Error("persist discord thread update", "thread", ch.ID, "err", err)
		return
	}
	a.worker.Kick()
}

// onThreadUpdate moves a card whose post's status tag a person changed.
func (a *Adapter) onThreadUpdate(ctx context.Context, ch *discordgo.Channel) error {
	if a.cfg.Board == nil {
		return nil
	}
	card, err := a.db.CardByThread(ctx, Surface, ch.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	forum, err := a.forumOf(ctx, card.BoardID)
	if err != nil || forum == "" || forum != ch.ParentID {
		return err
	}
	cols, err := a.db.BoardColumns(ctx, card.BoardID)
	if err != nil {
		return err
	}
	status, err := a.statusTags(ctx, forum, cols)
	if err != nil {
		return err
	}
	colOf := map[string]*store.KanbanColumn{}
	var current *store.KanbanColumn
	for i := range cols {
		colOf[status[cols[i].ID]] = &cols[i]
		if cols[i].ID == card.ColumnID {
			current = &cols[i]
		}
	}
	if current == nil {
		return nil
	}
	var applied []*store.KanbanColumn
	for _, t := range ch.AppliedTags {
		if c := colOf[t]; c != nil {
			applied = append(applied, c)
		}
	}
	if len(applied) == 1 && applied[0].ID == current.ID {
		return nil // the post shows the card's column: hero's own change, or nothing to do
	}
	p, err := a.db.ProjectByID(ctx, card.ProjectID)
	if err != nil {
		return err
	}
	who, err := a.tagChanger(ctx, ch.GuildID, ch.ID, ch.AppliedTags)
	if err != nil {
		return err
	}
	botID, err := a.botUser(ctx)
	if err != nil {
		return err
	}
	putBack := func(why string) error {
		if err := a.tagPost(ctx, forum, ch.ID, status, current.ID); err != nil {
			return fmt.Errorf("put card %s's tag back: %w", card.ID, err)
		}
		if why == "" {
			return nil
		}
		// hero's own words to the person who changed the tag: they are
		// notified (and nobody else).
		notify := &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}, Users: []string{}}
		if who != "" && who != botID {
			notify.Users = []string{who}
		}
		_, err := a.api.ChannelMessageSendComplex(ch.ID, &discordgo.MessageSend{Content: clip(why + fmt.Sprintf(" The card stays in **%s**.", escape(current.Name))),
			AllowedMentions: notify}, discordgo.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("say why card %s's tag was put back: %w", card.ID, err)
		}
		return nil
	}
	switch {
	case who == botID:
		// An older change of hero's own, overtaken since: the post shows
		// the database's column again.
		return putBack("")
	case who == "":
		return putBack("hero could not tell who changed this post's tags (hero needs the View Audit Log permission to know), so it moved nothing.")
	case len(applied) != 1:
		return putBack(fmt.Sprintf("<@%s>: a card's post carries exactly one column tag (one of %s).", who, columnNames(cols)))
	}
	to := applied[0]
	prin := engine.Principal{ID: identity(who)}
	u, err := a.HeroUser(ctx, bot.Actor{Surface: Surface, ID: who})
	if err != nil {
		return err
	}
	if u == nil {
		return putBack(fmt.Sprintf("<@%s>: hero does not know your Discord account, so it cannot move cards for you: link it on hero's settings page (Link a chat account), then send `/hero link CODE` to hero privately.", who))
	}
	prin.UserID = u.ID
	actor := kanban.Actor{ID: prin.ID, Surface: Surface, Role: func(ctx context.Context, projectID int64) (store.Role, error) {
		return a.eng.Role(ctx, projectID, prin)
	}}
	m, err := a.cfg.Board.MoveCard(ctx, actor, p.Name, card.ID, to.Name)
	if kanban.KindOf(err) != 0 {
		return putBack(fmt.Sprintf("<@%s>: %s.", who, escape(err.Error())))
	}
	if err != nil {
		return err
	}
	if m.RunErr != nil {
		_, err := a.send(ctx, ch.ID, fmt.Sprintf("The card is in **%s**, but its run did not start: %s", escape(m.To.Name), escape(m.RunErr.Error())), nil)
		return err
	}
	return nil
}

func columnNames(cols []store.KanbanColumn) string {
	names := make([]string, len(cols))
	for i := range cols {
		names[i] = "**" + escape(tagName(&cols[i])) + "**"
	}
	return strings.Join(names, ", ")
}

// tagChanger is who set a thread's tags to tags, from the guild's audit
// log (a thread update does not say): the newest THREAD_UPDATE entry for
// the thread whose new applied tags are these. "" when the log does not
// have it (it lags a moment behind, so it is asked a few times) or hero
// may not read it.
func (a *Adapter) tagChanger(ctx context.Context, guild, thread string, tags []string) (string, error) {
	if guild == "" {
		return "", nil
	}
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		log, err := a.api.GuildAuditLog(guild, "", "", int(discordgo.AuditLogActionThreadUpdate), 50, discordgo.WithContext(ctx))
		if err != nil {
			a.log.Warn("read the discord audit log", "guild", guild, "err", err)
			return "", nil
		}
		for _, e := range log.AuditLogEntries {
			if e.TargetID != thread {
				continue
			}
			for _, c := range e.Changes {
				if c.Key == nil || string(*c.Key) != "applied_tags" {
					continue
				}
				if sameSet(stringList(c.NewValue), tags) {
					return e.UserID, nil
				}
			}
		}
	}
	return "", nil
}

func stringList(v any) []string {
	xs, _ := v.([]any)
	out := []string{}
	for _, x := range xs {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
