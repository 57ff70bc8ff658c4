package discord

import (
	"context"
	"fmt"

	"github.com/bwmarrin/discordgo"

	"github.com/hero-dev/hero/bot"
)

// Post writes text in a channel and opens a thread on it, whose id it
// returns (a scheduled run reports in that thread). In a place that is
// already a thread the message is a reply there and the thread is
// returned. The text is escaped and mentions nobody: it may quote card
// titles from GitHub issues.
func (a *Adapter) Post(ctx context.Context, place, text string) (string, error) {
	m, err := a.send(ctx, place, escape(text), nil)
	if err != nil {
		return "", fmt.Errorf("post in %s: %w", place, err)
	}
	th, err := a.api.MessageThreadStartComplex(place, m.ID, &discordgo.ThreadStart{Name: "hero: " + bot.OneLine(text, 80), AutoArchiveDuration: 1440}, discordgo.WithContext(ctx))
	if err != nil {
		// A thread has no threads: the place was one already.
		a.log.Debug("no thread on a posted message; reporting in its channel", "channel", place, "err", err)
		return place, nil
	}
	return th.ID, nil
}
