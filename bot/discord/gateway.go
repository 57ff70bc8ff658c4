package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
)

// Gateway is the websocket session that delivers messages mentioning
// hero and thread updates. Run connects (IDENTIFY), calls on's handlers
// for every MESSAGE_CREATE and THREAD_UPDATE until ctx ends, and returns
// nil then; it returns an error when the connection cannot be made or is
// lost for good, and the adapter backs off before calling it again. It
// is called by one goroutine at a time, and only while this replica
// holds the gateway lease.
type Gateway interface {
	Run(ctx context.Context, on Events) error
}

// Events are the gateway dispatches hero handles.
type Events struct {
	Message func(*discordgo.Message)
	// ThreadUpdate hears a thread's changes: a forum post's tags.
	ThreadUpdate func(*discordgo.Channel)
}

// SessionGateway is the real gateway: a discordgo session asking for
// guilds (thread updates), guild and direct messages only — not the
// privileged message-content intent, so hero reads the text of messages
// that mention it (and replies to it) and nothing else.
type SessionGateway struct {
	token, apiURL string
	client        *http.Client
	// Intents are Discord's gateway intents (default guild and direct
	// messages).
	Intents discordgo.Intent
}

// NewSessionGateway returns the gateway for a bot token; its REST calls
// (GET /gateway/bot) go to apiURL like every other.
func NewSessionGateway(token, apiURL string, client *http.Client) *SessionGateway {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &SessionGateway{token: token, apiURL: apiURL, client: client,
		Intents: discordgo.IntentsGuilds | discordgo.IntentsGuildMessages | discordgo.IntentsDirectMessages}
}

// Run implements Gateway.
func (g *SessionGateway) Run(ctx context.Context, on Events) error {
	s, err := newSession(g.token, g.apiURL, "", g.client, 50)
	if err != nil {
		return err
	}
	// Discord counts IDENTIFYs per day: ask how many are left first.
	gb, err := s.GatewayBot(discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("GET /gateway/bot: %w", err)
	}
	if l := gb.SessionStartLimit; l.Total > 0 && l.Remaining <= 0 {
		return &identifyLimitError{reset: time.Duration(l.ResetAfter) * time.Millisecond}
	}
	s.Identify.Intents = g.Intents
	s.ShouldReconnectOnError = true
	s.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		if m.Message != nil && on.Message != nil {
			on.Message(m.Message)
		}
	})
	s.AddHandler(func(_ *discordgo.Session, t *discordgo.ThreadUpdate) {
		if t.Channel != nil && on.ThreadUpdate != nil {
			on.ThreadUpdate(t.Channel)
		}
	})
	if err := s.Open(); err != nil {
		return fmt.Errorf("open gateway: %w", err)
	}
	defer s.Close()
	<-ctx.Done() // discordgo reconnects (and resumes) by itself meanwhile
	return nil
}

type identifyLimitError struct{ reset time.Duration }

func (e *identifyLimitError) Error() string {
	return fmt.Sprintf("no gateway session starts left today; Discord resets the count in %s", e.reset)
}

// runGateway holds the gateway lease and, while held, the gateway: it
// claims every third of the lease's life, starts the session when it
// wins, stops it when it loses the lease, and backs off (doubling up to
// 10 minutes, or until Discord's daily IDENTIFY count resets) when the
// session fails.
func (a *Adapter) runGateway(ctx context.Context) error {
	tick := time.NewTicker(a.cfg.LeaseTTL / 3)
	defer tick.Stop()
	var (
		sess    *session
		backoff = a.cfg.IdentifyBackoff
		notTill time.Time
	)
	defer func() {
		sess.stop()
		rctx, c := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer c()
		if err := a.db.ReleaseSingleton(rctx, GatewayLease, a.cfg.Owner); err != nil {
			a.log.Warn("release the gateway lease", "err", err)
		}
	}()
	for {
		held, err := a.db.ClaimSingleton(ctx, GatewayLease, a.cfg.Owner, a.cfg.LeaseTTL)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("claim the gateway lease", "err", err)
		}
		switch {
		case !held && sess != nil:
			a.log.Warn("lost the gateway lease; closing the gateway session")
			sess.stop()
			sess = nil
			a.setGateway("")
		case held && sess == nil && !time.Now().Before(notTill):
			a.setGateway("connected")
			sess = a.startSession(ctx)
		}
		var failed <-chan error
		if sess != nil {
			failed = sess.done
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case err := <-failed:
			sess.stop()
			sess = nil
			if err == nil {
				continue
			}
			wait := backoff
			var lim *identifyLimitError
			if errors.As(err, &lim) {
				wait = max(wait, lim.reset)
			}
			backoff = min(2*backoff, 10*time.Minute)
			notTill = time.Now().Add(wait)
			a.setGateway("error: " + err.Error())
			a.log.Warn("gateway session failed; backing off", "err", err, "retry_in", wait)
		}
	}
}

// session is a running Gateway.Run.
type session struct {
	cancel context.CancelFunc
	done   chan error
}

func (a *Adapter) startSession(ctx context.Context) *session {
	gctx, cancel := context.WithCancel(ctx)
	s := &session{cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- a.cfg.Gateway.Run(gctx, Events{Message: a.onGatewayMessage, ThreadUpdate: a.onGatewayThreadUpdate})
		close(s.done)
	}()
	return s
}

// stop ends the session and waits for it (nil: nothing to stop).
func (s *session) stop() {
	if s == nil {
		return
	}
	s.cancel()
	for range s.done {
	}
}

// onGatewayMessage persists a message that may be for hero: a direct
// message to hero, or one that mentions hero or replies to hero's
// message. Everything else (and bots, hero included) is dropped here.
func (a *Adapter) onGatewayMessage(m *discordgo.Message) {
	if m.Author == nil || m.Author.Bot || m.ID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(a.lifetime(), 30*time.Second)
	defer cancel()
	bot, err := a.botUser(ctx)
	if err != nil {
		a.log.Warn("who is hero on Discord", "err", err)
		return
	}
	if m.GuildID != "" && !mentions(m, bot) && !repliesTo(m, bot) {
		return
	}
	body, err := json.Marshal(m)
	if err != nil {
		a.log.Error("encode discord message", "message", m.ID, "err", err)
		return
	}
	if _, err := a.inbox.Write(ctx, Surface, "msg:"+m.ID, kindMessage, body); err != nil {
		a.log.Error("persist discord message", "message", m.ID, "err", err)
		return
	}
	a.worker.Kick()
}

func mentions(m *discordgo.Message, bot string) bool {
	for _, u := range m.Mentions {
		if u != nil && u.ID == bot {
			return true
		}
	}
	return strings.Contains(m.Content, "<@"+bot+">") || strings.Contains(m.Content, "<@!"+bot+">")
}

func repliesTo(m *discordgo.Message, bot string) bool {
	return m.ReferencedMessage != nil && m.ReferencedMessage.Author != nil && m.ReferencedMessage.Author.ID == bot
}

// botUser is hero's own user id (GET /users/@me, once).
func (a *Adapter) botUser(ctx context.Context) (string, error) {
	a.mu.Lock()
	id := a.botID
	a.mu.Unlock()
	if id != "" {
		return id, nil
	}
	u, err := a.api.User("@me", discordgo.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("GET /users/@me: %w", err)
	}
	a.mu.Lock()
	a.botID = u.ID
	a.mu.Unlock()
	return u.ID, nil
}
