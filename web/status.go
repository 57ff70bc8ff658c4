package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The live checks below ask each platform whether hero's token still
// works, and cache the answer for a minute so the integrations page does
// not hammer the APIs. Their details never include the token.

// statusTTL is how long a status check's answer is reused.
const statusTTL = time.Minute

func cached(check func(ctx context.Context) (bool, string)) func(ctx context.Context) (bool, string) {
	var (
		mu     sync.Mutex
		at     time.Time
		ok     bool
		detail string
	)
	return func(ctx context.Context) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		if !at.IsZero() && time.Since(at) < statusTTL {
			return ok, detail
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ok, detail = check(cctx)
		at = time.Now()
		return ok, detail
	}
}

// getJSON GETs url with the authorization header and decodes a JSON body;
// it returns the response's status and headers.
func getJSON(ctx context.Context, client *http.Client, method, u, auth string, out any) (int, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		// The URL has no token in it; the error is safe to show.
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, resp.Header, err
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil && resp.StatusCode == http.StatusOK {
			return resp.StatusCode, resp.Header, fmt.Errorf("unexpected answer: %w", err)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

// missingScopes reports which of want are missing from a comma-separated
// scope header.
func missingScopes(header string, want ...string) []string {
	have := map[string]bool{}
	for _, s := range strings.Split(header, ",") {
		have[strings.TrimSpace(s)] = true
	}
	var miss []string
	for _, w := range want {
		if !have[w] {
			miss = append(miss, w)
		}
	}
	return miss
}

// GitHubTokenStatus checks a GitHub token against GET /user: valid (and
// for classic tokens, whether it has the repo scope), or invalid/expired.
func GitHubTokenStatus(client *http.Client, apiURL, token string) func(ctx context.Context) (bool, string) {
	apiURL = strings.TrimRight(apiURL, "/")
	return cached(func(ctx context.Context) (bool, string) {
		var user struct {
			Login string `json:"login"`
		}
		code, h, err := getJSON(ctx, client, http.MethodGet, apiURL+"/user", "Bearer "+token, &user)
		switch {
		case err != nil:
			return false, "cannot reach GitHub: " + err.Error()
		case code == http.StatusUnauthorized:
			return false, "token is invalid or expired (GITHUB_TOKEN)"
		case code != http.StatusOK:
			return false, fmt.Sprintf("GitHub answered %d to GET /user", code)
		}
		if scopes := h.Get("X-OAuth-Scopes"); h.Values("X-OAuth-Scopes") != nil {
			if miss := missingScopes(scopes, "repo"); len(miss) > 0 {
				return false, fmt.Sprintf("token of %s is missing scope %s", user.Login, strings.Join(miss, ", "))
			}
		}
		return true, "token valid for " + user.Login
	})
}

// SlackTokenStatus checks a Slack bot token with auth.test, and that it
// has the scopes slash commands and replies need.
func SlackTokenStatus(client *http.Client, apiURL, token string) func(ctx context.Context) (bool, string) {
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	return cached(func(ctx context.Context) (bool, string) {
		var r struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
			Team  string `json:"team"`
			User  string `json:"user"`
		}
		code, h, err := getJSON(ctx, client, http.MethodPost, apiURL+"auth.test", "Bearer "+token, &r)
		switch {
		case err != nil:
			return false, "cannot reach Slack: " + err.Error()
		case code != http.StatusOK:
			return false, fmt.Sprintf("Slack answered %d to auth.test", code)
		case !r.OK && (r.Error == "token_expired" || r.Error == "token_revoked" || r.Error == "invalid_auth"):
			return false, "token is invalid or expired (" + r.Error + ")"
		case !r.OK:
			return false, "auth.test failed: " + r.Error
		}
		if h.Values("X-Oauth-Scopes") != nil {
			if miss := missingScopes(h.Get("X-Oauth-Scopes"), "commands", "chat:write"); len(miss) > 0 {
				return false, "missing scope " + strings.Join(miss, ", ")
			}
		}
		return true, fmt.Sprintf("connected to %s as %s", r.Team, r.User)
	})
}

// DiscordTokenStatus checks a Discord bot token with GET /users/@me.
func DiscordTokenStatus(client *http.Client, apiURL, token string) func(ctx context.Context) (bool, string) {
	apiURL = strings.TrimRight(apiURL, "/")
	return cached(func(ctx context.Context) (bool, string) {
		var me struct {
			Username string `json:"username"`
		}
		code, _, err := getJSON(ctx, client, http.MethodGet, apiURL+"/users/@me", "Bot "+token, &me)
		switch {
		case err != nil:
			return false, "cannot reach Discord: " + err.Error()
		case code == http.StatusUnauthorized:
			return false, "token is invalid (DISCORD_BOT_TOKEN)"
		case code != http.StatusOK:
			return false, fmt.Sprintf("Discord answered %d to GET /users/@me", code)
		}
		return true, "bot " + me.Username + " is connected"
	})
}
