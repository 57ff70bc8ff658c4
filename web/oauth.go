package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/hero-dev/hero/store"
)

// OAuthConfig is one login provider. The endpoint fields have public
// defaults (GoogleDefaults, GitHubDefaults) and exist so that GitHub
// Enterprise, proxies and tests can point elsewhere.
type OAuthConfig struct {
	ClientID     string
	ClientSecret string
	// RedirectURL is the callback registered with the provider; empty
	// means PublicURL (or the request's origin) + /auth/<provider>/callback.
	RedirectURL string
	AuthURL     string
	TokenURL    string

	// Google (OpenID Connect): the ID token must be signed by a key from
	// JWKSURL and issued by Issuer.
	Issuer  string
	JWKSURL string

	// GitHub: the REST API the user and their emails are read from.
	APIURL string
}

// GoogleDefaults fills Google's public endpoints into the empty fields.
func GoogleDefaults(c OAuthConfig) *OAuthConfig {
	def(&c.AuthURL, "https://accounts.google.com/o/oauth2/v2/auth")
	def(&c.TokenURL, "https://oauth2.googleapis.com/token")
	def(&c.Issuer, "https://accounts.google.com")
	def(&c.JWKSURL, "https://www.googleapis.com/oauth2/v3/certs")
	return &c
}

// GitHubDefaults fills github.com's endpoints into the empty fields.
func GitHubDefaults(c OAuthConfig) *OAuthConfig {
	def(&c.AuthURL, "https://github.com/login/oauth/authorize")
	def(&c.TokenURL, "https://github.com/login/oauth/access_token")
	def(&c.APIURL, "https://api.github.com")
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	return &c
}

func def(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

// oauthCookie binds a login attempt to the browser that started it.
const oauthCookie = "hero_oauth"

// loginAttemptTTL is how long a person has to finish a login at the
// provider.
const loginAttemptTTL = 10 * time.Minute

func (s *Server) provider(name string) *OAuthConfig {
	switch name {
	case "google":
		return s.cfg.Google
	case "github":
		return s.cfg.GitHub
	}
	return nil
}

// oauth2Config is the provider's client; connect asks GitHub for the repo
// scope too, for the account hero acts as.
func (s *Server) oauth2Config(r *http.Request, name string, p *OAuthConfig, connect bool) *oauth2.Config {
	redirect := p.RedirectURL
	if redirect == "" {
		base := s.cfg.PublicURL
		if base == "" {
			scheme := "http"
			if s.secure(r) {
				scheme = "https"
			}
			base = scheme + "://" + r.Host
		}
		redirect = base + "/auth/" + name + "/callback"
	}
	scopes := []string{"openid", "email", "profile"}
	if name == "github" {
		scopes = []string{"read:user", "user:email"}
		if connect {
			scopes = append(scopes, "repo")
		}
	}
	return &oauth2.Config{
		ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: redirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL},
	}
}

