package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/web"
)

// setupWeb wires the settings page under /settings: always on.
// It adds routes through s.mounts and surfaces through a.engine.AddSurface,
// and starts its workers on workCtx.
//
// Login providers are on when their client id and secret are set
// (GOOGLE_CLIENT_ID/SECRET, GITHUB_CLIENT_ID/SECRET). With neither, hero
// logs a one-time admin login link that works only from this machine.
func setupWeb(workCtx context.Context, a *app, s *server) error {
	cfg, err := webConfig(a)
	if err != nil {
		return err
	}
	cfg.Board = s.board
	cfg.Schedules = s.schedules
	ws, err := web.New(cfg)
	if err != nil {
		return err
	}
	s.mounts = append(s.mounts, ws.Mount)
	s.site = ws
	go ws.Run(workCtx)
	if cfg.Google == nil && cfg.GitHub == nil {
		link, err := ws.AdminLoginURL(workCtx, "http://"+loopbackAddr(a.cfg.Addr))
		if err != nil {
			return fmt.Errorf("settings page: %w", err)
		}
		a.log.Warn("no login provider is configured (GOOGLE_CLIENT_ID, GITHUB_CLIENT_ID): open this one-time link in a browser on this machine to manage hero",
			"link", link, "valid_for", web.AdminLoginTTL)
	}
	return nil
}

// webConfig reads the settings page's variables.
func webConfig(a *app) (web.Config, error) {
	get := func(k string) string { return strings.TrimSpace(a.getenv(k)) }
	// A replica is its host and data directory: a restart of it revokes
	// its own earlier admin link, never another replica's.
	host, _ := os.Hostname()
	dataDir, _ := filepath.Abs(a.cfg.DataDir)
	cfg := web.Config{
		DB: a.db, Log: a.log, PublicURL: get("HERO_PUBLIC_URL"), Replica: host + ":" + dataDir,
		GitHubOAuthAccount: get("GITHUB_OAUTH_ACCOUNT"),
		Integrations:       integrations(get, a.db),
		LocalRepos:         a.cfg.localRepos(),
	}
	if a.engine != nil {
		cfg.Runs = a.engine
	}
	if a.mirrors != nil {
		cfg.ProjectDeleted = func(ctx context.Context, id int64) {
			if err := a.mirrors.Remove(ctx, id); err != nil {
				a.log.Warn("remove a deleted project's mirror", "project", id, "err", err)
			}
		}
	}
	if id, secret := get("GOOGLE_CLIENT_ID"), get("GOOGLE_CLIENT_SECRET"); id != "" || secret != "" {
		if id == "" || secret == "" {
			return cfg, fmt.Errorf("Google login needs both GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET")
		}
		cfg.Google = web.GoogleDefaults(web.OAuthConfig{
			ClientID: id, ClientSecret: secret, RedirectURL: get("GOOGLE_REDIRECT_URI"),
			AuthURL: get("GOOGLE_AUTH_URL"), TokenURL: get("GOOGLE_TOKEN_URL"),
			Issuer: get("GOOGLE_ISSUER"), JWKSURL: get("GOOGLE_JWKS_URL"),
		})
	}
	if id, secret := get("GITHUB_CLIENT_ID"), get("GITHUB_CLIENT_SECRET"); id != "" || secret != "" {
		if id == "" || secret == "" {
			return cfg, fmt.Errorf("GitHub login needs both GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET")
		}
		gh := web.OAuthConfig{ClientID: id, ClientSecret: secret, RedirectURL: get("GITHUB_REDIRECT_URI"), APIURL: get("GITHUB_API_URL")}
		if base := strings.TrimRight(get("GITHUB_OAUTH_URL"), "/"); base != "" {
			gh.AuthURL, gh.TokenURL = base+"/authorize", base+"/access_token"
		}
		cfg.GitHub = web.GitHubDefaults(gh)
	}
	if v := get("HERO_TRUST_PROXY"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("HERO_TRUST_PROXY must be true or false, got %q", v)
		}
		cfg.TrustProxy = b
	}
	for _, e := range strings.Split(get("HERO_ADMIN_EMAILS"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			cfg.AdminEmails = append(cfg.AdminEmails, e)
		}
	}
	for name, dst := range map[string]*time.Duration{"HERO_SESSION_IDLE": &cfg.SessionIdle, "HERO_SESSION_MAX": &cfg.SessionMax} {
		if v := get(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return cfg, fmt.Errorf("%s must be a duration like 12h, got %q", name, v)
			}
			*dst = d
		}
	}
	return cfg, nil
}

// integrations lists the platforms configured through the environment,
// each with a live status check, for the integrations page.
func integrations(get func(string) string, db *store.DB) []web.Integration {
	client := &http.Client{Timeout: 5 * time.Second}
	var out []web.Integration
	if tok, appSlug := get("GITHUB_TOKEN"), get("GITHUB_APP_SLUG"); tok != "" || appSlug != "" || get("GITHUB_APP_ID") != "" {
		in := web.Integration{Name: "GitHub"}
		if appSlug != "" {
			in.ConnectURL, in.ConnectLabel = "https://github.com/apps/"+appSlug+"/installations/new", "Install the GitHub app"
		}
		if tok != "" {
			api := get("GITHUB_API_URL")
			if api == "" {
				api = "https://api.github.com"
			}
			in.Status = web.GitHubTokenStatus(client, api, tok)
		}
		out = append(out, in)
	}
	if tok, clientID := get("SLACK_BOT_TOKEN"), get("SLACK_CLIENT_ID"); tok != "" || clientID != "" {
		in := web.Integration{Name: "Slack"}
		if clientID != "" {
			// The install starts here, by a logged-in site administrator.
			in.ConnectURL, in.ConnectLabel, in.AdminOnly = "/slack/install", "Add to Slack", true
		}
		if tok != "" {
			api := get("SLACK_API_URL")
			if api == "" {
				api = "https://slack.com/api/"
			}
			in.Status = web.SlackTokenStatus(client, api, tok)
		}
		out = append(out, in)
	}
	if in, ok := discordIntegration(get, db, client); ok {
		out = append(out, in)
	}
	return out
}

// loopbackAddr turns a listen address into one a local browser can open:
// 0.0.0.0:8080 and :8080 become 127.0.0.1:8080.
func loopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
