package discord

// The command handling below mirrors bot/slack's and is to move onto the
// surface-neutral dispatcher in bot (issue 10) once it lands: Discord
// should only decode requests into it and render its answers.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/inbox"
	"github.com/hero-dev/hero/store"
)

// tokenLife is how long an interaction's token may be used for follow-ups
// (Discord allows 15 minutes); later answers use the bot token.
const tokenLife = 14 * time.Minute

// deliverySurface keys chat_threads rows that map a slash command's
// interaction to the run it started, so a redelivery starts none.
const deliverySurface = "discord:delivery"

// process handles one persisted delivery (the inbox worker calls it).
func (a *Adapter) process(ctx context.Context, d *store.Delivery) error {
	ctx = engine.WithDelivery(ctx, d.Source, d.DeliveryID)
	switch d.Event {
	case kindInteraction:
		in := new(discordgo.Interaction)
		if err := json.Unmarshal(d.Payload, in); err != nil {
			return inbox.Permanent(fmt.Errorf("interaction payload: %w", err))
		}
		switch in.Type {
		case discordgo.InteractionApplicationCommand:
			return a.onCommand(ctx, in, d.DeliveryID)
		case discordgo.InteractionMessageComponent:
			return a.onClick(ctx, in)
		}
		return nil
	case kindMessage:
		m := new(discordgo.Message)
		if err := json.Unmarshal(d.Payload, m); err != nil {
			return inbox.Permanent(fmt.Errorf("message payload: %w", err))
		}
		return a.onMessage(ctx, m)
	}
	return inbox.Permanent(fmt.Errorf("unknown discord delivery kind %q", d.Event))
}

// who is a person acting in Discord.
type who struct {
	user, channel string
	id            string      // "discord:<user id>"
	hero          *store.User // nil: not linked to hero
}

// principal is w as the engine authorises them: Discord vouches for no
// role, so an unlinked person has none.
func (w who) principal() engine.Principal {
	return engine.Principal{ID: w.id, UserID: w.userID()}
}

func (w who) userID() int64 {
	if w.hero == nil {
		return 0
	}
	return w.hero.ID
}

