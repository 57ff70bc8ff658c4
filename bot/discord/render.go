package discord

import (
	"fmt"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// maxContent is Discord's limit on a message's content.
const maxContent = 2000

// custom_id prefixes of the confirmation buttons. The id carries only the
// confirmation's id (state is in the database), so a click after a
// restart, or on another replica, still works.
const (
	approvePrefix = "hero:approve:"
	denyPrefix    = "hero:deny:"
)

// noMentions keeps a message from notifying anyone whatever its text
// says: everything the model, a command's output or a person wrote is
// posted with it.
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

// escape makes text hero did not write inert in Discord's markdown: no
// formatting, masked links, headings, quotes or mentions (`<@id>`,
// `@everyone` show as typed).
func escape(s string) string { return escaper.Replace(s) }

var escaper = strings.NewReplacer(
	`\`, `\\`, `*`, `\*`, `_`, `\_`, `~`, `\~`, "`", "\\`", `|`, `\|`, `>`, `\>`, `<`, `\<`,
	`#`, `\#`, `[`, `\[`, `]`, `\]`, `(`, `\(`, `)`, `\)`, `-`, `\-`, `:`, `\:`,
	// A zero-width space keeps @everyone and @here plain text.
	"@everyone", "@\u200beveryone", "@here", "@\u200bhere",
)

// pings are the mass mentions, defused even inside code.
var pings = strings.NewReplacer("@everyone", "@\u200beveryone", "@here", "@\u200bhere")

// code puts text in a fenced block that it cannot close.
func code(s string) string {
	return "```\n" + pings.Replace(strings.ReplaceAll(s, "```", "ʼʼʼ")) + "\n```"
}

// inline shows text as inline code.
func inline(s string) string {
	return "`" + pings.Replace(strings.ReplaceAll(s, "`", "ʼ")) + "`"
}

// clip keeps a message within Discord's limit.
func clip(s string) string { return bot.Clip(s, maxContent-1) }

// look is how Discord draws a run's progress.
var look = bot.Look{
	Done: "✔️", Failed: "⚠️", Asked: "✋", Message: "💬", Warning: "⚠️",
	Working: "⏳", Waiting: "✋", Succeeded: "✅", Failure: "❌", Cancelled: "🚫",
	Code: inline, Text: escape,
}

// progressText is a run's progress message: status, recent steps, what
// runs now with its output, cost so far.
func progressText(p *bot.Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s **Run `%s`** · %s · %d steps\n", look.Status(p.Status), p.RunID, p.Status, len(p.Steps))
	lines, _ := p.Lines(maxStepLines, look.Line)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if now := p.Doing(inline); now != "" || p.Output != "" {
		b.WriteString("**Now:** " + now + "\n")
		if p.Output != "" {
			b.WriteString(code(p.Output) + "\n")
		}
	}
	b.WriteString("-# " + p.CostSoFar())
	return clip(b.String())
}

// finalText closes the thread: outcome, summary, pull request, changes,
// steps, tokens and cost.
func finalText(runID string, o *engine.Outcome) string {
	var b strings.Builder
	switch o.Status {
	case store.StatusSucceeded:
		fmt.Fprintf(&b, "✅ **Run `%s` finished.**\n", runID)
	case store.StatusCancelled:
		fmt.Fprintf(&b, "🚫 **Run `%s` was cancelled.**\n", runID)
	default:
		fmt.Fprintf(&b, "❌ **Run `%s` %s.**\n", runID, o.Status)
	}
	var facts strings.Builder
	if o.PullRequestURL != "" {
		fmt.Fprintf(&facts, "🚀 Pull request: <%s>\n", strings.NewReplacer(">", "%3E", " ", "%20").Replace(o.PullRequestURL))
	}
	if o.DiffStat != "" {
		facts.WriteString("**Changes**\n" + code(bot.Tail(o.DiffStat, 600)) + "\n")
	}
	facts.WriteString("-# " + bot.Facts(o))
	// The summary gives way to the facts when the message is too long.
	room := maxContent - len([]rune(b.String())) - len([]rune(facts.String())) - 20
	if o.Summary != "" {
		b.WriteString(escape(bot.Clip(o.Summary, max(room/2, 0))) + "\n")
	}
	if o.Error != "" {
		b.WriteString("**Error:** " + escape(bot.Clip(o.Error, max(room/4, 0))) + "\n")
	}
	b.WriteString(facts.String())
	return clip(b.String())
}

// confirmationMessage shows the exact action with Approve/Deny buttons
// while pending, and the outcome (no buttons) once decided or expired.
func confirmationMessage(c *store.Confirmation, now time.Time) (string, []discordgo.MessageComponent) {
	var b strings.Builder
	switch c.Kind {
	case store.ConfirmKindQuestion:
		fmt.Fprintf(&b, "❓ **hero asks** (`%s`):\n%s\n", c.ID, escape(bot.Clip(c.Action, 1200)))
	case store.ConfirmKindLimit:
		fmt.Fprintf(&b, "⚠️ **A limit was reached** (`%s`):\n%s\n", c.ID, code(bot.Clip(c.Action, 1000)))
	case store.ConfirmKindUncertainty:
		fmt.Fprintf(&b, "✋ **hero is unsure and asks before** %s (`%s`, risk %s):\n%s\n", inline(c.Tool), c.ID, c.Risk, code(bot.Clip(c.Action, 1000)))
	default:
		fmt.Fprintf(&b, "✋ **hero wants to run** %s (`%s`, risk %s):\n%s\n", inline(c.Tool), c.ID, c.Risk, code(bot.Clip(c.Action, 1000)))
	}
	if c.Reason != "" {
		b.WriteString("*Why:* " + escape(bot.Clip(c.Reason, 300)) + "\n")
	}
	expired := fmt.Sprintf("⌛ Expired <t:%d:f>; nothing was done.", c.ExpiresAt.Unix())
	switch c.Status {
	case store.ConfirmPending:
		if !now.Before(c.ExpiresAt) {
			b.WriteString(expired)
			return clip(b.String()), []discordgo.MessageComponent{}
		}
		if c.Kind == store.ConfirmKindQuestion {
			b.WriteString("-# Reply to this message (or mention hero in this thread) to answer.")
			return clip(b.String()), []discordgo.MessageComponent{}
		}
		yes, no := "Approve", "Deny"
		if c.Kind == store.ConfirmKindLimit {
			yes, no = "Extend", "Stop"
		}
		fmt.Fprintf(&b, "-# Expires <t:%d:R>. Only the requester or a project approver can decide.", c.ExpiresAt.Unix())
		return clip(b.String()), []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
			discordgo.Button{Label: yes, Style: discordgo.SuccessButton, CustomID: approvePrefix + c.ID},
			discordgo.Button{Label: no, Style: discordgo.DangerButton, CustomID: denyPrefix + c.ID},
		}}}
	case store.ConfirmExpired:
		b.WriteString(expired)
	default:
		verb := map[string]string{store.ConfirmApproved: "✅ Approved", store.ConfirmDenied: "⛔ Denied"}[c.Status]
		when := ""
		if c.DecidedAt != nil {
			when = fmt.Sprintf(" <t:%d:f>", c.DecidedAt.Unix())
		}
		by := escape(c.DecidedBy)
		if id, ok := strings.CutPrefix(c.DecidedBy, "discord:"); ok {
			by = "<@" + id + ">"
		}
		line := fmt.Sprintf("%s by %s%s.", verb, by, when)
		if c.Kind == store.ConfirmKindQuestion {
			line = fmt.Sprintf("💬 Answered by %s%s: %s", by, when, escape(bot.Clip(c.Answer, 500)))
		} else if c.Answer != "" {
			line += " " + escape(bot.Clip(c.Answer, 300))
		}
		b.WriteString(line)
	}
	return clip(b.String()), []discordgo.MessageComponent{}
}
