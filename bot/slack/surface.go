package slack

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

var _ engine.Surface = (*Adapter)(nil)

// Action ids of the confirmation buttons; their value is the confirmation
// id, so a click after a restart finds everything in the database.
const (
	actionApprove = "hero_approve"
	actionDeny    = "hero_deny"
)

// maxStepLines is how many recent steps the progress message lists.
const maxStepLines = 12

// runView is one run's progress message: the neutral model and the
// message that renders it.
type runView struct {
	mu                    sync.Mutex
	p                     *bot.Progress
	progress              *live
	team, channel, thread string
}

// view returns the run's view, creating it (and its progress message) on
// first use; nil when the run's thread reference is not a Slack one.
// After a restart (or on another replica) the view is rebuilt from the
// stored steps and the same progress message is edited again.
func (a *Adapter) view(ctx context.Context, ex *store.Execution) (*runView, error) {
	if v, ok := a.runs.Get(ex.ID); ok {
		return v, nil
	}
	team, ch, ts, err := parseRef(ex.ThreadRef)
	if err != nil {
		return nil, err
	}
	p, ref, err := bot.OpenProgress(ctx, a.db, ex, Surface)
	if err != nil {
		return nil, err
	}
	v := &runView{p: p, team: team, channel: ch, thread: ts}
	v.progress = &live{o: a.out, team: team, channel: ch, render: v.render, posted: func(msg string) {
		if err := a.db.SetProgressMessage(context.WithoutCancel(ctx), ex.ID, Surface, threadRef(team, ch, msg)); err != nil {
			a.log.Warn("remember the progress message", "run", ex.ID, "err", err)
		}
	}}
	restored := false
	if _, _, msg, err := parseRef(ref); ref != "" && err == nil {
		v.progress.ts = msg
		restored = true
	}
	if kept, added := a.runs.Add(ex.ID, v); !added {
		return kept, nil
	}
	if restored {
		v.progress.touch()
	} else {
		v.progress.post(ts)
	}
	return v, nil
}

// Update renders a run's events: the progress message is edited in place
// (coalesced), long outputs are uploaded as files, the end gets its own
// message.
func (a *Adapter) Update(ctx context.Context, ex *store.Execution, ev engine.Event) error {
	// Wait while the handler that started this run announces it.
	a.gates.Wait(ex.ThreadRef)
	if ev.Kind == engine.EventDecided {
		if ev.Confirmation != nil && ev.Confirmation.SurfaceRef != "" {
			a.showDecision(ev.Confirmation)
		}
		return nil
	}
	v, err := a.view(ctx, ex)
	if err != nil {
		return err
	}
	v.mu.Lock()
	added := v.p.Apply(ex, ev)
	var upload string
	if added != nil && added.Kind == store.StepTool && added.Tool == "run_command" && len(ev.Step.Output) > a.cfg.LongOutput {
		upload = ev.Step.Output
	}
	if ev.Kind == engine.EventStarted && ev.Resumed {
		a.out.send(v.team, v.channel, textJob(v.channel, v.thread, ev.Text))
	}
	team, ch, thread := v.team, v.channel, v.thread
	v.mu.Unlock()
	v.progress.touch()

	if upload != "" {
		a.out.send(team, ch, &job{what: "files.upload", paced: true, call: func(ctx context.Context, api *slack.Client) error {
			_, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
				Content: upload, FileSize: len(upload), Filename: "output-" + ex.ID + ".txt",
				Title: "command output (" + ex.ID + ")", Channel: ch, ThreadTimestamp: thread, SnippetType: "text",
			})
			return err
		}})
	}
	if ev.Kind == engine.EventFinished {
		text, blocks := finalMessage(ex.ID, ev.Outcome)
		a.out.send(team, ch, &job{what: "chat.postMessage", paced: true, call: func(ctx context.Context, api *slack.Client) error {
			_, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...), slack.MsgOptionTS(thread), noUnfurl())
			return err
		}})
		a.runs.Delete(ex.ID)
	}
	return nil
}

// Ask posts the confirmation in the run's thread and returns the posted
// message's reference (team/channel/ts) for later edits.
func (a *Adapter) Ask(ctx context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	team, ch, thread, err := parseRef(ex.ThreadRef)
	if err != nil {
		return "", err
	}
	text, blocks := confirmationMessage(c, a.cfg.Now())
	var ts string
	err = a.out.call(ctx, team, ch, &job{what: "chat.postMessage", paced: true, call: func(ctx context.Context, api *slack.Client) error {
		var err error
		_, ts, err = api.PostMessageContext(ctx, ch, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...), slack.MsgOptionTS(thread), noUnfurl())
		return err
	}})
	if err != nil {
		return "", fmt.Errorf("post confirmation %s: %w", c.ID, err)
	}
	return threadRef(team, ch, ts), nil
}

