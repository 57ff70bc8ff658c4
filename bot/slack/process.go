package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/inbox"
	"github.com/hero-dev/hero/store"
)

// decoded is a stored delivery decoded: exactly one of form, ic and ev
// is set, by kind.
type decoded struct {
	kind string
	form url.Values                 // kindCommand
	ic   *slack.InteractionCallback // kindInteraction
	ev   *eventCallback             // kindEvent
}

// team is the workspace the delivery came from.
func (d *decoded) team() string {
	switch {
	case d.form != nil:
		return d.form.Get("team_id")
	case d.ic != nil:
		return interactionTeam(d.ic)
	case d.ev != nil:
		if d.ev.TeamID != "" {
			return d.ev.TeamID
		}
		return d.ev.Event.Team
	}
	return ""
}

// decode reads a stored delivery's payload; what does not decode is a
// permanent error (no retry can fix it).
func decode(kind string, payload []byte) (*decoded, error) {
	d := &decoded{kind: kind}
	switch kind {
	case kindCommand:
		form, err := url.ParseQuery(string(payload))
		if err != nil {
			return nil, inbox.Permanent(fmt.Errorf("slash command form: %w", err))
		}
		d.form = form
	case kindInteraction:
		d.ic = new(slack.InteractionCallback)
		if err := json.Unmarshal(payload, d.ic); err != nil {
			return nil, inbox.Permanent(fmt.Errorf("interaction payload: %w", err))
		}
	case kindEvent:
		d.ev = new(eventCallback)
		if err := json.Unmarshal(payload, d.ev); err != nil {
			return nil, inbox.Permanent(fmt.Errorf("event payload: %w", err))
		}
	default:
		return nil, inbox.Permanent(fmt.Errorf("unknown slack delivery kind %q", kind))
	}
	return d, nil
}

// process handles one persisted delivery (the inbox worker calls it).
// Errors that a retry cannot fix are permanent; people are told about
// their mistakes in Slack and the delivery completes.
func (a *Adapter) process(ctx context.Context, d *store.Delivery) error {
	// A delivery handled twice (after a crash) steers a run once.
	ctx = engine.WithDelivery(ctx, d.Source, d.DeliveryID)
	dec, err := decode(d.Event, d.Payload)
	if err != nil {
		return err
	}
	switch {
	case dec.form != nil:
		form := dec.form
		if ok, err := a.allowedTeam(ctx, dec.team()); err != nil || !ok {
			if err == nil {
				a.refuse(ctx, dec.team(), form.Get("user_id"), form.Get("channel_id"), form.Get("response_url"))
			}
			return err
		}
		return a.onCommand(ctx, form, d.DeliveryID)
	case dec.ic != nil:
		ic := dec.ic
		if ok, err := a.allowedTeam(ctx, dec.team()); err != nil || !ok {
			if err == nil && ic.Type == slack.InteractionTypeBlockActions {
				a.refuse(ctx, dec.team(), ic.User.ID, interactionChannel(ic), ic.ResponseURL)
			}
			return err
		}
		return a.onInteraction(ctx, ic)
	default:
		return a.onEvent(ctx, dec.ev)
	}
}

// who is a person acting in Slack.
type who struct {
	team, user, channel string
	responseURL         string      // a slash command's response_url: reaches the person where hero is not a member
	delivery            string      // the slash command's inbox delivery id
	id                  string      // "slack:T/U"
	hero                *store.User // nil: not known to hero
}

func (a *Adapter) who(ctx context.Context, team, user, channel string) (who, error) {
	w := who{team: team, user: user, channel: channel, id: identity(team, user)}
	u, err := a.heroUser(ctx, team, user)
	if err != nil {
		return w, fmt.Errorf("map slack user %s: %w", w.id, err)
	}
	w.hero = u
	return w, nil
}

func (w who) userID() int64 {
	if w.hero == nil {
		return 0
	}
	return w.hero.ID
}

// principal is w as the engine authorises them: Slack vouches for no
// role, so an unlinked person has none.
func (w who) principal() engine.Principal {
	return engine.Principal{ID: w.id, UserID: w.userID()}
}