// who maps a Discord user to hero: only a link code links an account
// (there is no email to match).
func (a *Adapter) who(ctx context.Context, user, channel string) (who, error) {
	w := who{user: user, channel: channel, id: identity(user)}
	u, err := a.db.UserByIdentity(ctx, Surface, user)
	switch {
	case err == nil:
		w.hero = u
	case !errors.Is(err, store.ErrNotFound):
		return w, fmt.Errorf("map discord user %s: %w", user, err)
	}
	return w, nil
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

// answer replaces the deferred "thinking…" response of a command: through
// the interaction's webhook while its token lives, else (public answers
// only) as a message in the channel with the bot token.
func (a *Adapter) answer(ctx context.Context, in *discordgo.Interaction, private bool, text string) (*discordgo.Message, error) {
	text = clip(text)
	if a.fresh(in) {
		m, err := a.api.InteractionResponseEdit(in, &discordgo.WebhookEdit{Content: &text, AllowedMentions: noMentions()}, discordgo.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("answer interaction %s: %w", in.ID, err)
		}
		return m, nil
	}
	if private {
		a.log.Warn("a private answer came after the interaction's token expired; not posted", "interaction", in.ID)
		return nil, nil
	}
	return a.send(ctx, in.ChannelID, text, nil)
}

// ephemeral tells the person who clicked something only they see.
func (a *Adapter) ephemeral(ctx context.Context, in *discordgo.Interaction, text string) {
	if !a.fresh(in) {
		a.log.Warn("an ephemeral answer came after the interaction's token expired; not posted", "interaction", in.ID)
		return
	}
	_, err := a.api.FollowupMessageCreate(in, true, &discordgo.WebhookParams{Content: clip(text), Flags: discordgo.MessageFlagsEphemeral, AllowedMentions: noMentions()}, discordgo.WithContext(ctx))
	if err != nil {
		a.log.Warn("ephemeral follow-up", "interaction", in.ID, "err", err)
	}
}

func commandText(in *discordgo.Interaction) string {
	if in.Type != discordgo.InteractionApplicationCommand {
		return ""
	}
	for _, o := range in.ApplicationCommandData().Options {
		if o.Name == commandOption && o.Type == discordgo.ApplicationCommandOptionString {
			return o.StringValue()
		}
	}
	return ""
}

func (a *Adapter) onCommand(ctx context.Context, in *discordgo.Interaction, delivery string) error {
	w, err := a.who(ctx, interactionUser(in), in.ChannelID)
	if err != nil {
		return err
	}
	cmd, perr := bot.Parse(commandText(in))
	private := perr != nil || (cmd.Verb != bot.VerbRun && cmd.Verb != bot.VerbUse)
	say := func(s string) {
		if _, err := a.answer(ctx, in, private, s); err != nil {
			a.log.Warn("answer a command", "err", err)
		}
	}
	if perr != nil {
		var pe *bot.ParseError
		if !errors.As(perr, &pe) {
			return perr
		}
		msg := pe.Error()
		if pe.Suggestion != "" {
			msg += "\n\n" + bot.Help()
		}
		say(msg)
		return nil
	}
	if cmd.Verb == bot.VerbRun {
		return a.startRun(ctx, w, cmd.Task, say, func(ctx context.Context, text string) (string, error) {
			// The thread opens on the command's own (public) response.
			m, err := a.answer(ctx, in, false, text)
			if err != nil || m == nil {
				return "", err
			}
			return m.ID, nil
		}, delivery)
	}
	thread := ""
	if _, err := a.db.ThreadExecution(ctx, Surface, in.ChannelID); err == nil {
		thread = in.ChannelID // typed in a run's thread: status and cancel mean that run
	}
	return a.command(ctx, w, cmd, thread, say)
}

// command runs a parsed command other than a new run. thread is the
// run thread it was typed in, if any.
func (a *Adapter) command(ctx context.Context, w who, cmd bot.Command, thread string, say func(string)) error {
	switch cmd.Verb {
	case bot.VerbUse:
		return a.use(ctx, w, cmd.Project, say)
	case bot.VerbProjects:
		return a.projects(ctx, w, say)
	case bot.VerbLink:
		return a.link(ctx, w, cmd.Code, say)
	case bot.VerbStatus, bot.VerbCancel:
		id := cmd.ID
		if id == "" && thread != "" {
			id, _ = a.db.ThreadExecution(ctx, Surface, thread)
		}
		var ex *store.Execution
		var err error
		if id != "" {
			ex, err = a.db.Execution(ctx, id)
		} else if p, perr := a.db.ChannelProject(ctx, Surface, w.channel); perr == nil {
			f := store.ExecutionFilter{ProjectID: p.ID, Limit: 1}
			if cmd.Verb == bot.VerbCancel {
				f.Statuses = []string{store.StatusQueued, store.StatusRunning, store.StatusWaiting}
			}
			var exs []store.Execution
			if exs, err = a.db.ListExecutions(ctx, f); err == nil && len(exs) > 0 {
				ex = &exs[0]
			}
		}
		if err != nil {
			return sayErr(say, err)
		}
		if ex == nil {
			say("No such run here. Give its id: `/hero status ID`.")
			return nil
		}
		if cmd.Verb == bot.VerbCancel {
			if err := a.eng.Cancel(ctx, ex.ID, w.principal()); err != nil {
				return sayErr(say, err)
			}
			say(fmt.Sprintf("Cancelling run `%s`.", ex.ID))
			return nil
		}
		if ok, err := a.canSee(ctx, w, ex.ProjectID); err != nil || !ok {
			if err == nil {
				say(fmt.Sprintf("You are not a member of run `%s`'s project.", ex.ID))
			}
			return err
		}
		say(statusText(ex))
	case bot.VerbApprove, bot.VerbDeny:
		c, err := a.eng.Decide(ctx, cmd.ID, engine.Decision{Approve: cmd.Verb == bot.VerbApprove, By: w.principal(), Answer: cmd.Reason})
		if err != nil {
			return a.decisionRefused(ctx, cmd.ID, c, err, say)
		}
		if c.SurfaceRef != "" {
			a.showDecision(ctx, c)
		}
		say(fmt.Sprintf("Confirmation `%s` %s.", c.ID, c.Status))
	default:
		say(bot.Help())
	}
	return nil
}

// sayErr tells the person what went wrong when it is theirs to fix, and
// returns other errors for a retry.
func sayErr(say func(string), err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		say("Not found: " + escape(err.Error()))
	case errors.Is(err, engine.ErrNotAllowed), errors.Is(err, engine.ErrFinished), errors.Is(err, engine.ErrDraining), errors.Is(err, engine.ErrAlreadyDecided):
		say(escape(err.Error()) + ".")
	default:
		return err
	}
	return nil
}

