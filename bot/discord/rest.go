package discord

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
)

// DefaultAPIURL is Discord's REST API, the version hero speaks.
const DefaultAPIURL = "https://discord.com/api/v10"

// rewriter sends discordgo's requests to the configured API: discordgo's
// endpoints are package variables pinned to discord.com and its own API
// version, so every request (including /gateway/bot) is rewritten here,
// per session, instead of by changing those variables for the process.
// It also holds hero to Discord's global limit of requests per second,
// except on the interaction endpoints, which Discord does not count
// against it: a burst of slash commands is answered at once, not 50 a
// second. Per-route limits (X-RateLimit-* headers, 429 retry_after) are
// discordgo's rate limiter's job.
type rewriter struct {
	from  string   // discordgo's API prefix, "https://discord.com/api/v9/"
	to    *url.URL // DISCORD_API_URL
	appID string   // interaction webhooks are webhooks/<appID>/<token>
	next  http.RoundTripper
	lim   *pacer
}

// interactionEndpoint reports whether path (after the API prefix) is one
// of the interaction endpoints: an interaction's callback, or the webhook
// its token opens (the original response and follow-ups).
func (rw *rewriter) interactionEndpoint(path string) bool {
	return strings.HasPrefix(path, "interactions/") || (rw.appID != "" && strings.HasPrefix(path, "webhooks/"+rw.appID+"/"))
}

func (rw *rewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	u := r.URL.String()
	if !strings.HasPrefix(u, rw.from) {
		return nil, fmt.Errorf("discord: refusing a request outside the API: %s %s", r.Method, r.URL.Redacted())
	}
	rest := strings.TrimPrefix(u, rw.from)
	path, query, _ := strings.Cut(rest, "?")
	if !rw.interactionEndpoint(path) {
		if err := rw.lim.wait(r.Context()); err != nil {
			return nil, err
		}
	}
	nu := *rw.to
	nu.Path = strings.TrimSuffix(rw.to.Path, "/") + "/" + path
	nu.RawPath = ""
	nu.RawQuery = query
	r2 := r.Clone(r.Context())
	r2.URL = &nu
	r2.Host = nu.Host
	return rw.next.RoundTrip(r2)
}

// pacer is a token bucket: at most rate requests per second, bursts of
// rate.
type pacer struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newPacer(rate int) *pacer {
	return &pacer{rate: float64(rate), tokens: float64(rate), last: time.Now()}
}

func (p *pacer) wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		now := time.Now()
		p.tokens = min(p.rate, p.tokens+now.Sub(p.last).Seconds()*p.rate)
		p.last = now
		if p.tokens >= 1 {
			p.tokens--
			p.mu.Unlock()
			return nil
		}
		d := time.Duration((1 - p.tokens) / p.rate * float64(time.Second))
		p.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// newSession returns a discordgo session for the bot token whose REST
// requests go to apiURL through base's transport; appID tells the
// application's interaction webhooks apart ("" when it answers none).
func newSession(token, apiURL, appID string, base *http.Client, globalRate int) (*discordgo.Session, error) {
	to, err := url.Parse(strings.TrimSuffix(apiURL, "/"))
	if err != nil || (to.Scheme != "http" && to.Scheme != "https") || to.Host == "" {
		return nil, fmt.Errorf("DISCORD_API_URL %q is not an http(s) URL", apiURL)
	}
	s, err := discordgo.New("Bot " + token)
	if err != nil {
		return nil, fmt.Errorf("discord session: %w", err)
	}
	next := base.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c := *base
	c.Transport = &rewriter{from: discordgo.EndpointAPI, to: to, appID: appID, next: next, lim: newPacer(globalRate)}
	s.Client = &c
	s.ShouldRetryOnRateLimit = true
	s.MaxRestRetries = 3
	s.UserAgent = "DiscordBot (https://github.com/hero-dev/hero, 1) hero"
	return s, nil
}