// ephemeral tells one person something only they see. Where hero is not
// in the channel, a slash command's response_url still reaches them.
func (a *Adapter) ephemeral(w who, text string) {
	ch, user := w.channel, w.user
	a.out.send(w.team, ch, &job{what: "chat.postEphemeral", call: func(ctx context.Context, api *slack.Client) error {
		_, err := api.PostEphemeralContext(ctx, ch, user, slack.MsgOptionText(text, false))
		if notInChannel(err) && w.responseURL != "" {
			return slack.PostWebhookCustomHTTPContext(ctx, w.responseURL, a.cfg.HTTPClient, &slack.WebhookMessage{Text: text, ResponseType: "ephemeral"})
		}
		return err
	}})
}

// notInChannel recognises Slack's answers for a channel hero cannot post
// to (not invited, private, archived).
func notInChannel(err error) bool {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	switch se.Err {
	case "not_in_channel", "channel_not_found", "is_archived":
		return true
	}
	return false
}

// reply answers in a thread (everyone sees it).
func (a *Adapter) reply(team, ch, thread, text string) {
	a.out.send(team, ch, textJob(ch, thread, text))
}

// deliverySurface keys chat_threads rows that map a slash command's inbox
// delivery to the run it started (the command's own "thread").
const deliverySurface = "slack:delivery"

// chatID is a Slack channel as chat_bindings records it.
func chatID(team, channel string) string { return team + "/" + channel }

func (a *Adapter) onCommand(ctx context.Context, f url.Values, delivery string) error {
	w, err := a.who(ctx, f.Get("team_id"), f.Get("user_id"), f.Get("channel_id"))
	if err != nil {
		return err
	}
	w.delivery = delivery
	u := strings.TrimSpace(f.Get("response_url"))
	for _, p := range a.hooks {
		if strings.HasPrefix(u, p) {
			w.responseURL = u
		}
	}
	cmd, err := bot.Parse(f.Get("text"))
	if err != nil {
		var pe *bot.ParseError
		if errors.As(err, &pe) {
			msg := pe.Error()
			if pe.Suggestion != "" {
				msg += "\n\n" + bot.Help()
			}
			a.ephemeral(w, msg)
			return nil
		}
		return err
	}
	say := func(text string) { a.ephemeral(w, text) }
	return a.command(ctx, w, cmd, "", say)
}