func statusText(ex *store.Execution) string {
	cost := "cost unknown"
	if ex.CostKnown {
		cost = fmt.Sprintf("$%.4f", ex.CostUSD)
	}
	s := fmt.Sprintf("%s Run `%s` is **%s**: %d steps, %d tokens, %s.\n> %s", statusEmoji(ex.Status), ex.ID, ex.Status, ex.Steps, ex.TokensIn+ex.TokensOut, cost, escape(oneLine(ex.Task, 300)))
	if ex.Summary != "" {
		s += "\n" + escape(oneLineKeep(ex.Summary, 1000))
	}
	if ex.Error != "" {
		s += "\nError: " + escape(oneLineKeep(ex.Error, 300))
	}
	return s
}

const unboundText = "This channel is not bound to a project yet. Run `/hero use <project>` here first (`/hero projects` lists them)."

func notLinked(w who) string {
	return fmt.Sprintf("hero does not know you yet (<@%s>): on hero's settings page choose Integrations → Link a chat account, then type `/hero link CODE` here (only you see it).", w.user)
}

// role is w's role in p ("" when none); hero admins count as owners.
func (a *Adapter) role(ctx context.Context, w who, p *store.Project) (store.Role, error) {
	if w.hero == nil {
		return "", nil
	}
	if w.hero.IsAdmin {
		return store.RoleOwner, nil
	}
	role, err := a.db.MemberRole(ctx, p.ID, w.hero.ID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return role, err
}

func (a *Adapter) canSee(ctx context.Context, w who, projectID int64) (bool, error) {
	if w.hero == nil {
		return false, nil
	}
	if w.hero.IsAdmin {
		return true, nil
	}
	role, err := a.db.MemberRole(ctx, projectID, w.hero.ID)
	return role != "", err
}

// startRun starts a run on the channel's project, in a new thread opened
// on the message that asked (post makes it for a slash command).
func (a *Adapter) startRun(ctx context.Context, w who, task string, say func(string), post func(ctx context.Context, text string) (string, error), delivery string) error {
	p, err := a.db.ChannelProject(ctx, Surface, w.channel)
	if errors.Is(err, store.ErrNotFound) {
		say(unboundText)
		return nil
	}
	if err != nil {
		return err
	}
	if w.hero == nil {
		say(notLinked(w))
		return nil
	}
	role, err := a.role(ctx, w, p)
	if err != nil {
		return err
	}
	if !role.AtLeast(store.RoleMember) {
		say(fmt.Sprintf("You need to be a member of project **%s** to start runs; ask one of its owners.", escape(p.Name)))
		return nil
	}
	// The inbox delivers at least once: a request handled again after a
	// crash must not start a second run.
	if id, err := a.db.ThreadExecution(ctx, deliverySurface, delivery); err == nil {
		a.log.Info("request already started a run", "delivery", delivery, "run", id)
		return nil
	}
	msgID, err := post(ctx, fmt.Sprintf("<@%s> asked hero (project **%s**):\n> %s", w.user, escape(p.Name), escape(oneLine(task, 1500))))
	if err != nil {
		return fmt.Errorf("post the request: %w", err)
	}
	th, err := a.api.MessageThreadStartComplex(w.channel, msgID, &discordgo.ThreadStart{Name: "hero: " + oneLine(task, 80), AutoArchiveDuration: 1440}, discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("open a thread for the run: %w", err)
	}
	gate := a.threadLock(th.ID)
	gate.Lock()
	defer func() { gate.Unlock(); a.releaseThread(th.ID) }()
	ex, err := a.eng.Start(a.lifetime(), engine.StartRequest{Project: p, Task: task, Surface: Surface, ThreadRef: th.ID, By: w.principal()})
	if err != nil {
		if errors.Is(err, engine.ErrDraining) {
			_, err = a.send(ctx, th.ID, "hero is restarting; try again in a minute.", nil)
			return err
		}
		return fmt.Errorf("start run: %w", err)
	}
	if err := a.db.LinkThread(ctx, Surface, th.ID, ex.ID); err != nil {
		a.log.Error("link thread to run", "run", ex.ID, "err", err)
	}
	if err := a.db.LinkThread(ctx, deliverySurface, delivery, ex.ID); err != nil {
		a.log.Error("record the request's run", "run", ex.ID, "err", err)
	}
	_, err = a.send(ctx, th.ID, fmt.Sprintf("On it: run `%s` in project **%s**. Mention hero or reply to hero's messages in this thread to steer it; `/hero cancel %s` stops it.", ex.ID, escape(p.Name), ex.ID), nil)
	return err
}

func (a *Adapter) use(ctx context.Context, w who, name string, say func(string)) error {
	p, err := a.db.ProjectByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		say(fmt.Sprintf("There is no project named %s; `/hero projects` lists them.", inline(name)))
		return nil
	}
	if err != nil {
		return err
	}
	if w.hero == nil {
		say(notLinked(w))
		return nil
	}
	role, err := a.role(ctx, w, p)
	if err != nil {
		return err
	}
	if !role.AtLeast(store.RoleAdmin) {
		say(fmt.Sprintf("Only an owner or admin of project **%s** can bind a channel to it.", escape(p.Name)))
		return nil
	}
	if err := a.db.BindChannel(ctx, Surface, w.channel, p.ID, w.id); err != nil {
		return err
	}
	say(fmt.Sprintf("<@%s> bound this channel to project **%s**: `/hero <task>` or a mention of hero here starts a run in it.", w.user, escape(p.Name)))
	return nil
}

