// Package slack is hero's Slack surface: slash commands, @mentions and
// thread replies start and steer runs; one progress message per run is
// edited in place; confirmations are Block Kit Approve/Deny buttons.
//
// Lifecycle: New → Mount (HTTP routes) → Run (inbox worker, Socket Mode
// when an app token is configured) until its context ends. Every request
// from Slack is verified, persisted to the inbox and only then
// acknowledged; the inbox worker processes it afterwards, so a crash loses
// nothing and a retry does nothing twice. Everything hero sends goes
// through per-channel lanes that pace posts, honour 429 Retry-After and
// never drop a message.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/inbox"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// Surface is the name runs started here carry (store.Execution.Surface),
// the inbox source of Slack deliveries and the chat_bindings surface.
const Surface = "slack"

// Config holds the Slack settings. SigningSecret is required for the HTTP
// routes; BotToken (single workspace) or installed workspaces (OAuth) give
// the Web API token; AppToken turns on Socket Mode.
type Config struct {
	SigningSecret string
	BotToken      string
	AppToken      string
	// APIURL is the Web API base ("https://slack.com/api/"); tests and
	// proxies point it elsewhere.
	APIURL string
	// OAuth ("Add to Slack"): the app's client id and secret, the callback
	// URL registered with Slack (SLACK_REDIRECT_URI) and the bot scopes
	// asked for.
	ClientID, ClientSecret, RedirectURL string
	Scopes                              []string
	// Sessions tells which hero user is logged in on the settings page:
	// only a site administrator may install hero into a workspace.
	// Required with ClientID.
	Sessions Sessions
	// Owner names this replica in inbox claims.
	Owner string
	// UpdateInterval is the least time between two edits of one message
	// (default 1 s); PostInterval paces posts per channel (default 1 s,
	// after a burst of PostBurst, default 4).
	UpdateInterval time.Duration
	PostInterval   time.Duration
	PostBurst      int
	// LongOutput is the size above which a command's output is uploaded as
	// a file in the thread instead of shown inline (default 2,500 bytes).
	LongOutput int
	// WorkerPoll is the inbox worker's idle poll (default 1 s).
	WorkerPoll time.Duration
	// Board moves cards from their messages' buttons (nil: the buttons
	// do nothing); the adapter is also one of its projections.
	Board kanban.ChatBoard
	// Schedules answers /hero schedule (nil: not offered).
	Schedules  bot.Schedules
	HTTPClient *http.Client
	Now        func() time.Time
}

// Adapter implements engine.Surface for Slack and serves Slack's requests.
type Adapter struct {
	cfg    Config
	db     *store.DB
	eng    *engine.Engine
	log    *slog.Logger
	inbox  *store.InboxWriter
	worker *inbox.Worker
	out    *outbox
	// dispatch does what people ask (the conversation layer).
	dispatch *bot.Dispatcher

	mu      sync.Mutex
	life    context.Context        // Run's context: runs started here live as long
	clients map[string]*teamClient // by team id ("" = the configured bot token)
	botTeam string                 // SLACK_BOT_TOKEN's workspace, once auth.test named it
	runs    bot.Runs[*runView]     // by run id
	gates   bot.Gates              // a run's updates wait while its thread is announced
	// hooks are the prefixes a slash command's response_url may have
	// (hero posts there only when it is not in the channel).
	hooks []string
}

type teamClient struct {
	api       *slack.Client
	botUserID string
}

// New checks cfg and returns an adapter; register it with
// eng.AddSurface and mount its routes.
func New(cfg Config, db *store.DB, eng *engine.Engine, log *slog.Logger) (*Adapter, error) {
	switch {
	case db == nil || eng == nil:
		return nil, errors.New("slack: store and engine are required")
	case cfg.BotToken == "" && cfg.ClientID == "":
		return nil, errors.New("slack: set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (Add to Slack)")
	case cfg.ClientID != "" && cfg.Sessions == nil:
		return nil, errors.New("slack: Add to Slack (SLACK_CLIENT_ID) needs the settings page, where a site administrator starts the install")
	case cfg.AppToken != "" && !strings.HasPrefix(cfg.AppToken, "xapp-"):
		return nil, errors.New("slack: SLACK_APP_TOKEN must be an app-level token (xapp-…) with the connections:write scope")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("surface", Surface)
	if cfg.APIURL == "" {
		cfg.APIURL = slack.APIURL
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	if cfg.Owner == "" {
		cfg.Owner = "hero"
	}
	if cfg.UpdateInterval <= 0 {
		cfg.UpdateInterval = time.Second
	}
	if cfg.PostInterval <= 0 {
		cfg.PostInterval = time.Second
	}
	if cfg.PostBurst <= 0 {
		cfg.PostBurst = 4
	}
	if cfg.LongOutput <= 0 {
		cfg.LongOutput = 2500
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"app_mentions:read", "channels:history", "groups:history", "im:history", "chat:write", "commands", "files:write", "users:read", "users:read.email"}
	}
	a := &Adapter{
		cfg: cfg, db: db, eng: eng, log: log,
		inbox:   store.NewInboxWriter(db, 0, 0),
		clients: map[string]*teamClient{},
		hooks:   []string{"https://hooks.slack.com/", "https://hooks.slack-gov.com/"},
	}
	a.out = newOutbox(a, log)
	d, err := bot.NewDispatcher(eng, db, a.lifetime, log, cfg.Now, bot.WithSchedules(cfg.Schedules), bot.WithBoard(kanban.Chat(cfg.Board)))
	if err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	a.dispatch = d
	w, err := inbox.NewWorker(db, Surface, a.process, inbox.Config{Owner: cfg.Owner, Poll: cfg.WorkerPoll, Backoff: 2 * time.Second}, log)
	if err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	a.worker = w
	return a, nil
}

// Name is the surface name runs carry.
func (a *Adapter) Name() string { return Surface }

// OnHandled sets a hook called after each processed delivery (tests,
// metrics). Call it before Run.
func (a *Adapter) OnHandled(f func(d *store.Delivery, err error)) { a.worker.OnHandled(f) }

// Run processes persisted deliveries (and, with an app token, holds the
// Socket Mode connection) until ctx ends, then lets queued messages go out
// for up to 10 s.
func (a *Adapter) Run(ctx context.Context) error {
	a.mu.Lock()
	a.life = ctx
	a.mu.Unlock()
	errc := make(chan error, 2)
	go func() { errc <- a.worker.Run(ctx) }()
	n := 1
	if a.cfg.AppToken != "" {
		n++
		go func() { errc <- a.runSocketMode(ctx) }()
	}
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	a.out.drain(dctx)
	return first
}

// lifetime is the context runs are started with: Run's, not a request's.
func (a *Adapter) lifetime() context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.life == nil {
		return context.Background()
	}
	return a.life
}

