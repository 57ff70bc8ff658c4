// Package discord is hero's Discord surface: `/hero` slash commands and
// @hero mentions start runs in a thread, replies that mention hero (or
// answer hero's messages) steer them, and confirmations are Approve/Deny
// buttons.
//
// Two transports, as Discord requires. Slash commands and button clicks
// arrive as signed HTTP interactions (POST /discord/interactions);
// mentions arrive over the gateway, a websocket that exactly one replica
// holds through a singleton lease in the database. Both are persisted to
// the inbox before anything else happens and worked by the inbox worker,
// so a crash loses nothing and a retry does nothing twice. Everything hero
// says goes through discordgo's REST client (per-route rate limits, 429
// retry_after) behind a transport that points it at DISCORD_API_URL and
// keeps to the global 50 requests per second.
//
// Lifecycle: New → Mount (the HTTP route) → Run (inbox worker and, unless
// turned off, the gateway) until its context ends.
package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/inbox"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// Surface is the name runs started here carry (store.Execution.Surface),
// the inbox source of Discord deliveries and the chat_bindings surface.
const Surface = "discord"

// GatewayLease is the singleton lease name of the gateway session.
const GatewayLease = "discord-gateway"

// Config holds the Discord settings.
type Config struct {
	// AppID is the application id (DISCORD_APP_ID); PublicKey its hex
	// Ed25519 key (DISCORD_PUBLIC_KEY) that signs interactions; BotToken
	// the bot's token (DISCORD_BOT_TOKEN).
	AppID, PublicKey, BotToken string
	// APIURL is the REST base (DISCORD_API_URL, default DefaultAPIURL).
	APIURL string
	// Gateway, when set, is the gateway session this replica holds while
	// it has the lease; nil runs interactions only (DISCORD_GATEWAY=off).
	Gateway Gateway
	// Owner names this replica in inbox claims and the gateway lease.
	Owner string
	// LeaseTTL is how long the gateway lease lasts unless renewed
	// (default 30 s; renewed every third of it).
	LeaseTTL time.Duration
	// IdentifyBackoff is the first wait after a failed gateway connection
	// (default 5 s, doubling up to 10 minutes): Discord allows 1,000
	// IDENTIFYs a day and resets the bot token beyond that.
	IdentifyBackoff time.Duration
	// UpdateInterval is the least time between two edits of a run's
	// progress message (default 1 s).
	UpdateInterval time.Duration
	// GlobalRate bounds REST requests per second (default 50, Discord's
	// global limit).
	GlobalRate int
	// WorkerPoll is the inbox worker's idle poll (default 1 s).
	WorkerPoll time.Duration
	HTTPClient *http.Client
	Now        func() time.Time
	// Schedules answers /hero schedule (nil: not offered).
	Schedules bot.Schedules
	// Board is the kanban board: /hero card and /hero board, and forum
	// posts whose tags move cards (nil: not offered).
	Board kanban.ChatBoard
}

// Adapter implements engine.Surface for Discord and serves Discord's
// interactions.
type Adapter struct {
	cfg    Config
	key    PublicKey
	db     *store.DB
	eng    *engine.Engine
	log    *slog.Logger
	api    *discordgo.Session // REST only; the gateway has its own
	inbox  *store.InboxWriter
	worker *inbox.Worker
	// dispatch is the conversation layer: Discord decodes into it and
	// renders what it says.
	dispatch *bot.Dispatcher

	mu      sync.Mutex
	life    context.Context
	botID   string
	runs    bot.Runs[*runView] // by run id
	gates   bot.Gates          // a run's updates wait while its thread is announced
	gateway string             // "", "connected", or the last error: for the settings page
}

