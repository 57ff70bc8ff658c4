package discord

// Discord decodes its requests into bot's surface-neutral Request and
// renders the dispatcher's answers; the command handling itself (who may
// do what, starting, steering, deciding, linking) lives once, in
// bot.Dispatcher.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/inbox"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// tokenLife is how long an interaction's token may be used for follow-ups
// (Discord allows 15 minutes); later answers use the bot token.
const tokenLife = 14 * time.Minute

// process handles one persisted delivery (the inbox worker calls it).
func (a *Adapter) process(ctx context.Context, d *store.Delivery) error {
	ctx = engine.WithDelivery(ctx, d.Source, d.DeliveryID)
	switch d.Event {
	case kindInteraction:
		in := new(discordgo.Interaction)
		if err := json.Unmarshal(d.Payload, in); err != nil {
			return inbox.Permanent(fmt.Errorf("interaction payload: %w", err))
		}
		// discordgo drops the partial channel Discord sends along; it
		// says whether the command was typed in a thread, and in which
		// channel's.
		var extra struct {
			Channel *channelHint `json:"channel"`
		}
		json.Unmarshal(d.Payload, &extra)
		switch in.Type {
		case discordgo.InteractionApplicationCommand:
			return a.onCommand(ctx, in, extra.Channel, d.DeliveryID)
		case discordgo.InteractionMessageComponent:
			return a.onClick(ctx, in, extra.Channel, d.DeliveryID)
		}
		return nil
	case kindThreadUpdate:
		ch := new(discordgo.Channel)
		if err := json.Unmarshal(d.Payload, ch); err != nil {
			return inbox.Permanent(fmt.Errorf("thread update payload: %w", err))
		}
		return a.onThreadUpdate(ctx, ch)
	case kindMessage:
		m := new(discordgo.Message)
		if err := json.Unmarshal(d.Payload, m); err != nil {
			return inbox.Permanent(fmt.Errorf("message payload: %w", err))
		}
		return a.onMessage(ctx, m, d.DeliveryID)
	}
	return inbox.Permanent(fmt.Errorf("unknown discord delivery kind %q", d.Event))
}

