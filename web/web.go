// Package web is hero's settings page: OAuth login (Google, GitHub) with
// database-backed sessions, and server-rendered pages for projects,
// members and roles, write-only secrets, run history and integrations.
//
// Every page is plain HTML (html/template, CSS embedded in the binary) and
// every form works without JavaScript. Every handler checks the caller's
// role in the project it touches; every state-changing request passes
// Go's cross-origin protection and carries the session's CSRF token.
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/membership"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// RunControl stops runs and decides their confirmations on behalf of a
// person; *engine.Engine is one. Both check the person's right to do so:
// Cancel returns an error wrapping engine.ErrNotAllowed or
// engine.ErrFinished when it refuses, Decide one wrapping
// engine.ErrNotAllowed or engine.ErrAlreadyDecided (decided, or expired).
type RunControl interface {
	Cancel(ctx context.Context, executionID string, by engine.Principal) error
	Decide(ctx context.Context, confirmationID string, d engine.Decision) (*store.Confirmation, error)
}

// Config holds the settings page's dependencies and options.
type Config struct {
	DB  *store.DB
	Log *slog.Logger
	// Runs cancels runs and decides their confirmations from the run
	// page; nil hides those buttons.
	Runs RunControl
	// Board is the kanban service, with the projections and run start
	// the server wires; nil means one over DB with neither.
	Board *kanban.Service
	// Schedules manages schedules (hero serve's scheduler); nil means
	// one over DB.
	Schedules *schedules.Service

	// Google and GitHub are the login providers; nil turns one off.
	Google *OAuthConfig
	GitHub *OAuthConfig
	// HTTPClient makes the calls to the providers (token exchange, JWKS,
	// user info); nil means a client with a 15 s timeout.
	HTTPClient *http.Client

	// Replica names this server among replicas sharing the database: an
	// admin login link it prints revokes only the unused links it printed
	// before. Empty means "hero" (one server).
	Replica string

	// PublicURL ("https://hero.example.com") is used to build OAuth
	// redirect URLs that are not configured explicitly; empty means the
	// scheme and host of the request.
	PublicURL string
	// TrustProxy honours X-Forwarded-Proto from a reverse proxy when
	// deciding whether the connection is HTTPS (cookies get Secure).
	TrustProxy bool
	// GitHubOAuthAccount is the GitHub login hero acts as with a user
	// OAuth token (GITHUB_OAUTH_ACCOUNT); the integrations page connects
	// it and shows its token's status.
	GitHubOAuthAccount string
	// AdminEmails become site administrators when they log in: they may
	// create projects and act as owners of every project.
	AdminEmails []string

	// SessionIdle ends a session unused for this long (default 12 h);
	// SessionMax ends any session this long after login (default 7 days).
	SessionIdle time.Duration
	SessionMax  time.Duration

	// LocalRepos says which directories on this machine a project may
	// name as its repository (HERO_LOCAL_REPO_ROOT).
	LocalRepos sandbox.LocalRepos
	// ProjectDeleted, when set, is told of a deleted project so that its
	// repository mirror and caches on this host go with it.
	ProjectDeleted func(ctx context.Context, id int64)

	// Integrations are shown, with their live status, on the
	// integrations page.
	Integrations []Integration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Integration is one connectable platform on the integrations page.
type Integration struct {
	Name string // "GitHub", "Slack", "Discord"
	// ConnectURL starts the connection ("Add to Slack", install the
	// GitHub app); empty when there is nothing to connect.
	ConnectURL   string
	ConnectLabel string
	// AdminOnly shows the connect button to site administrators only
	// (installing hero into a Slack workspace is theirs to do).
	AdminOnly bool
	// Status checks the connection now: ok, and a short human detail
	// ("token valid for team Acme", "missing scope chat:write").
	Status func(ctx context.Context) (ok bool, detail string)
}

// Binding is a chat channel bound to a project, as the integrations
// page shows it.
type Binding struct {
	Surface string // "slack", "discord"
	Channel string // the platform's channel id or name
	Project string
	By      string
	At      time.Time
}

// Server serves the settings page. Create it with New and add its routes
// to a mux with Mount.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	client *http.Client
	pages  map[string]*template.Template
	static http.Handler
	cop    *http.CrossOriginProtection
	jwks   *jwksCache
	admins map[string]bool
	// members applies membership changes (shared with the command line).
	members *membership.Rules
	// board applies the kanban rules (shared with every other surface).
	board     *kanban.Service
	schedules *schedules.Service
}