// command runs a parsed command. thread is set when it came from a
// mention (replies go there); say answers the person.
func (a *Adapter) command(ctx context.Context, w who, cmd bot.Command, thread string, say func(string)) error {
	switch cmd.Verb {
	case bot.VerbHelp:
		say(bot.Help())
	case bot.VerbRun:
		return a.startRun(ctx, w, cmd.Task, thread, say)
	case bot.VerbUse:
		return a.use(ctx, w, cmd.Project, say)
	case bot.VerbProjects:
		return a.projects(ctx, w, say)
	case bot.VerbBudget:
		return a.budget(ctx, w, say)
	case bot.VerbStatus:
		ex, err := a.pickRun(ctx, w, cmd.ID, thread, false)
		if err != nil || ex == nil {
			if err == nil {
				say("No runs yet in this channel's project.")
			}
			return sayErr(say, err)
		}
		if ok, err := a.canSee(ctx, w, ex.ProjectID); err != nil || !ok {
			if err == nil {
				say(fmt.Sprintf("You are not a member of run `%s`'s project.", ex.ID))
			}
			return err
		}
		say(statusText(ex))
	case bot.VerbCancel:
		ex, err := a.pickRun(ctx, w, cmd.ID, thread, true)
		if err != nil || ex == nil {
			if err == nil {
				say("Nothing is running in this channel's project.")
			}
			return sayErr(say, err)
		}
		if err := a.eng.Cancel(ctx, ex.ID, w.principal()); err != nil {
			return sayErr(say, err)
		}
		say(fmt.Sprintf("Cancelling run `%s`.", ex.ID))
	case bot.VerbLink:
		return a.link(ctx, w, cmd.Code, say)
	case bot.VerbApprove, bot.VerbDeny:
		c, err := a.eng.Decide(ctx, cmd.ID, engine.Decision{Approve: cmd.Verb == bot.VerbApprove, By: w.principal(), Answer: cmd.Reason})
		if err != nil {
			return a.decisionRefused(w, cmd.ID, c, err, say)
		}
		if c.SurfaceRef != "" && strings.HasPrefix(c.SurfaceRef, w.team+"/") {
			a.showDecision(c)
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
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		say("Not found: " + err.Error())
	case errors.Is(err, engine.ErrNotAllowed), errors.Is(err, engine.ErrFinished), errors.Is(err, engine.ErrDraining), errors.Is(err, engine.ErrAlreadyDecided):
		say(capitalize(err.Error()) + ".")
	default:
		return err
	}
	return nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (a *Adapter) boundProject(ctx context.Context, w who) (*store.Project, error) {
	return a.db.ChannelProject(ctx, Surface, chatID(w.team, w.channel))
}

const unboundText = "This channel is not bound to a project yet. Run `/hero use <project>` here first (`/hero projects` lists them)."

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

func notLinked(w who) string {
	return fmt.Sprintf("hero does not know you yet (<@%s>): sign in on hero's settings page with the same email as your Slack account, or link this account there (Integrations → Link a chat account) and type `/hero link CODE` here.", w.user)
}

// link spends a one-time code from the settings page and maps this Slack
// account to the hero user who made it, replacing an earlier mapping
// (by email or an older link). The code is never logged or echoed.
func (a *Adapter) link(ctx context.Context, w who, code string, say func(string)) error {
	uid, err := a.db.UseLinkCodeLimited(ctx, code, w.id, a.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.log.Info("slack link code refused", "user", w.id)
		say(linkRefused)
		return nil
	case errors.Is(err, store.ErrLinkAccountLimit):
		a.log.Warn("slack link refused: too many wrong codes from this account", "user", w.id)
		say(fmt.Sprintf("Too many wrong link codes from this account: try again in %d minutes, with a new code from hero's settings page.", int(store.LinkFailWindow.Minutes())))
		return nil
	case errors.Is(err, store.ErrLinkGlobalLimit):
		a.log.Warn("slack link refused: too many wrong codes from everyone in the last hour", "user", w.id)
		say("Too many wrong link codes were typed to hero in the last hour, so linking is paused for everyone; try again within the hour, or sign in on hero's settings page with the email of your Slack account.")
		return nil
	}
	if err != nil {
		return fmt.Errorf("link slack account %s: %w", w.id, err)
	}
	u, err := a.db.UserByID(ctx, uid)
	if err != nil {
		return fmt.Errorf("link slack account %s: %w", w.id, err)
	}
	if err := a.db.LinkIdentity(ctx, Surface, w.team+"/"+w.user, u.ID); err != nil {
		return fmt.Errorf("link slack account %s: %w", w.id, err)
	}
	if err := a.db.AuditAccount(ctx, u.ID, Surface, w.team+"/"+w.user, store.AccountLinked, w.id); err != nil {
		return fmt.Errorf("link slack account %s: %w", w.id, err)
	}
	msg := fmt.Sprintf("Linked: this Slack account now acts as %s in hero.", u.Email)
	if w.hero != nil && w.hero.ID != u.ID {
		msg += fmt.Sprintf(" (It acted as %s before.)", w.hero.Email)
		a.log.Info("slack account re-linked", "user", w.id, "hero_user", u.Email, "was", w.hero.Email)
	} else {
		a.log.Info("slack account linked", "user", w.id, "hero_user", u.Email)
	}
	say(msg)
	return nil
}

const linkRefused = "That link code is unknown, already used or expired (a code works once, for 15 minutes). " +
	"Make a new one on hero's settings page (Integrations → Chat accounts → Link a chat account), then type `/hero link CODE` here."

// burnLinkCode spends a code someone typed where others can read it (a
// channel message rather than the private slash command), so nobody else
// can link their account with it.
func (a *Adapter) burnLinkCode(ctx context.Context, w who, code string, say func(string)) error {
	_, err := a.db.UseLinkCode(ctx, code, a.cfg.Now())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("cancel a link code posted in a channel: %w", err)
	}
	a.log.Info("slack link code posted in a channel; cancelled", "user", w.id)
	say("Link codes must stay private: that code was posted where others can read it, so I cancelled it. " +
		"Make a new one on hero's settings page and type `/hero link CODE` as a slash command (only you see it).")
	return nil
}

func (a *Adapter) startRun(ctx context.Context, w who, task, thread string, say func(string)) error {
	p, err := a.boundProject(ctx, w)
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
		say(fmt.Sprintf("You need to be a member of project *%s* to start runs; ask one of its owners.", p.Name))
		return nil
	}
	// The inbox delivers at least once: a command processed again after a
	// crash must not start a second run.
	if w.delivery != "" {
		if id, err := a.db.ThreadExecution(ctx, deliverySurface, w.delivery); err == nil {
			a.log.Info("slash command already started a run", "delivery", w.delivery, "run", id)
			return nil
		}
	} else if thread != "" {
		if id, err := a.db.ThreadExecution(ctx, Surface, threadRef(w.team, w.channel, thread)); err == nil {
			a.log.Info("mention already started a run", "thread", thread, "run", id)
			return nil
		}
	}
	if thread == "" {
		// A slash command leaves no message behind: start the thread.
		err := a.out.call(ctx, w.team, w.channel, &job{what: "chat.postMessage", paced: true, call: func(ctx context.Context, api *slack.Client) error {
			var err error
			_, thread, err = api.PostMessageContext(ctx, w.channel, slack.MsgOptionText(fmt.Sprintf("<@%s> asked hero (project *%s*):\n>%s", w.user, p.Name, strings.ReplaceAll(oneLine(task, 2800), "\n", "\n>")), false))
			return err
		}})
		if notInChannel(err) {
			say(fmt.Sprintf("I cannot post in this channel yet: invite me with `/invite @hero`, then try again (Slack said %v).", err))
			return nil
		}
		if err != nil {
			return fmt.Errorf("start thread: %w", err)
		}
	}
	ref := threadRef(w.team, w.channel, thread)
	gate := a.threadLock(ref)
	gate.Lock()
	defer func() { gate.Unlock(); a.releaseThread(ref) }()
	ex, err := a.eng.Start(a.lifetime(), engine.StartRequest{Project: p, Task: task, Surface: Surface, ThreadRef: ref, By: w.principal()})
	if err != nil {
		if errors.Is(err, engine.ErrDraining) {
			a.reply(w.team, w.channel, thread, "hero is restarting; try again in a minute.")
			return nil
		}
		return fmt.Errorf("start run: %w", err)
	}
	if err := a.db.LinkThread(ctx, Surface, ref, ex.ID); err != nil {
		a.log.Error("link thread to run", "run", ex.ID, "err", err)
	}
	if w.delivery != "" {
		if err := a.db.LinkThread(ctx, deliverySurface, w.delivery, ex.ID); err != nil {
			a.log.Error("record the command's run", "run", ex.ID, "err", err)
		}
	}
	a.reply(w.team, w.channel, thread, fmt.Sprintf("On it: run `%s` in project *%s*. Reply in this thread to steer it; `/hero cancel %s` stops it.", ex.ID, p.Name, ex.ID))
	return nil
}

