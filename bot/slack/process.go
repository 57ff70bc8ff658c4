package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/slack-go/slack"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/inbox"
	"github.com/hero-dev/hero/kanban"
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
		return a.onInteraction(ctx, ic, d.DeliveryID)
	default:
		return a.onEvent(ctx, dec.ev, d.DeliveryID)
	}
}

// who is a person acting in Slack.
type who struct {
	team, user, channel string
	responseURL         string      // a slash command's response_url: reaches the person where hero is not a member
	id                  string      // "slack:T/U"
	direct              bool        // channel is a direct message (an IM), which belongs to no project
	hero                *store.User // set by Adapter.who; nil: not known to hero
}

func newWho(team, user, channel string) who {
	return who{team: team, user: user, channel: channel, id: identity(team, user), direct: isIM(channel)}
}

// isIM says whether a Slack channel is a direct message: IM channel ids
// start with D (a group DM's start with G, like a private channel's).
func isIM(channel string) bool { return strings.HasPrefix(channel, "D") }

// who resolves a Slack person with their hero user, for what the
// dispatcher does not do (the board's buttons).
func (a *Adapter) who(ctx context.Context, team, user, channel string) (who, error) {
	w := newWho(team, user, channel)
	u, err := a.heroUser(ctx, team, user)
	if err != nil {
		return w, fmt.Errorf("map slack user %s: %w", w.id, err)
	}
	w.hero = u
	return w, nil
}

