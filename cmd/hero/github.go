package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hero-dev/hero/inbox"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
	ghsurface "github.com/hero-dev/hero/webhooks/github"
)

// setupGitHub wires the GitHub surface (issue comments, webhooks): on
// when GITHUB_WEBHOOK_SECRET is set. The surface takes the publisher that
// withAgent made for the workspaces and the engine (runs publish to
// GitHub with credentials alone, the surface on or off). It adds the
// webhook route through s.mounts and the surface through
// a.engine.AddSurface, and starts its inbox worker and the redelivery job
// on workCtx.
func setupGitHub(workCtx context.Context, a *app, s *server) error {
	env := func(k string) string { return strings.TrimSpace(a.getenv(k)) }
	secret := env("GITHUB_WEBHOOK_SECRET")
	if secret == "" {
		a.log.Info("GitHub surface is off: set GITHUB_WEBHOOK_SECRET (and GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY) to turn it on; POST /github/webhook is not mounted, since hero never accepts unsigned deliveries")
		return nil
	}
	if a.github == nil || a.publisher == nil {
		return errNoGitHubCredentials
	}
	apiURL, creds, app := a.github.apiURL, a.github.creds, a.github.app
	// The board shows cards as issues on this GitHub, and follows what
	// people change there (cfg.Board).
	proj, err := ghsurface.NewBoard(ghsurface.BoardConfig{Boards: a.db, APIURL: apiURL, Credentials: creds, Log: a.log})
	if err != nil {
		return fmt.Errorf("github board: %w", err)
	}
	s.projections = append(s.projections, proj)
	s.issues = proj
	if err := setupBoard(workCtx, a, s); err != nil {
		return err
	}
	cfg := ghsurface.Config{
		Publisher: a.publisher, Store: a.db, Engine: a.engine, Board: s.board,
		BotLogin:         env("GITHUB_BOT_LOGIN"),
		Handle:           env("GITHUB_BOT_HANDLE"),
		TriggerLabel:     env("GITHUB_TRIGGER_LABEL"),
		UntrustedReply:   env("GITHUB_UNTRUSTED_REPLY"),
		UnknownRepoReply: env("GITHUB_UNKNOWN_REPO_REPLY") == "true",
		RunContext:       workCtx,
		Schedules:        s.schedules,
		OnPush:           a.ws.pushed,
		Log:              a.log,
	}
	if v := env("GITHUB_COURTESY_PER_HOUR"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("GITHUB_COURTESY_PER_HOUR must be a positive number of replies, got %q", v)
		}
		cfg.CourtesyPerHour = n
	}
	for _, l := range strings.Split(env("GITHUB_ALLOWLIST"), ",") {
		if l = strings.TrimSpace(l); l != "" {
			cfg.AllowList = append(cfg.AllowList, l)
		}
	}
	if cfg.BotLogin == "" {
		ctx, cancel := context.WithTimeout(workCtx, 15*time.Second)
		login, err := ghsurface.Login(ctx, apiURL, creds)
		cancel()
		if err != nil {
			a.log.Warn("could not learn hero's GitHub login; set GITHUB_BOT_LOGIN so hero ignores its own comments by name (bots are ignored anyway)", "err", err)
		} else {
			cfg.BotLogin = login
			a.log.Info("GitHub surface on", "login", login)
		}
	}
	svc, err := ghsurface.NewService(cfg)
	if err != nil {
		return fmt.Errorf("github: %w", err)
	}
	a.engine.AddSurface(svc)
	s.metrics.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hero_github_courtesy_replies_dropped_total",
		Help: "Replies to strangers on GitHub dropped by this replica: over GITHUB_COURTESY_PER_HOUR or queue full.",
	}, func() float64 { return float64(svc.CourtesyDropped()) }))
	s.loops.start(workCtx, "github courtesy replies", svc.Run)

	host, _ := os.Hostname()
	w, err := svc.NewWorker(a.db, inbox.Config{Owner: fmt.Sprintf("%s-%d-github", host, os.Getpid())})
	if err != nil {
		return fmt.Errorf("github inbox worker: %w", err)
	}
	s.loops.start(workCtx, "github inbox worker", w.Run)
	intake, err := ghsurface.NewIntake([]byte(secret), store.NewInboxWriter(a.db, 0, 0), w.Kick, a.log.With("surface", "github"))
	if err != nil {
		return err
	}
	s.mounts = append(s.mounts, func(mux *http.ServeMux) { mux.Handle("POST /github/webhook", intake) })

	redo, err := redeliveryConfig(env, app)
	if err != nil {
		return err
	}
	if redo.App != nil || redo.RepoHooks {
		every := 10 * time.Minute
		if v := env("GITHUB_REDELIVERY_INTERVAL"); v != "" {
			if every, err = time.ParseDuration(v); err != nil || every < time.Second {
				return fmt.Errorf("GITHUB_REDELIVERY_INTERVAL must be a duration of at least 1s such as 10m, got %q", v)
			}
		}
		// One replica reads the delivery logs (the singleton lease); when
		// it stops, another takes the job at its next tick, or once the
		// lease (3 periods) lapses if it died.
		s.singletons.start(workCtx, redeliveryLease, every, func(ctx context.Context) {
			n, err := svc.RedeliverFailed(ctx, redo)
			if err != nil {
				a.log.Warn("github redelivery of failed deliveries", "err", err)
			}
			if n > 0 {
				a.log.Info("asked GitHub to redeliver failed deliveries", "count", n)
			}
		})
	}
	return nil
}