// HeroUser implements bot.Directory: a Discord account is linked only
// with a link code (there is no email to match).
func (a *Adapter) HeroUser(ctx context.Context, who bot.Actor) (*store.User, error) {
	u, err := a.db.UserByIdentity(ctx, Surface, who.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return u, err
}

func interactionUser(in *discordgo.Interaction) string {
	if in.Member != nil && in.Member.User != nil {
		return in.Member.User.ID
	}
	if in.User != nil {
		return in.User.ID
	}
	return ""
}

// fresh says whether an interaction's token still works.
func (a *Adapter) fresh(in *discordgo.Interaction) bool {
	at, err := discordgo.SnowflakeTimestamp(in.ID)
	return err == nil && a.cfg.Now().Sub(at) < tokenLife
}

func commandText(in *discordgo.Interaction) string {
	for _, o := range in.ApplicationCommandData().Options {
		if o.Name == commandOption && o.Type == discordgo.ApplicationCommandOptionString {
			return o.StringValue()
		}
	}
	return ""
}

// channelHint is what Discord says about a channel: its type and, for a
// thread, the channel it belongs to.
type channelHint struct {
	Type     int    `json:"type"`
	ParentID string `json:"parent_id"`
}

// channelOf is the channel id is in: a thread's parent, else id itself.
func (h channelHint) channelOf(id string) string {
	if isThread(h.Type) && h.ParentID != "" {
		return h.ParentID
	}
	return id
}

// isThread says whether a channel type is a thread (announcement,
// public, private).
func isThread(typ int) bool {
	switch discordgo.ChannelType(typ) {
	case discordgo.ChannelTypeGuildNewsThread, discordgo.ChannelTypeGuildPublicThread, discordgo.ChannelTypeGuildPrivateThread:
		return true
	}
	return false
}

// place is a Discord channel as the dispatcher sees it: a direct message
// (no guild); a run's thread (its project, Thread set); a thread in a
// bound channel (that channel, Thread set: a run started there reports
// in the thread); or a channel, bound or not. hint is what the request
// said about the channel; without one a channel that is not bound is
// looked up, in case it is a thread.
func (a *Adapter) place(ctx context.Context, guild, channel string, hint *channelHint) (bot.Place, error) {
	pl := bot.Place{Surface: Surface, Channel: channel}
	if guild == "" {
		pl.Direct = true
		return pl, nil
	}
	id, err := a.db.ThreadExecution(ctx, Surface, channel)
	switch {
	case err == nil:
		// A run's thread belongs to the run's project (threads are not
		// bound themselves).
		ex, err := a.db.Execution(ctx, id)
		if err != nil {
			return pl, err
		}
		if pl.Project, err = a.db.ProjectByID(ctx, ex.ProjectID); err != nil {
			return pl, err
		}
		pl.Thread = channel
		return pl, nil
	case !errors.Is(err, store.ErrNotFound):
		return pl, err
	}
	// A card's forum post belongs to the card's project.
	card, err := a.db.CardByThread(ctx, Surface, channel)
	switch {
	case err == nil:
		if pl.Project, err = a.db.ProjectByID(ctx, card.ProjectID); err != nil {
			return pl, err
		}
		pl.Thread = channel
		return pl, nil
	case !errors.Is(err, store.ErrNotFound):
		return pl, err
	}
	if _, err := a.db.ChannelProject(ctx, Surface, channel); err == nil {
		return pl, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return pl, err
	}
	if hint == nil {
		ch, err := a.api.Channel(channel, discordgo.WithContext(ctx))
		if err != nil {
			// Answered as an unbound channel; the person can still
			// bind it.
			a.log.Warn("look up a channel that is not bound", "channel", channel, "err", err)
			return pl, nil
		}
		hint = &channelHint{Type: int(ch.Type), ParentID: ch.ParentID}
	}
	if parent := hint.channelOf(channel); parent != channel {
		pl.Channel, pl.Thread = parent, channel
	}
	return pl, nil
}

func (a *Adapter) onCommand(ctx context.Context, in *discordgo.Interaction, hint *channelHint, delivery string) error {
	cmd, perr := bot.Parse(commandText(in))
	conv := &conversation{a: a, in: in, channel: in.ChannelID,
		// The ack already chose: everything but starting work or binding
		// the channel is answered privately.
		private: perr != nil || (cmd.Verb != bot.VerbRun && cmd.Verb != bot.VerbUse)}
	defer conv.done()
	if perr != nil {
		return conv.parseError(ctx, perr)
	}
	pl, err := a.place(ctx, in.GuildID, in.ChannelID, hint)
	if err != nil {
		return err
	}
	conv.holdThread(pl, cmd)
	req := &bot.Request{Command: cmd, Actor: bot.Actor{Surface: Surface, ID: interactionUser(in)}, Place: pl, Delivery: delivery, Private: true}
	return a.dispatchOrSteerCard(ctx, req, conv)
}

// dispatchOrSteerCard dispatches req; a task in a card's forum post
// whose run is going steers that run instead (as a reply in a card's
// Slack thread does).
func (a *Adapter) dispatchOrSteerCard(ctx context.Context, req *bot.Request, conv *conversation) error {
	cmd := req.Command
	if req.Place.Thread != "" && (cmd.Verb == bot.VerbRun || ((cmd.Verb == bot.VerbStatus || cmd.Verb == bot.VerbCancel) && cmd.ID == "")) {
		ex, err := a.cardRun(ctx, req.Place.Thread)
		if err != nil {
			return err
		}
		switch {
		case ex == nil:
		case cmd.Verb == bot.VerbRun && !store.Final(ex.Status):
			return a.dispatch.Steer(ctx, req, a, conv, ex, cmd.Task)
		case cmd.Verb != bot.VerbRun:
			// status and cancel in a card's post mean the card's run.
			r := *req
			r.Command.ID = ex.ID
			return a.dispatch.Dispatch(ctx, &r, a, conv)
		}
	}
	return a.dispatch.Dispatch(ctx, req, a, conv)
}

// cardRun is the latest run of the card whose post thread is; nil when
// thread is no card's post or the card has no run.
func (a *Adapter) cardRun(ctx context.Context, thread string) (*store.Execution, error) {
	id, err := kanban.CardThreadRun(ctx, a.db, Surface, thread)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return a.db.Execution(ctx, id)
}

// onClick decides a confirmation from its button. The click was
// acknowledged with a deferred update; the message then shows the
// outcome, or the person gets a refusal only they see.
func (a *Adapter) onClick(ctx context.Context, in *discordgo.Interaction, hint *channelHint, delivery string) error {
	id := in.MessageComponentData().CustomID
	verb := bot.VerbApprove
	cid, ok := strings.CutPrefix(id, approvePrefix)
	if !ok {
		if cid, ok = strings.CutPrefix(id, denyPrefix); !ok {
			return nil // not hero's button
		}
		verb = bot.VerbDeny
	}
	conv := &conversation{a: a, in: in, channel: in.ChannelID, private: true, click: cid}
	defer conv.done()
	pl, err := a.place(ctx, in.GuildID, in.ChannelID, hint)
	if err != nil {
		return err
	}
	req := &bot.Request{Command: bot.Command{Verb: verb, ID: cid}, Actor: bot.Actor{Surface: Surface, ID: interactionUser(in)}, Place: pl, Delivery: delivery, Private: true}
	return a.dispatch.Dispatch(ctx, req, a, conv)
}

var mentionRE = regexp.MustCompile(`<@!?(\d+)>`)

// onMessage handles a message that mentions hero or replies to it: a
// command, a new task (in a thread opened on it), or, in a run's thread,
// steering and answers.
func (a *Adapter) onMessage(ctx context.Context, m *discordgo.Message, delivery string) error {
	botID, err := a.botUser(ctx)
	if err != nil {
		return err
	}
	text := strings.TrimSpace(mentionRE.ReplaceAllStringFunc(m.Content, func(s string) string {
		if mentionRE.FindStringSubmatch(s)[1] == botID {
			return ""
		}
		return s
	}))
	if text == "" {
		return nil
	}
	conv := &conversation{a: a, msg: m, channel: m.ChannelID}
	defer conv.done()
	cmd, perr := bot.Parse(text)
	if perr != nil {
		return conv.parseError(ctx, perr)
	}
	pl, err := a.place(ctx, m.GuildID, m.ChannelID, nil)
	if err != nil {
		return err
	}
	conv.holdThread(pl, cmd)
	req := &bot.Request{Command: cmd, Actor: bot.Actor{Surface: Surface, ID: m.Author.ID}, Place: pl, Delivery: delivery,
		Private: m.GuildID == "" /* a direct message */}
	return a.dispatchOrSteerCard(ctx, req, conv)
}

// conversation is bot.Conversation for one Discord request: a slash
// command (its deferred response, then follow-ups), a button click
// (the clicked message, or a refusal only the clicker sees) or a gateway
// message (replies to it).
type conversation struct {
	a       *Adapter
	in      *discordgo.Interaction // a command or click; nil for a message
	msg     *discordgo.Message     // a gateway message
	channel string
	private bool   // the command's deferred response is ephemeral
	click   string // the confirmation a clicked button decides

	mu       sync.Mutex
	answered bool   // the deferred response was replaced
	unhold   func() // opens the gate of the run's thread once "on it" is posted
}

var _ bot.Conversation = (*conversation)(nil)

// holdThread holds the updates of a run this request may start in a
// thread that has none yet, until "on it" is posted there (a thread hero
// opens is held by OpenThread).
func (c *conversation) holdThread(pl bot.Place, cmd bot.Command) {
	if cmd.Verb != bot.VerbRun || pl.Thread == "" || pl.Project != nil {
		return // no start, no thread, or a run's thread: it steers
	}
	unhold := c.a.gates.Hold(pl.Thread)
	c.mu.Lock()
	c.unhold = unhold
	c.mu.Unlock()
}

// done releases what the request still holds.
func (c *conversation) done() { c.release() }

func (c *conversation) release() {
	c.mu.Lock()
	unhold := c.unhold
	c.unhold = nil
	c.mu.Unlock()
	if unhold != nil {
		unhold()
	}
}

func (c *conversation) parseError(ctx context.Context, err error) error {
	msg, ok := bot.ParseErrorReply(err)
	if !ok {
		return err
	}
	return c.Say(ctx, bot.Message{Kind: bot.Refusal, Text: msg, Private: true})
}

// Say implements bot.Conversation.
func (c *conversation) Say(ctx context.Context, m bot.Message) error {
	a := c.a
	text := m.Text
	switch {
	case m.Kind == bot.Started && m.Run != nil:
		// "On it" opens the run's thread; steering there needs a mention
		// or a reply (hero reads nothing else).
		text = strings.Replace(text, "Reply in this thread to steer it", "Mention hero or reply to hero's messages in this thread to steer it", 1)
		var err error
		if c.in != nil && c.in.ChannelID == m.Run.ThreadRef && !c.isAnswered() {
			// Typed in the thread itself: "on it" replaces the
			// command's deferred response there.
			err = c.answer(ctx, text, false)
		} else {
			_, err = a.send(ctx, m.Run.ThreadRef, text, nil)
		}
		c.release()
		return err
	case c.click != "":
		// A click: the clicked message shows the outcome instead of
		// buttons (also when the confirmation had expired); anything else
		// is said only to the person who clicked.
		if conf := m.Confirmation; conf != nil {
			if c.in.Message != nil {
				// The clicked message is the one to edit, whatever the
				// confirmation's stored reference holds (a fan-out run
				// keeps one per place).
				shown := *conf
				shown.SurfaceRef = c.in.ChannelID + "/" + c.in.Message.ID
				conf = &shown
			}
			a.showDecision(ctx, conf)
		}
		if m.Kind != bot.Ack {
			c.ephemeral(ctx, text)
		}
		return nil
	case m.Confirmation != nil && m.Confirmation.SurfaceRef != "":
		// A decision typed (`/hero approve ID`) or an answer replied:
		// the confirmation's message shows it too.
		a.showDecision(ctx, m.Confirmation)
		fallthrough
	default:
		if c.in != nil {
			return c.answer(ctx, text, m.Private)
		}
		return c.reply(ctx, text)
	}
}

// answer replaces the command's deferred response, then follows up: with
// the interaction's webhook while its token lives, else (public answers
// only) as a message in the channel with the bot token.
func (c *conversation) answer(ctx context.Context, text string, private bool) error {
	a, in := c.a, c.in
	text = clip(text)
	if !a.fresh(in) {
		if private || c.private {
			a.log.Warn("a private answer came after the interaction's token expired; not posted", "interaction", in.ID)
			return nil
		}
		_, err := a.send(ctx, in.ChannelID, text, nil)
		return err
	}
	c.mu.Lock()
	first := !c.answered
	c.answered = true
	c.mu.Unlock()
	if first {
		if _, err := a.api.InteractionResponseEdit(in, &discordgo.WebhookEdit{Content: &text, AllowedMentions: noMentions()}, discordgo.WithContext(ctx)); err != nil {
			return fmt.Errorf("answer interaction %s: %w", in.ID, err)
		}
		return nil
	}
	p := &discordgo.WebhookParams{Content: text, AllowedMentions: noMentions()}
	if private {
		p.Flags = discordgo.MessageFlagsEphemeral
	}
	if _, err := a.api.FollowupMessageCreate(in, true, p, discordgo.WithContext(ctx)); err != nil {
		return fmt.Errorf("follow up interaction %s: %w", in.ID, err)
	}
	return nil
}

func (c *conversation) isAnswered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answered
}