func (a *Adapter) projects(ctx context.Context, w who, say func(string)) error {
	if w.hero == nil {
		say(notLinked(w))
		return nil
	}
	ps, err := a.db.ListProjects(ctx)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, p := range ps {
		if ok, err := a.canSee(ctx, w, p.ID); err != nil {
			return err
		} else if ok {
			fmt.Fprintf(&b, "• %s %s\n", inline(p.Name), escape(p.RepoURL))
		}
	}
	if b.Len() == 0 {
		say("You are not a member of any project yet; ask a project owner to add you.")
		return nil
	}
	say("**Your projects:**\n" + b.String())
	return nil
}

// link spends a one-time code from the settings page and maps this
// Discord account to the hero user who made it. The code is never
// logged or echoed.
func (a *Adapter) link(ctx context.Context, w who, code string, say func(string)) error {
	uid, err := a.db.UseLinkCodeLimited(ctx, code, w.id, a.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		say("That link code is unknown, already used or expired (a code works once, for 15 minutes). Make a new one on hero's settings page (Integrations → Link a chat account), then type `/hero link CODE` here.")
		return nil
	case errors.Is(err, store.ErrLinkAccountLimit):
		say(fmt.Sprintf("Too many wrong link codes from this account: try again in %d minutes, with a new code from hero's settings page.", int(store.LinkFailWindow.Minutes())))
		return nil
	case errors.Is(err, store.ErrLinkGlobalLimit):
		say("Too many wrong link codes were typed to hero in the last hour, so linking is paused for everyone; try again within the hour.")
		return nil
	case err != nil:
		return fmt.Errorf("link discord account %s: %w", w.id, err)
	}
	u, err := a.db.UserByID(ctx, uid)
	if err != nil {
		return fmt.Errorf("link discord account %s: %w", w.id, err)
	}
	if err := a.db.LinkIdentity(ctx, Surface, w.user, u.ID); err != nil {
		return fmt.Errorf("link discord account %s: %w", w.id, err)
	}
	if err := a.db.AuditAccount(ctx, u.ID, Surface, w.user, store.AccountLinked, w.id); err != nil {
		return fmt.Errorf("link discord account %s: %w", w.id, err)
	}
	a.log.Info("discord account linked", "user", w.id, "hero_user", u.Email)
	say(fmt.Sprintf("Linked: this Discord account now acts as %s in hero.", escape(u.Email)))
	return nil
}

// burnLinkCode spends a code posted where others can read it, so nobody
// else can link their account with it.
func (a *Adapter) burnLinkCode(ctx context.Context, w who, code string, say func(string)) error {
	if _, err := a.db.UseLinkCode(ctx, code, a.cfg.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("cancel a link code posted in a channel: %w", err)
	}
	a.log.Info("discord link code posted in a channel; cancelled", "user", w.id)
	say("Link codes must stay private: that code was posted where others can read it, so I cancelled it. Make a new one on hero's settings page and type `/hero link CODE` as a slash command (only you see the answer).")
	return nil
}

// decisionRefused explains why a decision did not count.
func (a *Adapter) decisionRefused(ctx context.Context, id string, c *store.Confirmation, err error, say func(string)) error {
	switch {
	case errors.Is(err, engine.ErrNotAllowed):
		say("⛔ You are not allowed to decide this: " + escape(err.Error()) + ".")
	case errors.Is(err, engine.ErrAlreadyDecided):
		if c != nil && c.Status == store.ConfirmExpired {
			if c.SurfaceRef != "" {
				a.showDecision(ctx, c)
			}
			say(fmt.Sprintf("⌛ Confirmation `%s` expired <t:%d:f>; nothing was done.", c.ID, c.ExpiresAt.Unix()))
		} else if c != nil {
			say(fmt.Sprintf("Confirmation `%s` was already %s.", c.ID, c.Status))
		} else {
			say(escape(err.Error()) + ".")
		}
	case errors.Is(err, store.ErrNotFound):
		say(fmt.Sprintf("There is no confirmation %s; the id is shown with the request.", inline(id)))
	default:
		return err
	}
	return nil
}

