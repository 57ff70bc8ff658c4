package discord

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

var _ engine.Surface = (*Adapter)(nil)

// maxStepLines is how many recent steps the progress message lists.
const maxStepLines = 12

// runView is one run's progress message: the neutral model and the
// message that renders it.
type runView struct {
	a      *Adapter
	thread string // the thread's channel id (a run's ThreadRef)

	mu       sync.Mutex
	p        *bot.Progress
	timer    *time.Timer // a scheduled edit
	lastEdit time.Time

	flushMu sync.Mutex // one post or edit of the message at a time
	msgID   string     // the progress message, once posted
}

// view returns the run's view, creating it on first use. After a restart
// (or on another replica) it is rebuilt from what the run recorded, and
// the same progress message is edited again.
func (a *Adapter) view(ctx context.Context, ex *store.Execution) (*runView, error) {
	if v, ok := a.runs.Get(ex.ID); ok {
		return v, nil
	}
	p, ref, err := bot.OpenProgress(ctx, a.db, ex, Surface)
	if err != nil {
		return nil, err
	}
	v := &runView{a: a, thread: ex.ThreadRef, p: p}
	if ch, msg, ok := strings.Cut(ref, "/"); ok && ch == ex.ThreadRef && msg != "" {
		v.msgID = msg
	}
	v, _ = a.runs.Add(ex.ID, v)
	return v, nil
}

// touch schedules an edit of the progress message: at once if the last
// one is a second old, else when it will be (edits coalesce meanwhile).
func (v *runView) touch() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.timer != nil {
		return
	}
	wait := max(v.lastEdit.Add(v.a.cfg.UpdateInterval).Sub(time.Now()), 0)
	v.timer = time.AfterFunc(wait, func() { v.flush(context.Background()) })
}

// flush posts or edits the progress message with the current state.
func (v *runView) flush(ctx context.Context) {
	v.flushMu.Lock()
	defer v.flushMu.Unlock()
	v.mu.Lock()
	if v.timer != nil {
		v.timer.Stop()
		v.timer = nil
	}
	wait := time.Until(v.lastEdit.Add(v.a.cfg.UpdateInterval))
	v.mu.Unlock()
	if wait > 0 { // the closing flush comes when it comes
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	v.mu.Lock()
	text := progressText(v.p)
	v.lastEdit = time.Now()
	v.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var err error
	if v.msgID == "" {
		var m *discordgo.Message
		m, err = v.a.send(ctx, v.thread, text, nil)
		if err == nil {
			v.msgID = m.ID
			if err := v.a.db.SetProgressMessage(ctx, v.p.RunID, Surface, v.thread+"/"+m.ID); err != nil {
				v.a.log.Warn("remember the progress message", "run", v.p.RunID, "err", err)
			}
		}
	} else {
		_, err = v.a.api.ChannelMessageEditComplex(&discordgo.MessageEdit{Channel: v.thread, ID: v.msgID, Content: &text, AllowedMentions: noMentions()}, discordgo.WithContext(ctx))
	}
	if err != nil {
		v.a.log.Warn("progress message", "run", v.p.RunID, "err", err)
	}
	// Counted from the answer too: a request held up on its way (a rate
	// limit) must not arrive right before the next one.
	v.mu.Lock()
	v.lastEdit = time.Now()
	v.mu.Unlock()
}

// send posts a message in a channel or thread; nothing in it notifies
// anyone.
func (a *Adapter) send(ctx context.Context, channel, text string, components []discordgo.MessageComponent) (*discordgo.Message, error) {
	m, err := a.api.ChannelMessageSendComplex(channel, &discordgo.MessageSend{Content: clip(text), Components: components, AllowedMentions: noMentions()}, discordgo.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("post in discord channel %s: %w", channel, err)
	}
	return m, nil
}

// Update renders a run's events: the progress message is edited in place
// at most once per UpdateInterval; the end gets its own message.
func (a *Adapter) Update(ctx context.Context, ex *store.Execution, ev engine.Event) error {
	// Wait while the handler that started this run announces it.
	a.gates.Wait(ex.ThreadRef)
	if ev.Kind == engine.EventDecided {
		if ev.Confirmation != nil && ev.Confirmation.SurfaceRef != "" {
			a.showDecision(ctx, ev.Confirmation)
		}
		return nil
	}
	v, err := a.view(ctx, ex)
	if err != nil {
		return err
	}
	if ev.Kind == engine.EventStarted && ev.Resumed {
		defer a.send(ctx, ex.ThreadRef, escape(ev.Text), nil)
	}
	v.mu.Lock()
	v.p.Apply(ex, ev)
	v.mu.Unlock()
	if ev.Kind != engine.EventFinished {
		v.touch()
		return nil
	}
	v.flush(ctx)
	a.runs.Delete(ex.ID)
	_, err = a.send(ctx, ex.ThreadRef, finalText(ex.ID, ev.Outcome), nil)
	return err
}

// Ask posts the confirmation in the run's thread and returns the posted
// message's reference ("channel/message") for later edits.
func (a *Adapter) Ask(ctx context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	text, comps := confirmationMessage(c, a.cfg.Now())
	m, err := a.send(ctx, ex.ThreadRef, text, comps)
	if err != nil {
		return "", fmt.Errorf("post confirmation %s: %w", c.ID, err)
	}
	return ex.ThreadRef + "/" + m.ID, nil
}

// showDecision edits a confirmation's message to say who decided and
// when (or that it expired), without buttons.
func (a *Adapter) showDecision(ctx context.Context, c *store.Confirmation) {
	ch, msg, ok := strings.Cut(c.SurfaceRef, "/")
	if !ok || ch == "" || msg == "" {
		a.log.Warn("confirmation message reference", "confirmation", c.ID, "ref", c.SurfaceRef)
		return
	}
	text, comps := confirmationMessage(c, a.cfg.Now())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := a.api.ChannelMessageEditComplex(&discordgo.MessageEdit{Channel: ch, ID: msg, Content: &text, Components: &comps, AllowedMentions: noMentions()}, discordgo.WithContext(ctx)); err != nil {
		a.log.Warn("show decision", "confirmation", c.ID, "err", err)
	}
}
