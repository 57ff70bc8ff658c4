package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine/enginetest"
)

// TestServeSlackInstallByAdmin walks "Add to Slack" through `hero serve`
// as wired (issue 8 #6): without a hero login /slack/install sends the
// browser to the login page; the site administrator (the one-time admin
// link) starts it from the Integrations page, Slack's consent page is
// next to SLACK_API_URL with the redirect URI from the deprecated
// SLACK_REDIRECT_URL (with a warning), and the callback with the code
// from Slack's OAuth endpoint installs the workspace, shown afterwards.
func TestServeSlackInstallByAdmin(t *testing.T) {
	enginetest.RequireBwrap(t)
	slackAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		r.ParseForm()
		switch {
		case r.URL.Path == "/api/oauth.v2.access" && r.Form.Get("code") == "good" && r.Form.Get("redirect_uri") == "https://hero.example/slack/oauth/callback":
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "access_token": "xoxb-acme", "token_type": "bot", "bot_user_id": "UB",
				"team": map[string]any{"id": "TACME", "name": "Acme"}, "authed_user": map[string]any{"id": "U1"}})
		default:
			json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_code"})
		}
	}))
	t.Cleanup(slackAPI.Close)
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "HERO_ADDR": "127.0.0.1:0",
		"SLACK_CLIENT_ID": "cid", "SLACK_CLIENT_SECRET": "csecret", "SLACK_SIGNING_SECRET": "sign",
		"SLACK_REDIRECT_URL": "https://hero.example/slack/oauth/callback", "SLACK_API_URL": slackAPI.URL + "/api/"}
	base, logs := startServe(t, env)
	link := adminLink(t, logs)
	if !strings.Contains(logs.String(), "SLACK_REDIRECT_URL is deprecated") {
		t.Errorf("no deprecation warning for SLACK_REDIRECT_URL:\n%s", logs.String())
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(c *http.Client, path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	anon := &http.Client{CheckRedirect: browser.CheckRedirect}
	if resp, _ := get(anon, "/slack/install"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/settings/login") {
		t.Fatalf("install without a hero login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	if resp, _ := get(browser, link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin link: %d", resp.StatusCode)
	}
	_, page := get(browser, "/settings/integrations")
	if !strings.Contains(page, `href="/slack/install"`) {
		t.Fatalf("no Add to Slack button for the site administrator:\n%s", page)
	}
	resp, _ := get(browser, "/slack/install")
	consent, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || consent.Host != strings.TrimPrefix(slackAPI.URL, "http://") || consent.Path != "/oauth/v2/authorize" ||
		consent.Query().Get("redirect_uri") != "https://hero.example/slack/oauth/callback" || consent.Query().Get("state") == "" {
		t.Fatalf("install: %d %s", resp.StatusCode, consent)
	}
	// Slack sends the browser back with a code and the state.
	resp, _ = get(browser, "/slack/oauth/callback?code=good&state="+url.QueryEscape(consent.Query().Get("state")))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings/integrations?ok=slack-installed" {
		t.Fatalf("callback: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), logs.String())
	}
	_, page = get(browser, "/settings/integrations?ok=slack-installed")
	if !strings.Contains(page, "hero is installed in the Slack workspace") || !strings.Contains(page, "Acme") || !strings.Contains(page, "TACME") {
		t.Fatalf("integrations page after the install:\n%s", page)
	}
}