// New checks cfg and parses the templates.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("web: DB is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Replica == "" {
		cfg.Replica = "hero"
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 12 * time.Hour
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = 7 * 24 * time.Hour
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("web: public URL %q must be like https://hero.example.com", cfg.PublicURL)
		}
		cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	}
	for _, p := range []*OAuthConfig{cfg.Google, cfg.GitHub} {
		if p != nil && (p.ClientID == "" || p.ClientSecret == "") {
			return nil, errors.New("web: an OAuth provider needs both a client id and a client secret")
		}
	}
	s := &Server{cfg: cfg, log: cfg.Log.With("component", "web"), now: cfg.Now, client: cfg.HTTPClient,
		cop: http.NewCrossOriginProtection(), admins: map[string]bool{}}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.members, err = membership.New(cfg.DB, s.log); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if s.board = cfg.Board; s.board == nil {
		if s.board, err = kanban.New(kanban.Config{Store: cfg.DB, Log: s.log}); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
	}
	if s.schedules = cfg.Schedules; s.schedules == nil {
		if s.schedules, err = defaultSchedules(cfg.DB); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 15 * time.Second}
	}
	for _, e := range cfg.AdminEmails {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			s.admins[e] = true
		}
	}
	if cfg.Google != nil {
		s.jwks = &jwksCache{url: cfg.Google.JWKSURL, client: s.client, now: s.now}
	}
	s.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Forbidden: this request came from another site. Reload the page and try again.", http.StatusForbidden)
	}))
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static assets: %w", err)
	}
	s.static = http.StripPrefix("/settings/static/", http.FileServerFS(static))
	return s, nil
}

// Mount adds the settings page's routes to mux.
func (s *Server) Mount(mux *http.ServeMux) {
	h := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, s.protect(fn)) }

	h("GET /settings/static/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		s.static.ServeHTTP(w, r)
	})
	h("GET /auth/{provider}/login", s.oauthLogin)
	h("GET /auth/{provider}/callback", s.oauthCallback)
	h("GET /auth/admin", s.adminLogin)
	h("GET /settings/login", s.loginPage)
	h("POST /settings/logout", s.user(s.logout))
	h("POST /settings/logout-everywhere", s.user(s.logoutEverywhere))

	h("GET /settings", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/settings/projects", http.StatusSeeOther)
	})
	h("GET /settings/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/settings/projects", http.StatusSeeOther)
	})
	h("GET /settings/projects", s.user(s.projectsPage))
	h("POST /settings/projects", s.user(s.createProject))
	h("GET /settings/projects/{project}", s.project(store.RoleViewer, s.projectPage))
	h("POST /settings/projects/{project}", s.project(store.RoleAdmin, s.saveProject))
	h("POST /settings/projects/{project}/delete", s.project(store.RoleOwner, s.deleteProject))
	h("GET /settings/projects/{project}/members", s.project(store.RoleViewer, s.membersPage))
	h("POST /settings/projects/{project}/members", s.project(store.RoleAdmin, s.setMember))
	h("POST /settings/projects/{project}/members/{user}/remove", s.project(store.RoleAdmin, s.removeMember))
	h("GET /settings/projects/{project}/secrets", s.project(store.RoleViewer, s.secretsPage))
	h("POST /settings/projects/{project}/secrets", s.project(store.RoleAdmin, s.setSecret))
	h("POST /settings/projects/{project}/secrets/{secret}/delete", s.project(store.RoleAdmin, s.deleteSecret))
	h("GET /settings/runs", s.user(s.runsPage))
	h("GET /settings/runs/{run}", s.run(store.RoleViewer, s.runPage))
	h("POST /settings/runs/{run}/cancel", s.run(store.RoleMember, s.cancelRun))
	// The engine decides who may decide (the run's requester or an
	// approver); the page only needs them to see the run.
	h("POST /settings/runs/{run}/confirmations/{confirmation}/approve", s.run(store.RoleViewer, s.decide(true)))
	h("POST /settings/runs/{run}/confirmations/{confirmation}/deny", s.run(store.RoleViewer, s.decide(false)))
	h("GET /settings/integrations", s.user(s.integrationsPage))
	h("POST /settings/integrations/link-code", s.user(s.createLinkCode))
	h("POST /settings/integrations/chat-accounts/unlink", s.user(s.unlinkChatAccount))
	h("POST /settings/integrations/slack/{team}/allow", s.user(s.allowSlackWorkspace))
	s.mountBoard(h)
	s.mountSchedules(h)
}

// Run calls Cleanup every hour until ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := s.Cleanup(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("settings page cleanup", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Cleanup deletes expired sessions, abandoned login attempts and old
// counts of wrong link codes. Expired
// ones never log anyone in anyway; this keeps the tables small.
func (s *Server) Cleanup(ctx context.Context) error {
	now := s.now()
	if _, err := s.cfg.DB.DeleteExpiredSessions(ctx, now.Add(-s.cfg.SessionIdle), now.Add(-s.cfg.SessionMax)); err != nil {
		return fmt.Errorf("delete expired sessions: %w", err)
	}
	if _, err := s.cfg.DB.DeleteExpiredOAuthStates(ctx, now); err != nil {
		return fmt.Errorf("delete expired login attempts: %w", err)
	}
	// Wrong link codes count for an hour at most (store.LinkFailsPerHour).
	if _, err := s.cfg.DB.PruneLimits(ctx, store.LimitLinkFail, now.Add(-24*time.Hour)); err != nil {
		return fmt.Errorf("delete old link code attempts: %w", err)
	}
	return nil
}

// protect adds the security headers and the cross-origin check every
// response of the settings page gets.
func (s *Server) protect(next http.Handler) http.Handler {
	inner := s.cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/settings/static/") {
			h.Set("Cache-Control", "no-store")
		}
		if s.secure(r) {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		inner.ServeHTTP(w, r)
	})
}