func (a *Adapter) use(ctx context.Context, w who, name string, say func(string)) error {
	p, err := a.db.ProjectByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		say(fmt.Sprintf("There is no project named `%s`; `/hero projects` lists them.", name))
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
		say(fmt.Sprintf("Only an owner or admin of project *%s* can bind a channel to it.", p.Name))
		return nil
	}
	if err := a.db.BindChannel(ctx, Surface, chatID(w.team, w.channel), p.ID, w.id); err != nil {
		return err
	}
	a.reply(w.team, w.channel, "", fmt.Sprintf("<@%s> bound this channel to project *%s*: `/hero <task>` here starts a run in it.", w.user, p.Name))
	return nil
}

func (a *Adapter) projects(ctx context.Context, w who, say func(string)) error {
	ps, err := a.db.ListProjects(ctx)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		say("No projects yet: add one with `hero project add NAME --repo URL` or on the settings page.")
		return nil
	}
	if w.hero == nil {
		say(notLinked(w))
		return nil
	}
	bound, _ := a.boundProject(ctx, w)
	var b strings.Builder
	b.WriteString("*Your projects:*\n")
	shown := 0
	for _, p := range ps {
		if ok, err := a.canSee(ctx, w, p.ID); err != nil {
			return err
		} else if !ok {
			continue
		}
		shown++
		fmt.Fprintf(&b, "• `%s` %s", p.Name, p.RepoURL)
		if bound != nil && bound.ID == p.ID {
			b.WriteString(" ← this channel")
		}
		b.WriteByte('\n')
	}
	if shown == 0 {
		say("You are not a member of any project yet; ask a project owner to add you.")
		return nil
	}
	say(b.String())
	return nil
}

// canSee says whether w may see a project's runs and settings: any role
// in it (viewer included), or hero admin.
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