// oauthLogin starts a login: a fresh state bound to this browser by a
// cookie, a PKCE verifier and (Google) a nonce, kept in the database
// until the provider sends the browser back.
func (s *Server) oauthLogin(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	p := s.provider(name)
	if p == nil {
		s.problem(w, r, http.StatusNotFound, fmt.Sprintf("Login with %q is not configured on this server.", name))
		return
	}
	// ?connect=1 (GitHub, site administrators) connects the GitHub account
	// hero acts as, instead of logging in.
	connect := name == "github" && r.URL.Query().Get("connect") == "1"
	purpose := name
	if connect {
		sess, err := s.loadSession(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if sess == nil || !sess.user.IsAdmin {
			s.problem(w, r, http.StatusForbidden, "Only a logged-in site administrator can connect the GitHub account hero acts as.")
			return
		}
		purpose = connectPurpose
	}
	state, binding, verifier, nonce := randomToken(), randomToken(), oauth2.GenerateVerifier(), randomToken()
	now := s.now().UTC()
	err := s.cfg.DB.SaveOAuthState(r.Context(), &store.OAuthState{
		StateHash: hashToken(state), Provider: purpose, BindingHash: hashToken(binding),
		Verifier: verifier, Nonce: nonce, Next: safeNext(r.URL.Query().Get("next")),
		CreatedAt: now, ExpiresAt: now.Add(loginAttemptTTL),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: oauthCookie, Value: binding, Path: "/auth/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: s.secure(r), MaxAge: int(loginAttemptTTL.Seconds()),
	})
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if name == "google" {
		opts = append(opts, oauth2.SetAuthURLParam("nonce", nonce), oauth2.SetAuthURLParam("prompt", "select_account"))
	}
	http.Redirect(w, r, s.oauth2Config(r, name, p, connect).AuthCodeURL(state, opts...), http.StatusFound)
}

// identity is who a provider says the person is.
type identity struct {
	provider, externalID, email, name string
}

// oauthCallback finishes a login: the state must be one this browser
// started, the code is exchanged with the PKCE verifier, and the person's
// verified email becomes their hero user.
func (s *Server) oauthCallback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	p := s.provider(name)
	if p == nil {
		s.problem(w, r, http.StatusNotFound, fmt.Sprintf("Login with %q is not configured on this server.", name))
		return
	}
	q := r.URL.Query()
	http.SetCookie(w, &http.Cookie{Name: oauthCookie, Value: "", Path: "/auth/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.secure(r), MaxAge: -1})
	loginErr := func(code string, err error) {
		s.log.Warn("login failed", "provider", name, "reason", code, "err", err)
		http.Redirect(w, r, "/settings/login?error="+code, http.StatusSeeOther)
	}
	if e := q.Get("error"); e != "" {
		loginErr("denied", fmt.Errorf("provider said %q", truncate(e, 100)))
		return
	}
	st, err := s.cfg.DB.TakeOAuthState(r.Context(), hashToken(q.Get("state")), s.now())
	if errors.Is(err, store.ErrNotFound) {
		loginErr("expired", errors.New("unknown or expired state"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, cerr := r.Cookie(oauthCookie)
	connect := name == "github" && st.Provider == connectPurpose
	if (st.Provider != name && !connect) || cerr != nil || !equalTokens(hashToken(c.Value), st.BindingHash) {
		loginErr("expired", errors.New("state not bound to this browser"))
		return
	}
	code := q.Get("code")
	if code == "" {
		loginErr("failed", errors.New("no code in the callback"))
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, s.client)
	tok, err := s.oauth2Config(r, name, p, connect).Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		loginErr("failed", fmt.Errorf("exchange code: %w", err))
		return
	}
	if connect {
		s.connectGitHub(ctx, w, r, p, tok)
		return
	}
	var id identity
	switch name {
	case "google":
		id, err = s.googleIdentity(ctx, p, tok, st.Nonce)
	case "github":
		id, err = s.githubIdentity(ctx, p, tok)
	}
	if errors.Is(err, errUnverified) {
		loginErr("unverified", err)
		return
	}
	if err != nil {
		loginErr("failed", err)
		return
	}
	u, err := s.cfg.DB.UpsertUser(r.Context(), id.email, id.name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.DB.LinkIdentity(r.Context(), id.provider, id.externalID, u.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.admins[u.Email] && !u.IsAdmin {
		if err := s.cfg.DB.SetUserAdmin(r.Context(), u.ID, true); err != nil {
			s.fail(w, r, err)
			return
		}
		u.IsAdmin = true
	}
	if err := s.startSession(w, r, u); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, safeNext(st.Next), http.StatusSeeOther)
}

var errUnverified = errors.New("no verified email address")

// connectPurpose marks a login attempt that connects hero's GitHub
// account rather than logging someone in.
const connectPurpose = "github-connect"

// connectGitHub saves the OAuth token (with its refresh token) of the
// GitHub account hero acts as (GITHUB_OAUTH_ACCOUNT); the GitHub surface
// refreshes it from then on. The person stays logged in as themselves,
// and must still be a site administrator.
func (s *Server) connectGitHub(ctx context.Context, w http.ResponseWriter, r *http.Request, p *OAuthConfig, tok *oauth2.Token) {
	sess, err := s.loadSession(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if sess == nil || !sess.user.IsAdmin {
		s.problem(w, r, http.StatusForbidden, "Only a logged-in site administrator can connect the GitHub account hero acts as.")
		return
	}
	var user struct {
		Login string `json:"login"`
	}
	if err := s.githubGet(ctx, p, tok, "/user", &user); err != nil || user.Login == "" {
		s.log.Warn("connect github: read the account", "err", err)
		redirectErr(w, r, "/settings/integrations", "github-failed")
		return
	}
	if want := s.cfg.GitHubOAuthAccount; want != "" && !strings.EqualFold(want, user.Login) {
		s.log.Warn("connect github: wrong account", "got", user.Login, "want", want, "by", sess.user.Email)
		redirectErr(w, r, "/settings/integrations", "github-wrong-account")
		return
	}
	if err := s.cfg.DB.SaveGitHubToken(r.Context(), user.Login, store.OAuthToken{
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry,
	}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("github account connected", "account", user.Login, "by", sess.user.Email, "expires", tok.Expiry)
	redirect(w, r, "/settings/integrations", "github-connected")
}

// googleIdentity reads the person from Google's ID token, after checking
// its signature, issuer, audience, expiry and nonce.
func (s *Server) googleIdentity(ctx context.Context, p *OAuthConfig, tok *oauth2.Token, nonce string) (identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return identity{}, errors.New("google: the token response has no id_token")
	}
	claims, err := s.jwks.verify(ctx, raw)
	if err != nil {
		return identity{}, fmt.Errorf("google: id token: %w", err)
	}
	var c struct {
		Iss           string          `json:"iss"`
		Aud           json.RawMessage `json:"aud"`
		Sub           string          `json:"sub"`
		Exp           float64         `json:"exp"`
		Nonce         string          `json:"nonce"`
		Email         string          `json:"email"`
		EmailVerified any             `json:"email_verified"`
		Name          string          `json:"name"`
	}
	if err := json.Unmarshal(claims, &c); err != nil {
		return identity{}, fmt.Errorf("google: id token claims: %w", err)
	}
	issOK := c.Iss == p.Issuer || (p.Issuer == "https://accounts.google.com" && c.Iss == "accounts.google.com")
	switch {
	case !issOK:
		return identity{}, fmt.Errorf("google: id token issuer %q, want %q", c.Iss, p.Issuer)
	case !audienceHas(c.Aud, p.ClientID):
		return identity{}, errors.New("google: id token is for another client")
	case time.Unix(int64(c.Exp), 0).Before(s.now().Add(-time.Minute)):
		return identity{}, errors.New("google: id token has expired")
	case !equalTokens(c.Nonce, nonce):
		return identity{}, errors.New("google: id token nonce does not match the login attempt")
	case c.Sub == "":
		return identity{}, errors.New("google: id token has no subject")
	}
	if c.Email == "" || !(c.EmailVerified == true || c.EmailVerified == "true") {
		return identity{}, fmt.Errorf("google: %w", errUnverified)
	}
	return identity{provider: "google", externalID: c.Sub, email: c.Email, name: c.Name}, nil
}

func audienceHas(raw json.RawMessage, clientID string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == clientID
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == clientID {
				return true
			}
		}
	}
	return false
}

// githubIdentity reads the person and their primary verified email from
// the GitHub API with the user's token.
func (s *Server) githubIdentity(ctx context.Context, p *OAuthConfig, tok *oauth2.Token) (identity, error) {
	var user struct {
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	if err := s.githubGet(ctx, p, tok, "/user", &user); err != nil {
		return identity{}, err
	}
	if user.Login == "" {
		return identity{}, errors.New("github: /user has no login")
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := s.githubGet(ctx, p, tok, "/user/emails", &emails); err != nil {
		return identity{}, err
	}
	email := ""
	for _, e := range emails {
		if e.Verified && (e.Primary || email == "") {
			email = e.Email
		}
	}
	if email == "" {
		return identity{}, fmt.Errorf("github user %s: %w", user.Login, errUnverified)
	}
	name := user.Name
	if name == "" {
		name = user.Login
	}
	return identity{provider: "github", externalID: user.Login, email: email, name: name}, nil
}

func (s *Server) githubGet(ctx context.Context, p *OAuthConfig, tok *oauth2.Token, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.APIURL+path, nil)
	if err != nil {
		return fmt.Errorf("github %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	tok.SetAuthHeader(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("github %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("github %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("github %s: status %d: %s", path, resp.StatusCode, truncate(string(body), 200))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("github %s: %w", path, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// adminEmail is the local administrator the first-run login link logs in.
const adminEmail = "admin@localhost"

// AdminLoginTTL is how long a first-run admin login link stays valid.
const AdminLoginTTL = 24 * time.Hour

// AdminLoginURL creates a one-time login link for the local site
// administrator, for servers without OAuth: the link works once, for
// AdminLoginTTL, only from a loopback address, and only until the next
// link is made. base is the address the
// server listens on ("http://127.0.0.1:8080").
func (s *Server) AdminLoginURL(ctx context.Context, base string) (string, error) {
	u, err := s.cfg.DB.EnsureUser(ctx, adminEmail, "Administrator")
	if err != nil {
		return "", fmt.Errorf("admin login link: %w", err)
	}
	if !u.IsAdmin {
		if err := s.cfg.DB.SetUserAdmin(ctx, u.ID, true); err != nil {
			return "", fmt.Errorf("admin login link: %w", err)
		}
	}
	// Only the newest link of this replica works: one it printed at an
	// earlier start and never used stops working now. Other replicas'
	// links and people's chat link codes are not this start's to revoke.
	if _, err := s.cfg.DB.RevokeAdminLinks(ctx, u.ID, s.cfg.Replica, s.now()); err != nil {
		return "", fmt.Errorf("admin login link: %w", err)
	}
	tok := randomToken()
	now := s.now().UTC()
	if err := s.cfg.DB.CreateLoginToken(ctx, &store.LoginToken{TokenHash: hashToken(tok), UserID: u.ID,
		CreatedAt: now, ExpiresAt: now.Add(AdminLoginTTL), Issuer: s.cfg.Replica}); err != nil {
		return "", fmt.Errorf("admin login link: %w", err)
	}
	return strings.TrimRight(base, "/") + "/auth/admin?token=" + url.QueryEscape(tok), nil
}

// fromLoopback reports whether the request comes straight from this
// machine; a request relayed by a proxy (which may itself be local) is not.
func fromLoopback(r *http.Request) bool {
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "Forwarded"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminLogin spends a one-time admin login link.
func (s *Server) adminLogin(w http.ResponseWriter, r *http.Request) {
	if !fromLoopback(r) {
		s.problem(w, r, http.StatusForbidden, "The admin login link works only in a browser on the machine hero runs on.")
		return
	}
	tok := r.URL.Query().Get("token")
	if tok == "" {
		s.problem(w, r, http.StatusBadRequest, "The link has no token; copy the whole link from hero's log.")
		return
	}
	uid, err := s.cfg.DB.UseLoginToken(r.Context(), hashToken(tok), s.now())
	if errors.Is(err, store.ErrNotFound) {
		s.problem(w, r, http.StatusForbidden, "This login link was already used or has expired. Restart hero serve for a new one.")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.cfg.DB.UserByID(r.Context(), uid)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.startSession(w, r, u); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings/projects", http.StatusSeeOther)
}
