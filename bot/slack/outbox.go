package slack

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// outbox sends everything hero says to Slack. Each channel has a lane: a
// FIFO worked by one goroutine, so a thread reads in order; posts are paced
// per channel (a token bucket), a 429 pauses the lane for Retry-After and
// the call is tried again — messages are late, never lost. A lane's
// goroutine exits when its queue is empty.
type outbox struct {
	a   *Adapter
	log *slog.Logger
	// ctx lives as long as the process: messages queued by a run that was
	// cancelled must still go out.
	ctx context.Context

	mu    sync.Mutex
	lanes map[string]*lane
	// paused holds, per workspace and method, until when Slack asked us
	// to wait (its limits are per method and workspace, not per channel).
	paused map[string]time.Time
	busy   int // lanes working plus edits scheduled: drain waits for 0
}

type lane struct {
	team, channel string
	q             []*job
	running       bool
	tokens        float64
	refilled      time.Time
}

// job is one Web API call. paced jobs take a token of the channel's post
// budget; done (optional) gets the final error.
type job struct {
	what  string
	paced bool
	call  func(ctx context.Context, api *slack.Client) error
	done  func(err error)
}

func newOutbox(a *Adapter, log *slog.Logger) *outbox {
	return &outbox{a: a, log: log, ctx: context.Background(), lanes: map[string]*lane{}, paused: map[string]time.Time{}}
}

// send queues j on the channel's lane.
func (o *outbox) send(team, channel string, j *job) {
	key := team + "/" + channel
	o.mu.Lock()
	l := o.lanes[key]
	if l == nil {
		l = &lane{team: team, channel: channel, tokens: float64(o.a.cfg.PostBurst), refilled: o.a.cfg.Now()}
		o.lanes[key] = l
	}
	l.q = append(l.q, j)
	start := !l.running
	l.running = true
	if start {
		o.busy++
	}
	o.mu.Unlock()
	if start {
		go o.work(key, l)
	}
}

// call queues j and waits for its result.
func (o *outbox) call(ctx context.Context, team, channel string, j *job) error {
	done := make(chan error, 1)
	inner := j.done
	j.done = func(err error) {
		if inner != nil {
			inner(err)
		}
		done <- err
	}
	o.send(team, channel, j)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *outbox) work(key string, l *lane) {
	for {
		o.mu.Lock()
		if len(l.q) == 0 {
			l.running = false
			delete(o.lanes, key)
			o.busy--
			o.mu.Unlock()
			return
		}
		j := l.q[0]
		l.q = l.q[1:]
		o.mu.Unlock()
		if j.paced {
			o.pace(l)
		}
		err := o.do(l, j)
		if j.done != nil {
			j.done(err)
		}
	}
}

// pace waits for a token of the lane's post budget.
func (o *outbox) pace(l *lane) {
	cfg := o.a.cfg
	for {
		now := cfg.Now()
		l.tokens = min(float64(cfg.PostBurst), l.tokens+float64(now.Sub(l.refilled))/float64(cfg.PostInterval))
		l.refilled = now
		if l.tokens >= 1 {
			l.tokens--
			return
		}
		wait := time.Duration((1 - l.tokens) * float64(cfg.PostInterval))
		select {
		case <-time.After(wait):
		case <-o.ctx.Done():
			return
		}
	}
}

// do runs a job until it succeeds, Slack refuses it for good, or the
// network keeps failing; 429s are waited out however many there are.
func (o *outbox) do(l *lane, j *job) error {
	netFailures := 0
	limitKey := l.team + "|" + j.what
	for {
		o.mu.Lock()
		until := o.paused[limitKey]
		o.mu.Unlock()
		if d := until.Sub(o.a.cfg.Now()); d > 0 {
			select {
			case <-time.After(d):
			case <-o.ctx.Done():
				return o.ctx.Err()
			}
		}
		ctx, cancel := context.WithTimeout(o.ctx, time.Minute)
		c, err := o.a.client(ctx, l.team)
		if err == nil {
			err = j.call(ctx, c.api)
		}
		cancel()
		if err == nil {
			return nil
		}
		var rl *slack.RateLimitedError
		var se slack.SlackErrorResponse
		var wait time.Duration
		switch {
		case errors.As(err, &rl):
			wait = max(rl.RetryAfter, 100*time.Millisecond)
			o.mu.Lock()
			if t := o.a.cfg.Now().Add(wait); t.After(o.paused[limitKey]) {
				o.paused[limitKey] = t // every lane of the workspace waits
			}
			o.mu.Unlock()
			o.log.Info("slack rate limit: waiting", "call", j.what, "channel", l.channel, "retry_after", rl.RetryAfter)
		case errors.As(err, &se):
			o.log.Warn("slack refused a call", "call", j.what, "channel", l.channel, "err", err)
			return err
		default:
			netFailures++
			var ne net.Error
			if netFailures > 5 && !errors.As(err, &ne) || netFailures > 8 {
				o.log.Error("slack call failed, giving up", "call", j.what, "channel", l.channel, "attempts", netFailures, "err", err)
				return err
			}
			wait = time.Duration(200<<min(netFailures, 6)) * time.Millisecond
		}
		select {
		case <-time.After(wait):
		case <-o.ctx.Done():
			return o.ctx.Err()
		}
	}
}

