package slack

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/hero-dev/hero/store"
)

const (
	stateCookie = "hero_slack_oauth"
	stateTTL    = 10 * time.Minute
)

// serveInstall starts "Add to Slack": it sets a state cookie and redirects
// to Slack's consent page with the matching signed state.
func (a *Adapter) serveInstall(w http.ResponseWriter, r *http.Request) {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	n := hex.EncodeToString(nonce)
	state := a.signState(n, a.cfg.Now().Add(stateTTL))
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: n, Path: "/slack/", MaxAge: int(stateTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	q := url.Values{"client_id": {a.cfg.ClientID}, "scope": {strings.Join(a.cfg.Scopes, ",")}, "state": {state}}
	if a.cfg.RedirectURL != "" {
		q.Set("redirect_uri", a.cfg.RedirectURL)
	}
	http.Redirect(w, r, a.authorizeURL()+"?"+q.Encode(), http.StatusFound)
}

// authorizeURL is Slack's consent page next to the configured API.
func (a *Adapter) authorizeURL() string {
	return strings.TrimSuffix(strings.TrimSuffix(a.cfg.APIURL, "/"), "/api") + "/oauth/v2/authorize"
}

// signState binds a nonce and an expiry with the client secret.
func (a *Adapter) signState(nonce string, exp time.Time) string {
	payload := nonce + "." + strconv.FormatInt(exp.Unix(), 10)
	mac := hmac.New(sha256.New, []byte("hero slack oauth state\x00"+a.cfg.ClientSecret))
	mac.Write([]byte(payload))
	return payload + "." + hex.EncodeToString(mac.Sum(nil))
}

// checkState verifies the state's signature, expiry and that it belongs to
// this browser (the cookie set by serveInstall).
func (a *Adapter) checkState(r *http.Request, state string) error {
	parts := strings.Split(state, ".")
	if len(parts) != 3 {
		return fmt.Errorf("malformed state")
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return fmt.Errorf("malformed state")
	}
	want := a.signState(parts[0], time.Unix(sec, 0))
	if !hmac.Equal([]byte(want), []byte(state)) {
		return fmt.Errorf("state signature does not match")
	}
	if a.cfg.Now().After(time.Unix(sec, 0)) {
		return fmt.Errorf("the install link expired; start again")
	}
	c, err := r.Cookie(stateCookie)
	if err != nil || !hmac.Equal([]byte(c.Value), []byte(parts[0])) {
		return fmt.Errorf("state was issued to another browser; start again from /slack/install")
	}
	return nil
}

// serveOAuthCallback finishes "Add to Slack": it checks the state,
// exchanges the code and stores the workspace's bot token, encrypted.
func (a *Adapter) serveOAuthCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		http.Error(w, "Slack did not install hero: "+e, http.StatusBadRequest)
		return
	}
	if err := a.checkState(r, q.Get("state")); err != nil {
		http.Error(w, "invalid OAuth state: "+err.Error(), http.StatusBadRequest)
		return
	}
	code := q.Get("code")
	if code == "" {
		http.Error(w, "missing code", http.StatusBadRequest)
		return
	}
	resp, err := slack.GetOAuthV2ResponseContext(r.Context(), a.cfg.HTTPClient, a.cfg.ClientID, a.cfg.ClientSecret, code, a.cfg.RedirectURL, slack.OAuthOptionAPIURL(a.cfg.APIURL))
	if err != nil {
		a.log.Warn("slack oauth exchange", "err", err)
		http.Error(w, "Slack refused the installation: "+err.Error(), http.StatusBadGateway)
		return
	}
	if resp.Team.ID == "" || resp.AccessToken == "" {
		http.Error(w, "Slack's answer has no team or bot token (is the bot scope requested?)", http.StatusBadGateway)
		return
	}
	team := store.SlackTeam{TeamID: resp.Team.ID, TeamName: resp.Team.Name, BotUserID: resp.BotUserID, InstalledBy: identity(resp.Team.ID, resp.AuthedUser.ID)}
	if err := a.db.SaveSlackTeam(r.Context(), team, resp.AccessToken); err != nil {
		a.log.Error("save slack team", "team", team.TeamID, "err", err)
		http.Error(w, "could not save the installation", http.StatusInternalServerError)
		return
	}
	a.mu.Lock()
	delete(a.clients, team.TeamID) // the next call uses the new token
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: "", Path: "/slack/", MaxAge: -1})
	a.log.Info("slack workspace installed", "team", team.TeamID, "name", team.TeamName)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><title>hero</title><p>hero is installed in <b>%s</b>. Invite it to a channel and run <code>/hero use &lt;project&gt;</code> there.</p>", html.EscapeString(team.TeamName))
}