// showDecision edits a confirmation's message to say who decided and
// when (or that it expired), without buttons.
func (a *Adapter) showDecision(c *store.Confirmation) {
	team, ch, ts, err := parseRef(c.SurfaceRef)
	if err != nil {
		a.log.Warn("confirmation message reference", "confirmation", c.ID, "err", err)
		return
	}
	text, blocks := confirmationMessage(c, a.cfg.Now())
	a.out.send(team, ch, &job{what: "chat.update", call: func(ctx context.Context, api *slack.Client) error {
		_, _, _, err := api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		return err
	}})
}

func textJob(ch, thread, text string) *job {
	return &job{what: "chat.postMessage", paced: true, call: func(ctx context.Context, api *slack.Client) error {
		opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
		if thread != "" {
			opts = append(opts, slack.MsgOptionTS(thread))
		}
		_, _, err := api.PostMessageContext(ctx, ch, opts...)
		return err
	}}
}

// render is the progress message: status, recent steps, the current
// command and its output, cost so far.
func (v *runView) render() (string, []slack.Block) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return progressMessage(v.p)
}

func progressMessage(p *bot.Progress) (string, []slack.Block) {
	head := fmt.Sprintf("%s *Run `%s`* · %s · %d steps", look.Status(p.Status), p.RunID, p.Status, len(p.Steps))
	blocks := []slack.Block{section(head)}
	if lines, _ := p.Lines(maxStepLines, look.Line); len(lines) > 0 {
		blocks = append(blocks, section(strings.Join(lines, "\n")))
	}
	if cur := p.Doing(func(tool string) string { return "`" + tool + "`" }); cur != "" || p.Output != "" {
		if p.Output != "" {
			cur += "\n```" + fence(mrkdwn(p.Output)) + "```"
		}
		blocks = append(blocks, section("*Now:* "+cur))
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, p.CostSoFar(), false, false)))
	return fmt.Sprintf("Run %s: %s, %d steps", p.RunID, p.Status, len(p.Steps)), blocks
}

func section(md string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, clipMrkdwn(md, maxSectionText), false, false), nil, nil)
}

// look is how Slack draws a run's progress.
var look = bot.Look{
	Done: ":heavy_check_mark:", Failed: ":warning:", Asked: ":raised_hand:", Message: ":speech_balloon:", Warning: ":warning:",
	Working: ":hourglass_flowing_sand:", Waiting: ":raised_hand:", Succeeded: ":white_check_mark:", Failure: ":x:", Cancelled: ":no_entry_sign:",
	Code: func(s string) string { return mrkdwn(codeSpan(s)) }, Text: mrkdwn,
}

func fence(s string) string { return strings.ReplaceAll(s, "```", "'''") }

// mrkdwn makes text hero did not write (the model's words, command output,
// a person's answer) inert in Slack's markup: &, < and > are escaped, as
// Slack asks, so `<!channel>`, `<@U123>` and a disguised link such as
// `<https://evil.example|github.com>` show as typed instead of notifying
// people or hiding where a link goes.
func mrkdwn(s string) string { return mrkdwnEscaper.Replace(s) }

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// noUnfurl keeps Slack from fetching the links in a run's messages for a
// preview: a link the model wrote may carry data to its host in the URL.
func noUnfurl() slack.MsgOption {
	return slack.MsgOptionCompose(slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
}

// finalMessage closes the thread: outcome, summary, PR link, numbers.
func finalMessage(runID string, o *engine.Outcome) (string, []slack.Block) {
	var head string
	switch o.Status {
	case store.StatusSucceeded:
		head = fmt.Sprintf(":white_check_mark: *Run `%s` finished.*", runID)
	case store.StatusCancelled:
		head = fmt.Sprintf(":no_entry_sign: *Run `%s` was cancelled.*", runID)
	default:
		head = fmt.Sprintf(":x: *Run `%s` %s.*", runID, o.Status)
	}
	blocks := []slack.Block{section(head)}
	if o.Summary != "" {
		blocks = append(blocks, section(mrkdwn(o.Summary)))
	}
	if o.Error != "" {
		blocks = append(blocks, section("*Error:* "+mrkdwn(o.Error)))
	}
	if o.PullRequestURL != "" {
		blocks = append(blocks, section(fmt.Sprintf(":rocket: Pull request: <%s>", o.PullRequestURL)))
	}
	if o.DiffStat != "" {
		blocks = append(blocks, section("*Changes*\n```"+fence(mrkdwn(o.DiffStat))+"```"))
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, bot.Facts(o), false, false)))
	text := fmt.Sprintf("Run %s %s. %s", runID, o.Status, mrkdwn(o.Summary))
	if o.PullRequestURL != "" {
		text += " Pull request: " + o.PullRequestURL
	}
	return text, blocks
}