// principal is w as the engine authorises them: Slack vouches for no
// role, so an unlinked person has none.
func (w who) principal() engine.Principal {
	p := engine.Principal{ID: w.id}
	if w.hero != nil {
		p.UserID = w.hero.ID
	}
	return p
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

// chatID is a Slack channel as chat_bindings records it.
func chatID(team, channel string) string { return team + "/" + channel }

// request is a Slack request as the dispatcher reads it.
func (a *Adapter) request(w who, cmd bot.Command, thread, delivery string, private bool) *bot.Request {
	r := &bot.Request{Command: cmd, Delivery: delivery, Private: private,
		Actor: bot.Actor{Surface: Surface, ID: w.team + "/" + w.user},
		Place: bot.Place{Surface: Surface, Channel: chatID(w.team, w.channel), Direct: w.direct}}
	if thread != "" {
		r.Place.Thread = threadRef(w.team, w.channel, thread)
	}
	return r
}

// HeroUser is the dispatcher's directory: see heroUser.
func (a *Adapter) HeroUser(ctx context.Context, act bot.Actor) (*store.User, error) {
	team, user, _ := strings.Cut(act.ID, "/")
	return a.heroUser(ctx, team, user)
}

// conversation renders the dispatcher's answers in Slack: private ones
// ephemeral, public ones in the thread; a slash command's run gets a
// thread of its own.
type conversation struct {
	a      *Adapter
	w      who
	thread string // the thread the request came from ("" for a slash command)
	quiet  bool   // a button click: its message is edited, nothing else is said
	unhold func() // opens the gate of the thread this request opened
}

func (a *Adapter) conversation(w who, thread string) *conversation {
	return &conversation{a: a, w: w, thread: thread}
}

func (c *conversation) Say(ctx context.Context, m bot.Message) error {
	if cf := m.Confirmation; cf != nil && strings.HasPrefix(cf.SurfaceRef, c.w.team+"/") {
		c.a.showDecision(cf) // the buttons' message shows the outcome at once
	}
	switch {
	case m.Kind == bot.Started:
		_, _, ts, err := parseRef(m.Run.ThreadRef)
		if err != nil {
			return err
		}
		c.a.reply(c.w.team, c.w.channel, ts, m.Text)
		c.release()
	case m.Kind == bot.Ack && c.quiet:
	case m.Private && c.thread == "":
		c.a.ephemeral(c.w, m.Text) // a slash command: only they see it

	default:
		c.a.reply(c.w.team, c.w.channel, c.thread, m.Text)
	}
	return nil
}

// OpenThread posts the request in the channel: a slash command leaves no
// message behind, and the run needs a thread. Until the run is
// announced, its own messages wait (see hold).
func (c *conversation) OpenThread(ctx context.Context, p *store.Project, task string) (string, error) {
	w := c.w
	var thread string
	err := c.a.out.call(ctx, w.team, w.channel, &job{what: "chat.postMessage", paced: true, call: func(ctx context.Context, api *slack.Client) error {
		var err error
		_, thread, err = api.PostMessageContext(ctx, w.channel, slack.MsgOptionText(fmt.Sprintf("<@%s> asked hero (project *%s*):\n>%s", w.user, p.Name, strings.ReplaceAll(bot.OneLine(task, 2800), "\n", "\n>")), false))
		return err
	}})
	if notInChannel(err) {
		c.a.ephemeral(w, fmt.Sprintf("I cannot post in this channel yet: invite me with `/invite @hero`, then try again (Slack said %v).", err))
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("start thread: %w", err)
	}
	c.hold(threadRef(w.team, w.channel, thread))
	return threadRef(w.team, w.channel, thread), nil
}

// hold makes the run of ref wait with its first message until release.
func (c *conversation) hold(ref string) { c.unhold = c.a.gates.Hold(ref) }

func (c *conversation) release() {
	if c.unhold != nil {
		c.unhold()
		c.unhold = nil
	}
}

func (a *Adapter) onCommand(ctx context.Context, f url.Values, delivery string) error {
	w := newWho(f.Get("team_id"), f.Get("user_id"), f.Get("channel_id"))
	w.direct = w.direct || f.Get("channel_name") == "directmessage"
	u := strings.TrimSpace(f.Get("response_url"))
	for _, p := range a.hooks {
		if strings.HasPrefix(u, p) {
			w.responseURL = u
		}
	}
	cmd, err := bot.Parse(f.Get("text"))
	if err != nil {
		return a.parseError(err, func(s string) { a.ephemeral(w, s) })
	}
	conv := a.conversation(w, "")
	defer conv.release()
	return a.dispatch.Dispatch(ctx, a.request(w, cmd, "", delivery, true), a, conv)
}

// parseError answers a command that does not parse.
func (a *Adapter) parseError(err error, say func(string)) error {
	msg, ok := bot.ParseErrorReply(err)
	if !ok {
		return err
	}
	say(msg)
	return nil
}

func (a *Adapter) onInteraction(ctx context.Context, ic *slack.InteractionCallback, delivery string) error {
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
		verb := map[string]string{actionApprove: bot.VerbApprove, actionDeny: bot.VerbDeny}[act.ActionID]
		if verb == "" {
			continue
		}
		// The engine reports the decision, and the button's message is
		// edited from there; here only refusals are said.
		conv := a.conversation(newWho(team, ic.User.ID, ch), "")
		conv.quiet = true
		if err := a.dispatch.Dispatch(ctx, a.request(conv.w, bot.Command{Verb: verb, ID: act.Value}, "", delivery, true), a, conv); err != nil {
			return err
		}
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
	w := newWho(team, user, channel)
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

func (a *Adapter) onEvent(ctx context.Context, ev *eventCallback, delivery string) error {
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
	direct := e.ChanType == "im" || isIM(e.Channel) // a direct message is always for hero
	if ok, err := a.allowedTeam(ctx, team); err != nil || !ok {
		if err == nil && (e.Type == "app_mention" || direct) {
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
	w := newWho(team, e.User, e.Channel)
	w.direct = direct
	if inThread {
		id, err := a.db.ThreadExecution(ctx, Surface, threadRef(team, e.Channel, e.ThreadTS))
		if errors.Is(err, store.ErrNotFound) {
			// A card's thread: replies there steer the card's latest run.
			id, err = kanban.CardThreadRun(ctx, a.db, Surface, threadRef(team, e.Channel, e.ThreadTS))
		}
		switch {
		case err == nil:
			ex, err := a.db.Execution(ctx, id)
			if err != nil {
				return err
			}
			if !mentioned && (ex.Requester != w.id || store.Final(ex.Status)) {
				return nil // people talking in the thread, or about a run that ended
			}
			return a.inRunThread(ctx, w, ex, mentioned, direct, text, e.ThreadTS, delivery)
		case !errors.Is(err, store.ErrNotFound):
			return err
		case !mentioned:
			return nil
		}
	}
	// A mention outside a run's thread: a command, answered in its thread.
	thread := e.TS
	if inThread {
		thread = e.ThreadTS
	}
	cmd, err := bot.Parse(text)
	if err != nil {
		return a.parseError(err, func(s string) { a.reply(team, e.Channel, thread, s) })
	}
	conv := a.conversation(w, thread)
	conv.hold(threadRef(team, e.Channel, thread))
	defer conv.release()
	return a.dispatch.Dispatch(ctx, a.request(w, cmd, thread, delivery, direct), a, conv)
}

// inRunThread handles a reply or mention in a run's thread: a status,
// cancel, help or link command when hero is mentioned, else the answer
// to a pending question or steering.
func (a *Adapter) inRunThread(ctx context.Context, w who, ex *store.Execution, mentioned, direct bool, text, thread, delivery string) error {
	if text == "" {
		return nil
	}
	conv := a.conversation(w, thread)
	req := a.request(w, bot.Command{}, thread, delivery, direct)
	if mentioned {
		if cmd, err := bot.Parse(text); err == nil && (cmd.Verb == bot.VerbLink || cmd.Verb == bot.VerbStatus || cmd.Verb == bot.VerbCancel || cmd.Verb == bot.VerbHelp) {
			req.Command = cmd
			return a.dispatch.Dispatch(ctx, req, a, conv)
		}
	}
	return a.dispatch.Steer(ctx, req, a, conv, ex, text)
}
