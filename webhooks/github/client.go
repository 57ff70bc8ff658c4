package github

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// Repo names one GitHub repository.
type Repo struct {
	Owner, Name string
}

func (r Repo) String() string { return r.Owner + "/" + r.Name }

// TokenFunc returns the bearer token for one request.
type TokenFunc func(ctx context.Context) (string, error)

// newClient returns a go-github client pointed at apiURL whose requests
// carry token and go through the shared rate-limit handling.
func newClient(apiURL string, rt *rateLimiter, token TokenFunc) (*gh.Client, error) {
	c := gh.NewClient(&http.Client{Transport: &transport{rl: rt, token: token}, Timeout: 60 * time.Second})
	if apiURL != "" {
		u, err := url.Parse(strings.TrimSuffix(apiURL, "/") + "/")
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("GITHUB_API_URL %q is not an http(s) URL", apiURL)
		}
		c.BaseURL = u
		c.UploadURL = u
	}
	return c, nil
}

// transport adds the token and waits out rate limits: GitHub answers 403
// or 429 with Retry-After (secondary limits) or x-ratelimit-remaining: 0
// and x-ratelimit-reset (primary); the request is retried after that wait
// when it is short enough, and content-creating requests are paced.
type transport struct {
	rl    *rateLimiter
	token TokenFunc
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	tok, err := t.token(ctx)
	if err != nil {
		return nil, fmt.Errorf("github credentials: %w", err)
	}
	base := t.rl.base
	for attempt := 0; ; attempt++ {
		if err := t.rl.before(ctx, req.Method); err != nil {
			return nil, err
		}
		r := req.Clone(ctx)
		if req.GetBody != nil && attempt > 0 {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		wait, limited := t.rl.after(resp)
		if !limited || attempt >= t.rl.retries || wait > t.rl.maxWait || (req.Body != nil && req.GetBody == nil) {
			return resp, nil
		}
		resp.Body.Close()
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

// rateLimiter is shared by every client of a Service: it spaces
// content-creating requests (POST, PATCH, PUT, DELETE) by pace, as GitHub
// asks integrations to, and holds every request while a limit is known to
// be exhausted.
//
// Writes go in two lanes. Work for trusted people reserves the next free
// slot at once. Courtesy writes (replies to strangers, which anyone can
// trigger in bulk) take a slot only when no trusted write holds one, so a
// member's 👀 waits at most one pace behind them, never behind a backlog.
type rateLimiter struct {
	base    http.RoundTripper
	pace    time.Duration
	maxWait time.Duration
	retries int
	now     func() time.Time

	mu        sync.Mutex
	nextWrite time.Time
	blocked   time.Time // no request before this
}

func newRateLimiter(base http.RoundTripper, pace, maxWait time.Duration) *rateLimiter {
	if base == nil {
		base = http.DefaultTransport
	}
	return &rateLimiter{base: base, pace: pace, maxWait: maxWait, retries: 2, now: time.Now}
}

// laneKey marks a request's context with its lane.
type laneKey struct{}

// courtesyLane marks ctx's writes as courtesy: they yield to every other
// write (see rateLimiter).
func courtesyLane(ctx context.Context) context.Context {
	return context.WithValue(ctx, laneKey{}, true)
}

func isCourtesy(ctx context.Context) bool {
	b, _ := ctx.Value(laneKey{}).(bool)
	return b
}

func (l *rateLimiter) before(ctx context.Context, method string) error {
	write := method != http.MethodGet && method != http.MethodHead && l.pace > 0
	if write && isCourtesy(ctx) {
		return l.beforeCourtesy(ctx)
	}
	l.mu.Lock()
	now := l.now()
	at := l.blocked
	if write {
		slot := later(now, l.nextWrite)
		l.nextWrite = slot.Add(l.pace)
		at = later(at, slot)
	}
	l.mu.Unlock()
	return l.wait(ctx, at.Sub(now))
}

// beforeCourtesy waits until the write slot is free now, then takes it;
// a trusted write that reserved the slot meanwhile goes first.
func (l *rateLimiter) beforeCourtesy(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := l.now()
		at := later(l.blocked, l.nextWrite)
		if !at.After(now) {
			l.nextWrite = now.Add(l.pace)
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		if err := l.wait(ctx, at.Sub(now)); err != nil {
			return err
		}
	}
}

func (l *rateLimiter) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if d > l.maxWait {
		return fmt.Errorf("github rate limit: next request allowed in %s", d.Round(time.Second))
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// after reads the limit headers of resp and reports how long to wait
// before retrying, when it was refused for a rate limit.
func (l *rateLimiter) after(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	now := l.now()
	var wait time.Duration
	limited := false
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && s >= 0 {
			wait, limited = time.Duration(s)*time.Second, true
		} else if at, err := http.ParseTime(ra); err == nil {
			wait, limited = max(at.Sub(now), 0), true
		}
	} else if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		if s, err := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			wait, limited = max(time.Unix(s, 0).Sub(now), 0), true
		}
	} else if resp.StatusCode == http.StatusTooManyRequests {
		wait, limited = time.Minute, true // GitHub's advice without headers
	}
	if limited {
		l.mu.Lock()
		l.blocked = later(l.blocked, now.Add(wait))
		l.mu.Unlock()
	}
	return wait, limited
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