// drain waits until every lane is empty and no edit is scheduled, or ctx
// ends.
func (o *outbox) drain(ctx context.Context) {
	for {
		o.mu.Lock()
		busy := o.busy
		o.mu.Unlock()
		if busy == 0 {
			return
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			o.log.Warn("slack messages still queued at shutdown", "lanes_and_edits", busy)
			return
		}
	}
}

// live is a message edited in place (a run's progress): edits are
// coalesced so that at most one chat.update per UpdateInterval goes out,
// always with the latest state (render is called when the edit is sent).
type live struct {
	o             *outbox
	team, channel string
	render        func() (text string, blocks []slack.Block)
	// posted, when set, learns the message's ts once it is posted.
	posted func(ts string)

	mu        sync.Mutex
	ts        string // "" until posted
	dirty     bool
	scheduled bool
	lastSent  time.Time
}

// post sends the message for the first time (in thread if threadTS).
func (m *live) post(threadTS string) {
	m.o.send(m.team, m.channel, &job{what: "chat.postMessage", paced: true,
		call: func(ctx context.Context, api *slack.Client) error {
			text, blocks := m.render()
			opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...), noUnfurl()}
			if threadTS != "" {
				opts = append(opts, slack.MsgOptionTS(threadTS))
			}
			_, ts, err := api.PostMessageContext(ctx, m.channel, opts...)
			if err != nil {
				return err
			}
			m.mu.Lock()
			m.ts, m.lastSent = ts, m.o.a.cfg.Now()
			m.mu.Unlock()
			if m.posted != nil {
				m.posted(ts)
			}
			return nil
		},
		done: func(error) { m.touch() },
	})
}

// touch marks the message changed; an edit follows within UpdateInterval.
func (m *live) touch() {
	m.mu.Lock()
	m.dirty = true
	if m.ts == "" || m.scheduled {
		m.mu.Unlock()
		return
	}
	m.scheduled = true
	wait := m.lastSent.Add(m.o.a.cfg.UpdateInterval).Sub(m.o.a.cfg.Now())
	m.mu.Unlock()
	m.o.mu.Lock()
	m.o.busy++ // a scheduled edit counts as queued work for drain
	m.o.mu.Unlock()
	time.AfterFunc(max(wait, 0), func() {
		m.o.send(m.team, m.channel, &job{what: "chat.update", call: m.update, done: m.updated})
		m.o.mu.Lock()
		m.o.busy--
		m.o.mu.Unlock()
	})
}

// update sends the latest state; a failed attempt leaves it dirty so the
// outbox's retry (after a 429 or a network error) sends it again.
func (m *live) update(ctx context.Context, api *slack.Client) error {
	m.mu.Lock()
	if !m.dirty {
		m.mu.Unlock()
		return nil
	}
	m.dirty = false
	ts := m.ts
	m.mu.Unlock()
	text, blocks := m.render()
	_, _, _, err := api.UpdateMessageContext(ctx, m.channel, ts, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
	m.mu.Lock()
	// Counted from the answer: the next edit then reaches Slack at least
	// UpdateInterval after this one did, whatever the latency.
	m.lastSent = m.o.a.cfg.Now()
	if err != nil {
		m.dirty = true
	}
	m.mu.Unlock()
	return err
}

// updated ends an edit: changes made meanwhile schedule the next one.
func (m *live) updated(err error) {
	m.mu.Lock()
	m.scheduled = false
	if err != nil {
		m.dirty = false // Slack refused it for good; the next change tries again
	}
	redo := m.dirty
	m.mu.Unlock()
	if redo {
		m.touch()
	}
}