// onClick decides a confirmation from its button. The click was
// acknowledged with a deferred update; the message is then replaced by
// the outcome, or the person gets an ephemeral refusal.
func (a *Adapter) onClick(ctx context.Context, in *discordgo.Interaction) error {
	id := in.MessageComponentData().CustomID
	approve := strings.HasPrefix(id, approvePrefix)
	cid, ok := strings.CutPrefix(id, approvePrefix)
	if !ok {
		if cid, ok = strings.CutPrefix(id, denyPrefix); !ok {
			return nil // not hero's button
		}
	}
	w, err := a.who(ctx, interactionUser(in), in.ChannelID)
	if err != nil {
		return err
	}
	c, err := a.eng.Decide(ctx, cid, engine.Decision{Approve: approve, By: w.principal()})
	if err != nil {
		return a.decisionRefused(ctx, cid, c, err, func(s string) { a.ephemeral(ctx, in, s) })
	}
	if c.SurfaceRef == "" && in.Message != nil {
		c.SurfaceRef = in.ChannelID + "/" + in.Message.ID
	}
	a.showDecision(ctx, c)
	return nil
}

var mentionRE = regexp.MustCompile(`<@!?(\d+)>`)

// onMessage handles a message that mentions hero or replies to it.
func (a *Adapter) onMessage(ctx context.Context, m *discordgo.Message) error {
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
	w, err := a.who(ctx, m.Author.ID, m.ChannelID)
	if err != nil {
		return err
	}
	reply := func(s string) {
		_, err := a.api.ChannelMessageSendComplex(m.ChannelID, &discordgo.MessageSend{Content: clip(s), AllowedMentions: noMentions(),
			Reference: &discordgo.MessageReference{MessageID: m.ID, ChannelID: m.ChannelID, GuildID: m.GuildID}}, discordgo.WithContext(ctx))
		if err != nil {
			a.log.Warn("reply on discord", "channel", m.ChannelID, "err", err)
		}
	}
	cmd, perr := bot.Parse(text)
	if perr == nil && cmd.Verb == bot.VerbLink {
		return a.burnLinkCode(ctx, w, cmd.Code, reply)
	}
	if runID, err := a.db.ThreadExecution(ctx, Surface, m.ChannelID); err == nil {
		return a.inRunThread(ctx, w, runID, cmd, perr, text, reply)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if perr != nil {
		var pe *bot.ParseError
		if !errors.As(perr, &pe) {
			return perr
		}
		reply(pe.Error())
		return nil
	}
	if cmd.Verb == bot.VerbRun {
		return a.startRun(ctx, w, cmd.Task, reply, func(context.Context, string) (string, error) { return m.ID, nil }, "msg:"+m.ID)
	}
	return a.command(ctx, w, cmd, "", reply)
}

// inRunThread handles a mention or reply in a run's thread: status,
// cancel or help; the answer to a pending question; else steering.
func (a *Adapter) inRunThread(ctx context.Context, w who, runID string, cmd bot.Command, perr error, text string, reply func(string)) error {
	if text == "" {
		return nil
	}
	if perr == nil && (cmd.Verb == bot.VerbStatus || cmd.Verb == bot.VerbCancel || cmd.Verb == bot.VerbHelp) {
		return a.command(ctx, w, cmd, w.channel, reply)
	}
	pending, err := a.db.PendingConfirmations(ctx, runID)
	if err != nil {
		return err
	}
	for _, c := range pending {
		if c.Kind == store.ConfirmKindQuestion {
			dc, err := a.eng.Decide(ctx, c.ID, engine.Decision{Approve: true, By: w.principal(), Answer: text})
			if err != nil {
				return a.decisionRefused(ctx, c.ID, dc, err, reply)
			}
			if dc.SurfaceRef != "" {
				a.showDecision(ctx, dc)
			}
			return nil
		}
	}
	if err := a.eng.Steer(ctx, runID, w.principal(), text); err != nil {
		if errors.Is(err, engine.ErrFinished) {
			reply(fmt.Sprintf("Run `%s` has ended; start a new one with `/hero <task>` or by mentioning hero in the channel.", runID))
			return nil
		}
		return sayErr(reply, err)
	}
	return nil
}
