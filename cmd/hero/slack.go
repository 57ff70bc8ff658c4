package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/hero-dev/hero/bot/slack"
)

// setupSlack wires the Slack surface (slash commands, events, interactivity, Socket Mode): on when SLACK_BOT_TOKEN (or SLACK_CLIENT_ID for Add to Slack) is set.
// It adds routes through s.mounts and surfaces through a.engine.AddSurface,
// and starts its workers on workCtx.
//
// Variables: SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID +
// SLACK_CLIENT_SECRET (+ SLACK_REDIRECT_URI) for "Add to Slack", which a
// site administrator starts on the settings page (s.site);
// SLACK_SIGNING_SECRET mounts the HTTP request URLs; SLACK_APP_TOKEN turns
// on Socket Mode; SLACK_API_URL points the Web API client elsewhere.
func setupSlack(workCtx context.Context, a *app, s *server) error {
	env := func(k string) string { return strings.TrimSpace(a.getenv(k)) }
	cfg := slack.Config{
		SigningSecret: env("SLACK_SIGNING_SECRET"),
		BotToken:      env("SLACK_BOT_TOKEN"),
		AppToken:      env("SLACK_APP_TOKEN"),
		APIURL:        env("SLACK_API_URL"),
		ClientID:      env("SLACK_CLIENT_ID"),
		ClientSecret:  env("SLACK_CLIENT_SECRET"),
		RedirectURL:   env("SLACK_REDIRECT_URI"),
		Schedules:     s.schedules,
	}
	if old := env("SLACK_REDIRECT_URL"); old != "" && cfg.RedirectURL == "" {
		a.log.Warn("SLACK_REDIRECT_URL is deprecated: rename it to SLACK_REDIRECT_URI")
		cfg.RedirectURL = old
	}
	if cfg.ClientID != "" {
		if s.site == nil {
			return fmt.Errorf("slack: Add to Slack (SLACK_CLIENT_ID) needs the settings page")
		}
		cfg.Sessions = s.site
	}
	if cfg.BotToken == "" && cfg.ClientID == "" {
		a.log.Info("Slack surface is off: set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (Add to Slack), plus SLACK_SIGNING_SECRET or SLACK_APP_TOKEN")
		return nil
	}
	a.redactor.Add(cfg.BotToken, cfg.AppToken, cfg.SigningSecret, cfg.ClientSecret)
	host, _ := os.Hostname()
	cfg.Owner = fmt.Sprintf("%s-%d", host, os.Getpid())
	if cfg.SigningSecret == "" && cfg.AppToken == "" {
		a.log.Warn("Slack: neither SLACK_SIGNING_SECRET (HTTP request URLs) nor SLACK_APP_TOKEN (Socket Mode) is set, so hero hears nothing from Slack")
	}
	cfg.Board = s.board
	ad, err := slack.New(cfg, a.db, a.engine, a.log)
	if err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	a.engine.AddSurface(ad)
	// Cards are posted in the project's bound channels and edited there.
	projectBoard(workCtx, a, s, ad, "slack")
	s.mounts = append(s.mounts, func(mux *http.ServeMux) { ad.Mount(mux) })
	s.loops.start(workCtx, "slack surface", ad.Run)
	mode := "http"
	if cfg.AppToken != "" {
		mode = "socket mode"
	}
	a.log.Info("slack surface on", "mode", mode, "oauth", cfg.ClientID != "")
	return nil
}
