package slack

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/hero-dev/hero/store"
)

// Sessions tells who is logged in to hero's settings page; *web.Server
// implements it.
type Sessions interface {
	// LoggedIn returns the hero user logged in on r's browser (nil when
	// nobody is) and a secret key of that login session.
	LoggedIn(r *http.Request) (user *store.User, session string, err error)
}

// stateTTL is how long an "Add to Slack" consent may take.
const stateTTL = 10 * time.Minute

// installPage is where installs start and end: the settings page's
// Integrations.
const installPage = "/settings/integrations"

// siteAdmin answers the request itself unless a hero site administrator
// is logged in on this browser: anonymous browsers are sent to the login
// page (and back to next afterwards), anyone else is refused.
func (a *Adapter) siteAdmin(w http.ResponseWriter, r *http.Request, next string) (*store.User, string, bool) {
	u, sess, err := a.cfg.Sessions.LoggedIn(r)
	switch {
	case err != nil:
		a.log.Error("read settings page session", "err", err)
		http.Error(w, "could not read your hero session; try again", http.StatusInternalServerError)
		return nil, "", false
	case u == nil:
		http.Redirect(w, r, "/settings/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return nil, "", false
	case !u.IsAdmin:
		a.log.Warn("slack install refused: not a site administrator", "user", u.Email)
		http.Error(w, "Only a hero site administrator can add hero to a Slack workspace.", http.StatusForbidden)
		return nil, "", false
	}
	return u, sess, true
}

// serveInstall starts "Add to Slack" for a logged-in site administrator:
// it redirects to Slack's consent page with a state bound to their
// session.
func (a *Adapter) serveInstall(w http.ResponseWriter, r *http.Request) {
	_, sess, ok := a.siteAdmin(w, r, "/slack/install")
	if !ok {
		return
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	state := a.signState(hex.EncodeToString(nonce), a.cfg.Now().Add(stateTTL), sess)
	q := url.Values{"client_id": {a.cfg.ClientID}, "scope": {strings.Join(a.cfg.Scopes, ",")}, "state": {state}}
	if a.cfg.RedirectURL != "" {
		q.Set("redirect_uri", a.cfg.RedirectURL)
	}
	http.Redirect(w, r, a.authorizeURL()+"?"+q.Encode(), http.StatusFound)
}

// authorizeURL is Slack's consent page next to the configured API
// (SLACK_API_URL "https://slack.com/api/" → https://slack.com/oauth/v2/authorize).
func (a *Adapter) authorizeURL() string {
	return strings.TrimSuffix(strings.TrimSuffix(a.cfg.APIURL, "/"), "/api") + "/oauth/v2/authorize"
}

// signState binds a nonce, an expiry and the settings page session with
// the client secret. The session key is not in the state, only in its MAC.
func (a *Adapter) signState(nonce string, exp time.Time, session string) string {
	payload := nonce + "." + strconv.FormatInt(exp.Unix(), 10)
	mac := hmac.New(sha256.New, []byte("hero slack oauth state\x00"+a.cfg.ClientSecret))
	mac.Write([]byte(payload + "\x00" + session))
	return payload + "." + hex.EncodeToString(mac.Sum(nil))
}

var errOtherSession = errors.New("this install was started in another hero session; start again from the settings page (Integrations → Add to Slack)")

// checkState verifies the state's signature against this browser's
// session, and its expiry.
func (a *Adapter) checkState(state, session string) error {
	parts := strings.Split(state, ".")
	if len(parts) != 3 {
		return errors.New("malformed state")
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return errors.New("malformed state")
	}
	if !hmac.Equal([]byte(a.signState(parts[0], time.Unix(sec, 0), session)), []byte(state)) {
		return errOtherSession
	}
	if a.cfg.Now().After(time.Unix(sec, 0)) {
		return errors.New("the install link expired; start again from the settings page")
	}
	return nil
}

// serveOAuthCallback finishes "Add to Slack": the browser must still be
// logged in as the site administrator who started it; then it exchanges
// the code and stores the workspace's bot token, encrypted, as allowed by
// that administrator.
func (a *Adapter) serveOAuthCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		http.Error(w, "Slack did not install hero: "+e, http.StatusBadRequest)
		return
	}
	admin, sess, ok := a.siteAdmin(w, r, installPage)
	if !ok {
		return
	}
	if err := a.checkState(q.Get("state"), sess); err != nil {
		a.log.Warn("slack install callback refused", "user", admin.Email, "err", err)
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
	team := store.SlackTeam{TeamID: resp.Team.ID, TeamName: resp.Team.Name, BotUserID: resp.BotUserID,
		InstalledBy: identity(resp.Team.ID, resp.AuthedUser.ID), ApprovedBy: admin.Email}
	if err := a.db.SaveSlackTeam(r.Context(), team, resp.AccessToken); err != nil {
		a.log.Error("save slack team", "team", team.TeamID, "err", err)
		http.Error(w, "could not save the installation", http.StatusInternalServerError)
		return
	}
	a.mu.Lock()
	delete(a.clients, team.TeamID) // the next call uses the new token
	a.mu.Unlock()
	a.log.Info("slack workspace installed", "team", team.TeamID, "name", team.TeamName, "by", admin.Email)
	http.Redirect(w, r, installPage+"?ok=slack-installed", http.StatusSeeOther)
}

// refusal is what people in a workspace hero is not connected to hear.
const refusal = "This Slack workspace is not connected to hero; ask a hero admin to add it from the settings page."

// allowedTeam says whether people of a workspace may use hero: one a site
// administrator installed or allowed, or SLACK_BOT_TOKEN's own (learned
// with auth.test). Errors are worth a retry.
func (a *Adapter) allowedTeam(ctx context.Context, team string) (bool, error) {
	if team == "" {
		return false, nil
	}
	if a.cfg.BotToken != "" {
		own, err := a.ownTeam(ctx)
		if err != nil {
			return false, err
		}
		if team == own {
			return true, nil
		}
	}
	t, err := a.db.SlackTeamByID(ctx, team)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("slack workspace %s: %w", team, err)
	}
	return t.ApprovedBy != "", nil
}

// ownTeam is the workspace of SLACK_BOT_TOKEN, asked once.
func (a *Adapter) ownTeam(ctx context.Context) (string, error) {
	a.mu.Lock()
	own := a.botTeam
	a.mu.Unlock()
	if own != "" {
		return own, nil
	}
	res, err := a.newAPI(a.cfg.BotToken).AuthTestContext(ctx)
	if err != nil {
		return "", fmt.Errorf("auth.test with SLACK_BOT_TOKEN: %w", err)
	}
	if res.TeamID == "" {
		return "", errors.New("auth.test with SLACK_BOT_TOKEN: Slack named no team")
	}
	a.mu.Lock()
	a.botTeam = res.TeamID
	a.mu.Unlock()
	return res.TeamID, nil
}