// client returns the Web API client for a workspace: its installed token,
// else the configured bot token.
func (a *Adapter) client(ctx context.Context, team string) (*teamClient, error) {
	a.mu.Lock()
	c := a.clients[team]
	a.mu.Unlock()
	if c != nil {
		return c, nil
	}
	token := a.cfg.BotToken
	botUser := ""
	if team != "" {
		t, tok, err := a.db.SlackTeamToken(ctx, team)
		switch {
		case err == nil:
			token, botUser = tok, t.BotUserID
		case errors.Is(err, store.ErrNotFound):
		default:
			return nil, fmt.Errorf("slack workspace %s: %w", team, err)
		}
	}
	if token == "" {
		return nil, fmt.Errorf("slack workspace %s is not installed: add hero to it with Add to Slack, or set SLACK_BOT_TOKEN", team)
	}
	c = &teamClient{api: a.newAPI(token), botUserID: botUser}
	a.mu.Lock()
	if prev := a.clients[team]; prev != nil {
		c = prev
	} else {
		a.clients[team] = c
	}
	a.mu.Unlock()
	return c, nil
}

func (a *Adapter) newAPI(token string, opts ...slack.Option) *slack.Client {
	return slack.New(token, append([]slack.Option{slack.OptionAPIURL(a.cfg.APIURL), slack.OptionHTTPClient(a.cfg.HTTPClient)}, opts...)...)
}

// botUser returns the bot's own user id in a workspace (auth.test, once).
func (a *Adapter) botUser(ctx context.Context, team string) string {
	c, err := a.client(ctx, team)
	if err != nil {
		return ""
	}
	a.mu.Lock()
	id := c.botUserID
	a.mu.Unlock()
	if id != "" {
		return id
	}
	res, err := c.api.AuthTestContext(ctx)
	if err != nil {
		a.log.Warn("auth.test", "team", team, "err", err)
		return ""
	}
	a.mu.Lock()
	c.botUserID = res.UserID
	a.mu.Unlock()
	return res.UserID
}

// identity is the platform identity hero records for a Slack user.
func identity(team, user string) string { return "slack:" + team + "/" + user }

// heroUser maps a Slack user to a hero user: a linked identity, else the
// user's confirmed email from users.info (then linked for next time) —
// only in a workspace a site administrator installed or allowed, and not
// for an account its person unlinked on the settings page. Returns nil
// (no error) when the person is unknown to hero.
func (a *Adapter) heroUser(ctx context.Context, team, user string) (*store.User, error) {
	ext := team + "/" + user
	u, err := a.db.UserByIdentity(ctx, Surface, ext)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if ok, err := a.allowedTeam(ctx, team); err != nil || !ok {
		return nil, err
	}
	if gone, err := a.db.IdentityUnlinked(ctx, Surface, ext); err != nil || gone {
		return nil, err
	}
	c, err := a.client(ctx, team)
	if err != nil {
		return nil, err
	}
	info, err := c.api.GetUserInfoContext(ctx, user)
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		// user_not_found, missing_scope (users:read.email), …: unknown.
		a.log.Warn("users.info refused; treating the user as unknown to hero", "user", ext, "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("users.info %s: %w", user, err)
	}
	if info.Profile.Email == "" || !info.IsEmailConfirmed || info.IsBot {
		return nil, nil
	}
	u, err = a.db.UserByEmail(ctx, info.Profile.Email)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := a.db.LinkIdentity(ctx, Surface, ext, u.ID); err != nil {
		a.log.Warn("link slack identity", "user", ext, "err", err)
	} else if err := a.db.AuditAccount(ctx, u.ID, Surface, ext, store.AccountMatched, identity(team, user)); err != nil {
		a.log.Warn("audit slack identity", "user", ext, "err", err)
	}
	return u, nil
}

// threadRef is how a run's Slack thread is recorded: team/channel/ts.
func threadRef(team, channel, ts string) string { return team + "/" + channel + "/" + ts }

func parseRef(ref string) (team, channel, ts string, err error) {
	parts := strings.SplitN(ref, "/", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return "", "", "", fmt.Errorf("slack: malformed message reference %q (want team/channel/ts)", ref)
	}
	return parts[0], parts[1], parts[2], nil
}