func (a *Adapter) budget(ctx context.Context, w who, say func(string)) error {
	p, err := a.boundProject(ctx, w)
	if errors.Is(err, store.ErrNotFound) {
		say(unboundText)
		return nil
	}
	if err != nil {
		return err
	}
	if ok, err := a.canSee(ctx, w, p.ID); err != nil || !ok {
		if err == nil {
			say(fmt.Sprintf("You are not a member of project *%s*.", p.Name))
		}
		return err
	}
	d := engine.DefaultLimits()
	g := p.Governance
	pick := func(v, def float64) float64 {
		if v > 0 {
			return v
		}
		return def
	}
	steps := g.MaxSteps
	if steps <= 0 {
		steps = d.MaxSteps
	}
	day := pick(g.BudgetPerDayUSD, d.BudgetPerDayUSD)
	now := a.cfg.Now().UTC()
	spent, err := a.db.ProjectSpendSince(ctx, p.ID, time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	say(fmt.Sprintf("*%s*: $%.2f per run, $%.2f per day (spent today: $%.4f, left: $%.4f), at most %d steps per run.",
		p.Name, pick(g.BudgetPerRunUSD, d.BudgetPerRunUSD), day, spent, max(day-spent, 0), steps))
	return nil
}

// pickRun finds the run a status/cancel means: the id given, else the
// thread's run, else the channel project's latest (running) run.
func (a *Adapter) pickRun(ctx context.Context, w who, id, thread string, running bool) (*store.Execution, error) {
	if id == "" && thread != "" {
		id, _ = a.db.ThreadExecution(ctx, Surface, threadRef(w.team, w.channel, thread))
	}
	if id != "" {
		return a.db.Execution(ctx, id)
	}
	p, err := a.boundProject(ctx, w)
	if err != nil {
		return nil, err
	}
	f := store.ExecutionFilter{ProjectID: p.ID, Limit: 1}
	if running {
		f.Statuses = []string{store.StatusQueued, store.StatusRunning, store.StatusWaiting}
	}
	exs, err := a.db.ListExecutions(ctx, f)
	if err != nil || len(exs) == 0 {
		return nil, err
	}
	return &exs[0], nil
}

func statusText(ex *store.Execution) string {
	cost := "cost unknown"
	if ex.CostKnown {
		cost = fmt.Sprintf("$%.4f", ex.CostUSD)
	}
	s := fmt.Sprintf("%s Run `%s` is *%s*: %d steps, %d tokens, %s.\n>%s", statusEmoji(ex.Status), ex.ID, ex.Status, ex.Steps, ex.TokensIn+ex.TokensOut, cost, oneLine(ex.Task, 300))
	if ex.Summary != "" {
		s += "\n" + ex.Summary
	}
	if ex.Error != "" {
		s += "\nError: " + ex.Error
	}
	return s
}

// decisionRefused explains why a decision did not count.
func (a *Adapter) decisionRefused(w who, id string, c *store.Confirmation, err error, say func(string)) error {
	switch {
	case errors.Is(err, engine.ErrNotAllowed):
		say(":no_entry: You are not allowed to decide this: " + err.Error() + ".")
	case errors.Is(err, engine.ErrAlreadyDecided):
		if c != nil && c.Status == store.ConfirmExpired {
			if c.SurfaceRef != "" {
				a.showDecision(c)
			}
			say(fmt.Sprintf(":hourglass: Confirmation `%s` expired at %s; nothing was done.", c.ID, slackDate(c.ExpiresAt)))
		} else if c != nil {
			say(fmt.Sprintf("Confirmation `%s` was already %s by %s.", c.ID, c.Status, c.DecidedBy))
		} else {
			say(capitalize(err.Error()) + ".")
		}
	case errors.Is(err, store.ErrNotFound):
		say(fmt.Sprintf("There is no confirmation `%s`; the id is shown with the request.", id))
	default:
		return err
	}
	return nil
}

func (a *Adapter) onInteraction(ctx context.Context, ic *slack.InteractionCallback) error {
	if ic.Type != slack.InteractionTypeBlockActions {
		return nil
	}
	team, ch := interactionTeam(ic), interactionChannel(ic)
	for _, act := range ic.ActionCallback.BlockActions {
		if act.ActionID == actionCardMove || act.ActionID == actionCardStart {
			w, err := a.who(ctx, team, ic.User.ID, ch)
			if err != nil {
				return err
			}
			if err := a.onCardAction(ctx, w, act); err != nil {
				return err
			}
			continue
		}
		if act.ActionID != actionApprove && act.ActionID != actionDeny {
			continue
		}
		w, err := a.who(ctx, team, ic.User.ID, ch)
		if err != nil {
			return err
		}
		c, err := a.eng.Decide(ctx, act.Value, engine.Decision{Approve: act.ActionID == actionApprove, By: w.principal()})
		if err != nil {
			if rerr := a.decisionRefused(w, act.Value, c, err, func(s string) { a.ephemeral(w, s) }); rerr != nil {
				return rerr
			}
			continue
		}
		if c.SurfaceRef == "" && ic.Container.MessageTs != "" {
			c.SurfaceRef = threadRef(team, ch, ic.Container.MessageTs)
		}
		a.showDecision(c)
	}
	return nil
}

func interactionTeam(ic *slack.InteractionCallback) string {
	if ic.Team.ID != "" {
		return ic.Team.ID
	}
	return ic.User.TeamID
}

func interactionChannel(ic *slack.InteractionCallback) string {
	if ic.Channel.ID != "" {
		return ic.Channel.ID
	}
	return ic.Container.ChannelID
}

// refuse tells a person in a workspace hero is not connected to why
// nothing happens: through the response_url Slack gave (it needs no
// token), else ephemerally with the workspace's installed token; with
// neither, hero has no way to answer and only logs it.
func (a *Adapter) refuse(ctx context.Context, team, user, channel, responseURL string) {
	a.log.Warn("request from a Slack workspace hero is not connected to refused", "team", team, "user", user)
	w := who{team: team, user: user, channel: channel, id: identity(team, user)}
	for _, p := range a.hooks {
		if responseURL != "" && strings.HasPrefix(responseURL, p) {
			w.responseURL = responseURL
		}
	}
	if w.responseURL != "" {
		if err := slack.PostWebhookCustomHTTPContext(ctx, w.responseURL, a.cfg.HTTPClient, &slack.WebhookMessage{Text: refusal, ResponseType: "ephemeral"}); err != nil {
			a.log.Warn("answer a refused Slack workspace", "team", team, "err", err)
		}
		return
	}
	if _, _, err := a.db.SlackTeamToken(ctx, team); err == nil && channel != "" && user != "" {
		a.ephemeral(w, refusal)
	}
}

// eventCallback is the Events API envelope with the fields hero reads.
type eventCallback struct {
	Type           string `json:"type"`
	TeamID         string `json:"team_id"`
	EventID        string `json:"event_id"`
	Authorizations []struct {
		UserID string `json:"user_id"`
		IsBot  bool   `json:"is_bot"`
	} `json:"authorizations"`
	Event struct {
		Type     string `json:"type"`
		Subtype  string `json:"subtype"`
		User     string `json:"user"`
		BotID    string `json:"bot_id"`
		Text     string `json:"text"`
		TS       string `json:"ts"`
		ThreadTS string `json:"thread_ts"`
		Channel  string `json:"channel"`
		ChanType string `json:"channel_type"`
		Team     string `json:"team"`
		Tab      string `json:"tab"` // app_home_opened
	} `json:"event"`
}

var mentionRE = regexp.MustCompile(`<@([A-Z0-9]+)(\|[^>]*)?>`)

func (a *Adapter) onEvent(ctx context.Context, ev *eventCallback) error {
	e := ev.Event
	if ev.Type == "event_callback" && e.Type == "app_home_opened" && e.Tab == "home" {
		return a.publishHome(ctx, ev.TeamID, e.User)
	}
	if ev.Type != "event_callback" || (e.Type != "app_mention" && e.Type != "message") {
		return nil
	}
	if e.BotID != "" || (e.Subtype != "" && e.Subtype != "thread_broadcast") || e.User == "" || e.Channel == "" {
		return nil // hero's own messages, edits, joins: not for hero
	}
	team := ev.TeamID
	if team == "" {
		team = e.Team
	}
	if ok, err := a.allowedTeam(ctx, team); err != nil || !ok {
		if err == nil && (e.Type == "app_mention" || e.ChanType == "im") {
			if _, _, terr := a.db.SlackTeamToken(ctx, team); terr == nil {
				thread := e.ThreadTS
				if thread == "" {
					thread = e.TS
				}
				a.log.Warn("mention from a Slack workspace hero is not connected to refused", "team", team, "user", e.User)
				a.reply(team, e.Channel, thread, refusal)
			}
		}
		return err
	}
	botUser := ""
	for _, au := range ev.Authorizations {
		if au.IsBot {
			botUser = au.UserID
		}
	}
	if botUser == "" && e.Type == "message" {
		botUser = a.botUser(ctx, team)
	}
	inThread := e.ThreadTS != "" && e.ThreadTS != e.TS
	direct := e.ChanType == "im" // a direct message is always for hero
	if e.Type == "message" && !direct && (!inThread || (botUser != "" && strings.Contains(e.Text, "<@"+botUser+">"))) {
		return nil // top-level chatter, or a mention (its app_mention event handles it)
	}
	mentioned := e.Type == "app_mention" || direct
	text := strings.TrimSpace(mentionRE.ReplaceAllStringFunc(e.Text, func(m string) string {
		if sub := mentionRE.FindStringSubmatch(m); e.Type == "app_mention" && (botUser == "" || sub[1] == botUser) {
			return ""
		}
		return m
	}))
	if inThread {
		id, err := a.db.ThreadExecution(ctx, Surface, threadRef(team, e.Channel, e.ThreadTS))
		if errors.Is(err, store.ErrNotFound) {
			// A card's thread: replies there steer the card's latest run.
			id, err = a.cardRun(ctx, threadRef(team, e.Channel, e.ThreadTS))
		}
		switch {
		case err == nil:
			ex, err := a.db.Execution(ctx, id)
			if err != nil {
				return err
			}
			if !mentioned && (ex.Requester != identity(team, e.User) || isFinal(ex.Status)) {
				return nil // people talking in the thread, or about a run that ended
			}
			w, err := a.who(ctx, team, e.User, e.Channel)
			if err != nil {
				return err
			}
			return a.inRunThread(ctx, w, ex, mentioned, text, e.ThreadTS)
		case !errors.Is(err, store.ErrNotFound):
			return err
		case !mentioned:
			return nil
		}
	}
	w, err := a.who(ctx, team, e.User, e.Channel)
	if err != nil {
		return err
	}
	// A mention outside a run's thread: a command, answered in its thread.
	thread := e.TS
	if inThread {
		thread = e.ThreadTS
	}
	say := func(s string) { a.reply(team, e.Channel, thread, s) }
	cmd, err := bot.Parse(text)
	if err != nil {
		var pe *bot.ParseError
		if errors.As(err, &pe) {
			msg := pe.Error()
			if pe.Suggestion != "" {
				msg += "\n\n" + bot.Help()
			}
			say(msg)
			return nil
		}
		return err
	}
	if cmd.Verb == bot.VerbLink && !direct {
		return a.burnLinkCode(ctx, w, cmd.Code, say)
	}
	return a.command(ctx, w, cmd, thread, say)
}

// inRunThread handles a reply or mention in a run's thread: the answer to
// a pending question, a status/cancel, or steering.
func (a *Adapter) inRunThread(ctx context.Context, w who, ex *store.Execution, mentioned bool, text, thread string) error {
	runID := ex.ID
	say := func(s string) { a.reply(w.team, w.channel, thread, s) }
	if text == "" {
		return nil
	}
	if mentioned {
		if cmd, err := bot.Parse(text); err == nil && cmd.Verb == bot.VerbLink {
			return a.burnLinkCode(ctx, w, cmd.Code, say)
		} else if err == nil && (cmd.Verb == bot.VerbStatus || cmd.Verb == bot.VerbCancel || cmd.Verb == bot.VerbHelp) {
			return a.command(ctx, w, cmd, thread, say)
		}
	}
	pending, err := a.db.PendingConfirmations(ctx, runID)
	if err != nil {
		return err
	}
	for _, c := range pending {
		if c.Kind == store.ConfirmKindQuestion {
			dc, err := a.eng.Decide(ctx, c.ID, engine.Decision{Approve: true, By: w.principal(), Answer: text})
			if err != nil {
				return a.decisionRefused(w, c.ID, dc, err, say)
			}
			if dc.SurfaceRef != "" {
				a.showDecision(dc)
			}
			return nil
		}
	}
	if err := a.eng.Steer(ctx, runID, w.principal(), text); err != nil {
		if errors.Is(err, engine.ErrFinished) {
			say(fmt.Sprintf("Run `%s` has ended; start a new one with `/hero run <task>` or by mentioning hero in the channel.", runID))
			return nil
		}
		return sayErr(say, err)
	}
	return nil
}

func isFinal(status string) bool {
	switch status {
	case store.StatusSucceeded, store.StatusFailed, store.StatusCancelled, store.StatusInterrupted:
		return true
	}
	return false
}