// confirmationMessage shows the exact action with Approve/Deny buttons
// while pending (a confirm dialog on high risk), and who decided once
// decided.
func confirmationMessage(c *store.Confirmation, now time.Time) (string, []slack.Block) {
	var title string
	switch c.Kind {
	case store.ConfirmKindQuestion:
		title = fmt.Sprintf(":question: *hero asks* (`%s`):", c.ID)
	case store.ConfirmKindLimit:
		title = fmt.Sprintf(":warning: *A limit was reached* (`%s`):", c.ID)
	case store.ConfirmKindUncertainty:
		title = fmt.Sprintf(":raised_hand: *hero is unsure and asks before* `%s` (`%s`, risk %s):", c.Tool, c.ID, c.Risk)
	default:
		title = fmt.Sprintf(":raised_hand: *hero wants to run* `%s` (`%s`, risk %s):", c.Tool, c.ID, c.Risk)
	}
	blocks := []slack.Block{section(title)}
	if c.Kind == store.ConfirmKindQuestion {
		blocks = append(blocks, section(mrkdwn(c.Action)))
	} else {
		blocks = append(blocks, section("```"+fence(mrkdwn(c.Action))+"```"))
	}
	if c.Reason != "" {
		blocks = append(blocks, section("_Why:_ "+mrkdwn(c.Reason)))
	}
	text := fmt.Sprintf("Confirmation %s: %s %s", c.ID, c.Tool, mrkdwn(bot.OneLine(c.Action, 200)))
	switch c.Status {
	case store.ConfirmPending:
		if !now.Before(c.ExpiresAt) {
			blocks = append(blocks, section(":hourglass: Expired at "+slackDate(c.ExpiresAt)+"; nothing was done."))
			return text, blocks
		}
		if c.Kind == store.ConfirmKindQuestion {
			blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "Reply in this thread to answer.", false, false)))
			return text, blocks
		}
		yes, no := "Approve", "Deny"
		if c.Kind == store.ConfirmKindLimit {
			yes, no = "Extend", "Stop"
		}
		approve := slack.NewButtonBlockElement(actionApprove, c.ID, slack.NewTextBlockObject(slack.PlainTextType, yes, false, false)).WithStyle(slack.StylePrimary)
		deny := slack.NewButtonBlockElement(actionDeny, c.ID, slack.NewTextBlockObject(slack.PlainTextType, no, false, false)).WithStyle(slack.StyleDanger)
		if c.Risk == "high" {
			approve = approve.WithConfirm(slack.NewConfirmationBlockObject(
				slack.NewTextBlockObject(slack.PlainTextType, "Approve a high-risk action?", false, false),
				slack.NewTextBlockObject(slack.MarkdownType, "```"+fence(mrkdwn(bot.OneLine(c.Action, 250)))+"```", false, false),
				slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false),
				slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false)).WithStyle(slack.StyleDanger))
		}
		blocks = append(blocks, slack.NewActionBlock("hero_confirm_"+c.ID, approve, deny),
			slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "Expires "+slackDate(c.ExpiresAt)+". Only the requester or a project approver can decide.", false, false)))
	case store.ConfirmExpired:
		blocks = append(blocks, section(":hourglass: Expired at "+slackDate(c.ExpiresAt)+"; nothing was done."))
	default:
		verb := map[string]string{store.ConfirmApproved: ":white_check_mark: Approved", store.ConfirmDenied: ":no_entry: Denied"}[c.Status]
		when := ""
		if c.DecidedAt != nil {
			when = " at " + slackDate(*c.DecidedAt)
		}
		by := c.DecidedBy
		if _, user, ok := strings.Cut(strings.TrimPrefix(by, "slack:"), "/"); ok && strings.HasPrefix(by, "slack:") {
			by = "<@" + user + ">"
		}
		line := fmt.Sprintf("%s by %s%s.", verb, by, when)
		if c.Kind == store.ConfirmKindQuestion {
			line = fmt.Sprintf(":speech_balloon: Answered by %s%s: %s", by, when, mrkdwn(c.Answer))
		} else if c.Answer != "" {
			line += " " + mrkdwn(c.Answer)
		}
		blocks = append(blocks, section(line))
	}
	return text, blocks
}

// slackDate renders t in each reader's own time zone.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format(time.RFC1123))
}

// codeSpan shows a tool's subject as inline code ("" stays "").
func codeSpan(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "`", "'") + "`"
}