// New checks cfg and returns an adapter; register it with eng.AddSurface
// and mount its route.
func New(cfg Config, db *store.DB, eng *engine.Engine, log *slog.Logger) (*Adapter, error) {
	switch {
	case db == nil || eng == nil:
		return nil, errors.New("discord: store and engine are required")
	case cfg.AppID == "" || cfg.PublicKey == "" || cfg.BotToken == "":
		return nil, errors.New("discord: set DISCORD_APP_ID, DISCORD_PUBLIC_KEY and DISCORD_BOT_TOKEN (the application's General Information and Bot pages)")
	}
	key, err := ParsePublicKey(cfg.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("surface", Surface)
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if cfg.Owner == "" {
		cfg.Owner = "hero"
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	if cfg.IdentifyBackoff <= 0 {
		cfg.IdentifyBackoff = 5 * time.Second
	}
	if cfg.UpdateInterval <= 0 {
		cfg.UpdateInterval = time.Second
	}
	if cfg.GlobalRate <= 0 {
		cfg.GlobalRate = 50
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	api, err := newSession(cfg.BotToken, cfg.APIURL, cfg.AppID, cfg.HTTPClient, cfg.GlobalRate)
	if err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	a := &Adapter{cfg: cfg, key: key, db: db, eng: eng, log: log, api: api,
		inbox: store.NewInboxWriter(db, 0, 0),
	}
	if a.dispatch, err = bot.NewDispatcher(eng, db, a.lifetime, log, cfg.Now, bot.WithSchedules(cfg.Schedules), bot.WithBoard(kanban.Chat(cfg.Board))); err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	w, err := inbox.NewWorker(db, Surface, a.process, inbox.Config{Owner: cfg.Owner, Poll: cfg.WorkerPoll, Backoff: 2 * time.Second}, log)
	if err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	a.worker = w
	return a, nil
}

// Name is the surface name runs carry.
func (a *Adapter) Name() string { return Surface }

// OnHandled sets a hook called after each processed delivery (tests,
// metrics). Call it before Run.
func (a *Adapter) OnHandled(f func(d *store.Delivery, err error)) { a.worker.OnHandled(f) }

// Run works persisted deliveries and, with a Gateway, holds the gateway
// session whenever this replica has the lease, until ctx ends.
func (a *Adapter) Run(ctx context.Context) error {
	a.mu.Lock()
	a.life = ctx
	a.mu.Unlock()
	errc := make(chan error, 2)
	n := 1
	go func() { errc <- a.worker.Run(ctx) }()
	if a.cfg.Gateway != nil {
		n++
		go func() { errc <- a.runGateway(ctx) }()
	}
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
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

// Status says how the gateway is doing, for the settings page: "off"
// (interactions only), "standby" (another replica holds it), "connected",
// or the last error.
func (a *Adapter) Status() string {
	if a.cfg.Gateway == nil {
		return "off"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gateway == "" {
		return "standby"
	}
	return a.gateway
}

func (a *Adapter) setGateway(s string) {
	a.mu.Lock()
	a.gateway = s
	a.mu.Unlock()
}

// InviteURL is the link that adds the bot to a server with the scopes and
// permissions hero needs.
func InviteURL(appID string) string {
	return fmt.Sprintf("https://discord.com/oauth2/authorize?client_id=%s&scope=bot+applications.commands&permissions=%d", appID, Permissions)
}

// Permissions are what the features need: view channels, send messages,
// embed links, read message history, add reactions, create public
// threads, send messages in threads; for a board's forum, manage threads
// (a post's tags), manage channels (the forum's tags) and view audit log
// (who changed a post's tag).
const Permissions = discordgo.PermissionViewChannel | discordgo.PermissionSendMessages | discordgo.PermissionEmbedLinks |
	discordgo.PermissionReadMessageHistory | discordgo.PermissionAddReactions | discordgo.PermissionCreatePublicThreads |
	discordgo.PermissionSendMessagesInThreads | discordgo.PermissionManageThreads | discordgo.PermissionManageChannels |
	discordgo.PermissionViewAuditLogs

// identity is the platform identity hero records for a Discord user.
func identity(user string) string { return "discord:" + user }