// secure reports whether the browser reached us over HTTPS.
func (s *Server) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return s.cfg.TrustProxy && strings.EqualFold(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0]), "https")
}

// randomToken returns 32 random bytes, base64url without padding.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is how tokens are stored: SHA-256, hex.
func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

func equalTokens(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// safeNext returns next if it is a path on this site, else the projects
// page: a login link must never send anyone to another site.
func safeNext(next string) string {
	const home = "/settings/projects"
	if next == "" || len(next) > 2000 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\x00\r\n\t") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return home
	}
	return u.RequestURI()
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	User    *store.User
	CSRF    string
	Flash   string
	Error   string
	Project *store.Project
	Role    store.Role // the user's effective role in Project
	Data    any
}

func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{
		"when": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return "—"
				}
				return v.UTC().Format("2006-01-02 15:04 UTC")
			case *time.Time:
				if v == nil || v.IsZero() {
					return "—"
				}
				return v.UTC().Format("2006-01-02 15:04 UTC")
			}
			return ""
		},
		"usd":     func(f float64) string { return fmt.Sprintf("$%.4f", f) },
		"atLeast": func(role, min store.Role) bool { return role.AtLeast(min) },
		"roles":   store.Roles,
		"final":   store.Final,
		"list":    func(xs ...string) []string { return xs },
	}
	s.pages = map[string]*template.Template{}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return fmt.Errorf("web: templates: %w", err)
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(assets, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("web: parse %s: %w", n, err)
		}
		s.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return nil
}

// render writes a page; status 0 means 200.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := s.pages[page]
	if !ok {
		s.fail(w, r, fmt.Errorf("no template %q", page))
		return
	}
	if sess := sessionFrom(r); sess != nil {
		v.User, v.CSRF = sess.user, sess.csrf
	}
	if v.Flash == "" {
		v.Flash = flashes[r.URL.Query().Get("ok")]
	}
	if v.Error == "" {
		v.Error = errFlashes[r.URL.Query().Get("err")]
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		s.fail(w, r, fmt.Errorf("render %s: %w", page, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// flashes are the fixed messages a redirect may ask for with ?ok=…; only
// these, so a link cannot make the page say something else.
var flashes = map[string]string{
	"created":              "Project created.",
	"saved":                "Saved.",
	"deleted":              "Project deleted.",
	"member":               "Member saved.",
	"removed":              "Member removed.",
	"secret-added":         "Secret added.",
	"secret-set":           "Secret replaced.",
	"secret-gone":          "Secret deleted.",
	"cancelling":           "Cancelling: the run stops within a few seconds.",
	"approved":             "Approved: the run goes on.",
	"answered":             "Answer sent: the run goes on with it.",
	"denied":               "Denied: the run is told and goes on without it.",
	"logged-out":           "You are logged out.",
	"logged-out-all":       "You are logged out on every device.",
	"github-connected":     "GitHub account connected: hero keeps its token fresh from now on.",
	"github-wrong-account": "That is not the GitHub account hero acts as (GITHUB_OAUTH_ACCOUNT). Log in to GitHub as that account, then connect again.",
	"github-failed":        "Connecting GitHub did not work; the log says why. Try again.",
	"slack-installed":      "hero is installed in the Slack workspace. Invite it to a channel and type /hero use PROJECT there.",
	"slack-allowed":        "Slack workspace allowed: its people can use hero now, matched by their confirmed email.",
	"unlinked":             "Chat account unlinked: it no longer acts as you.",
	"card-added":           "Card added.",
	"card-moved":           "Card moved.",
	"card-saved":           "Card saved.",
	"board-saved":          "Board settings saved.",
	"card-run":             "Card moved: hero is working on it. Its run reports on the card and in its threads.",
	"card-moved-no-run":    "Card moved, but its run did not start; the card's history says why.",
	"schedule-pause":       "Schedule paused.",
	"schedule-resume":      "Schedule resumed from its next slot.",
	"schedule-rm":          "Schedule removed.",
}

// errFlashes are the fixed error messages a redirect may ask for with
// ?err=….
var errFlashes = map[string]string{
	"github-wrong-account": "That is not the GitHub account hero acts as (GITHUB_OAUTH_ACCOUNT). Log in to GitHub as that account, then connect again.",
	"github-failed":        "Connecting GitHub did not work; the log says why. Try again.",
}

// fail answers 500 and logs err; the page shows no internals.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("settings page", "path", r.URL.Path, "err", err)
	http.Error(w, "Something went wrong on our side; it has been logged. Try again in a minute.", http.StatusInternalServerError)
}

// problem answers a 4xx with a short page.
func (s *Server) problem(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "problem", &view{Title: http.StatusText(status), Data: msg})
}

func redirect(w http.ResponseWriter, r *http.Request, path, ok string) {
	if ok != "" {
		path += "?ok=" + url.QueryEscape(ok)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

func redirectErr(w http.ResponseWriter, r *http.Request, path, code string) {
	http.Redirect(w, r, path+"?err="+url.QueryEscape(code), http.StatusSeeOther)
}
