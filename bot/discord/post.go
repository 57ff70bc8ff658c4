package discord

import (
	"context"
	"fmt"
	"strconv"

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

// ChannelOf is the channel a place is in (schedules.Locator): a thread's
// parent, else the place itself. A thread's id looks like any channel's,
// so Discord is asked.
func (a *Adapter) ChannelOf(ctx context.Context, place string) (string, error) {
	if _, err := strconv.ParseUint(place, 10, 64); err != nil {
		return "", fmt.Errorf("discord: %q is not a channel id (a number like 1234567890)", place)
	}
	ch, err := a.api.Channel(place, discordgo.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("look up discord channel %s: %w", place, err)
	}
	return channelHint{Type: int(ch.Type), ParentID: ch.ParentID}.channelOf(place), nil
}