// redeliveryLease is the singleton lease of the GitHub redelivery job.
const redeliveryLease = "github-redelivery"

// redeliveryConfig says which delivery logs the redelivery job reads: the
// App's hook with App credentials; repository hooks with GITHUB_HOOK_ID
// (a hook id), or, without an App, the hooks found pointing at
// HERO_PUBLIC_URL/github/webhook (any …/github/webhook when it is unset).
// GITHUB_HOOK_ID=off reads no repository hook.
func redeliveryConfig(env func(string) string, app *ghsurface.AppCredentials) (ghsurface.Redelivery, error) {
	r := ghsurface.Redelivery{App: app, Window: 24 * time.Hour}
	switch id := env("GITHUB_HOOK_ID"); id {
	case "off":
	case "":
		r.RepoHooks = app == nil
	default:
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			return r, fmt.Errorf("GITHUB_HOOK_ID must be the repository webhook's numeric id (or off), got %q", id)
		}
		r.RepoHooks, r.HookID = true, n
	}
	if u := strings.TrimRight(env("HERO_PUBLIC_URL"), "/"); u != "" {
		r.HookURL = u + "/github/webhook"
	}
	return r, nil
}

// githubCredentials picks the credentials from the environment: a GitHub
// App, then a user's OAuth token (GITHUB_OAUTH_ACCOUNT, saved by the web
// login), then GITHUB_TOKEN.
func githubCredentials(a *app, env func(string) string, apiURL string) (ghsurface.Credentials, *ghsurface.AppCredentials, error) {
	if id := env("GITHUB_APP_ID"); id != "" {
		appID, err := strconv.ParseInt(id, 10, 64)
		if err != nil || appID <= 0 {
			return nil, nil, fmt.Errorf("GITHUB_APP_ID must be the App's numeric id, got %q", id)
		}
		keyText := env("GITHUB_APP_PRIVATE_KEY")
		if keyText == "" {
			return nil, nil, fmt.Errorf("GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY is empty: paste the App's private key (PEM)")
		}
		key, err := ghsurface.ParsePrivateKey(keyText)
		if err != nil {
			return nil, nil, err
		}
		app, err := ghsurface.NewAppCredentials(appID, key, apiURL, nil, ghsurface.WithOnToken(func(tok string) { a.redactor.Add(tok) }))
		if err != nil {
			return nil, nil, err
		}
		return app, app, nil
	}
	if account := env("GITHUB_OAUTH_ACCOUNT"); account != "" {
		tokenURL := env("GITHUB_OAUTH_TOKEN_URL")
		if tokenURL == "" {
			tokenURL = "https://" + webHostOf(apiURL) + "/login/oauth/access_token"
		}
		o, err := ghsurface.NewOAuthCredentials(env("GITHUB_CLIENT_ID"), env("GITHUB_CLIENT_SECRET"), tokenURL, account, a.db, nil, ghsurface.WithOnToken(func(tok string) { a.redactor.Add(tok) }))
		if err != nil {
			return nil, nil, fmt.Errorf("GITHUB_OAUTH_ACCOUNT=%s: %w (set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET)", account, err)
		}
		return o, nil, nil
	}
	if a.cfg.GitHubToken != "" {
		return ghsurface.StaticToken(a.cfg.GitHubToken), nil, nil
	}
	return nil, nil, errNoGitHubCredentials
}

// errNoGitHubCredentials: the GitHub surface is asked for without
// credentials to act with.
var errNoGitHubCredentials = errors.New("GITHUB_WEBHOOK_SECRET is set but hero has no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY, or GITHUB_OAUTH_ACCOUNT with GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET")

// githubAccount is hero's GitHub account as the environment configures
// it (githubCredentials).
type githubAccount struct {
	apiURL string
	creds  ghsurface.Credentials
	// app is set when the credentials are a GitHub App's (the
	// redelivery job reads the App's hook with it).
	app *ghsurface.AppCredentials
}

// openGitHub reads hero's GitHub account from the environment: nil when
// no credentials are configured.
func openGitHub(a *app) (*githubAccount, error) {
	env := func(k string) string { return strings.TrimSpace(a.getenv(k)) }
	if a.cfg.GitHubToken == "" && env("GITHUB_APP_ID") == "" && env("GITHUB_OAUTH_ACCOUNT") == "" {
		return nil, nil
	}
	apiURL := env("GITHUB_API_URL")
	creds, app, err := githubCredentials(a, env, apiURL)
	if err != nil {
		return nil, err
	}
	return &githubAccount{apiURL: apiURL, creds: creds, app: app}, nil
}

// githubBoard is the GitHub projection of boards for the command line
// (hero card add opens the card's issue), when GitHub credentials are
// configured; nil otherwise.
func githubBoard(a *app) (kanban.Projection, error) {
	gh, err := openGitHub(a)
	if err != nil || gh == nil {
		return nil, err
	}
	b, err := ghsurface.NewBoard(ghsurface.BoardConfig{Boards: a.db, APIURL: gh.apiURL, Credentials: gh.creds, Log: a.log})
	if err != nil {
		return nil, fmt.Errorf("github board: %w", err)
	}
	return b, nil
}

// webHostOf is the web host for an API root (api.github.com → github.com).
func webHostOf(apiURL string) string {
	if apiURL == "" {
		return "github.com"
	}
	h := strings.TrimPrefix(strings.TrimPrefix(apiURL, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	if h == "api.github.com" {
		return "github.com"
	}
	return h
}
