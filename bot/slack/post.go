package slack

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"
)

// Post writes text in a channel ("T1/C2": a new message, whose thread a
// scheduled run then reports in) or a thread ("T1/C2/ts": a reply), and
// returns the thread's reference (team/channel/ts). The text is escaped:
// it may quote card titles from GitHub issues, which must not ping the
// channel.
func (a *Adapter) Post(ctx context.Context, place, text string) (string, error) {
	team, ch, thread, err := parsePlace(place)
	if err != nil {
		return "", err
	}
	var ts string
	err = a.out.call(ctx, team, ch, &job{what: "chat.postMessage", paced: true, call: func(ctx context.Context, api *slack.Client) error {
		opts := []slack.MsgOption{slack.MsgOptionText(text, true), noUnfurl()}
		if thread != "" {
			opts = append(opts, slack.MsgOptionTS(thread))
		}
		var err error
		_, ts, err = api.PostMessageContext(ctx, ch, opts...)
		return err
	}})
	if err != nil {
		return "", fmt.Errorf("post in %s: %w", place, err)
	}
	if thread != "" {
		ts = thread
	}
	return threadRef(team, ch, ts), nil
}

// ChannelOf is the channel a place is in: "T1/C2" for the channel itself
// and for its threads "T1/C2/ts" (schedules.Locator).
func (a *Adapter) ChannelOf(_ context.Context, place string) (string, error) {
	team, ch, _, err := parsePlace(place)
	if err != nil {
		return "", err
	}
	return chatID(team, ch), nil
}

// parsePlace splits a place: a channel (team/channel) or a thread in it
// (team/channel/ts).
func parsePlace(place string) (team, channel, thread string, err error) {
	parts := strings.SplitN(place, "/", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", "", "", fmt.Errorf("slack: malformed channel %q (want team/channel)", place)
	}
	if len(parts) == 3 {
		thread = parts[2]
	}
	return parts[0], parts[1], thread, nil
}