// ephemeral tells the person who clicked something only they see.
func (c *conversation) ephemeral(ctx context.Context, text string) {
	a, in := c.a, c.in
	if !a.fresh(in) {
		a.log.Warn("an ephemeral answer came after the interaction's token expired; not posted", "interaction", in.ID)
		return
	}
	_, err := a.api.FollowupMessageCreate(in, true, &discordgo.WebhookParams{Content: clip(text), Flags: discordgo.MessageFlagsEphemeral, AllowedMentions: noMentions()}, discordgo.WithContext(ctx))
	if err != nil {
		a.log.Warn("ephemeral follow-up", "interaction", in.ID, "err", err)
	}
}

// reply answers a gateway message in its channel, as a reply to it.
func (c *conversation) reply(ctx context.Context, text string) error {
	m := c.msg
	_, err := c.a.api.ChannelMessageSendComplex(m.ChannelID, &discordgo.MessageSend{Content: clip(text), AllowedMentions: noMentions(),
		Reference: &discordgo.MessageReference{MessageID: m.ID, ChannelID: m.ChannelID, GuildID: m.GuildID}}, discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("reply on discord in %s: %w", m.ChannelID, err)
	}
	return nil
}

// OpenThread implements bot.Conversation: a thread on the request — the
// mention itself, or for a slash command its (public) response, which
// becomes "<@user> asked hero …".
func (c *conversation) OpenThread(ctx context.Context, p *store.Project, task string) (string, error) {
	a := c.a
	var msgID, who string
	switch {
	case c.msg != nil:
		msgID, who = c.msg.ID, c.msg.Author.ID
	case c.in != nil:
		who = interactionUser(c.in)
		text := fmt.Sprintf("<@%s> asked hero (project **%s**):\n> %s", who, escape(p.Name), escape(bot.OneLine(task, 1500)))
		if a.fresh(c.in) {
			m, err := a.api.InteractionResponseEdit(c.in, &discordgo.WebhookEdit{Content: &text, AllowedMentions: noMentions()}, discordgo.WithContext(ctx))
			if err != nil {
				return "", fmt.Errorf("post the request: %w", err)
			}
			c.mu.Lock()
			c.answered = true
			c.mu.Unlock()
			msgID = m.ID
		} else {
			m, err := a.send(ctx, c.channel, text, nil)
			if err != nil {
				return "", err
			}
			msgID = m.ID
		}
	default:
		return "", errors.New("open a thread: no message to open it on")
	}
	th, err := a.api.MessageThreadStartComplex(c.channel, msgID, &discordgo.ThreadStart{Name: "hero: " + bot.OneLine(task, 80), AutoArchiveDuration: 1440}, discordgo.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("open a thread for the run: %w", err)
	}
	// Hold the run's first updates until "on it" is posted.
	unhold := a.gates.Hold(th.ID)
	c.mu.Lock()
	c.unhold = unhold
	c.mu.Unlock()
	return th.ID, nil
}
