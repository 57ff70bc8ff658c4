package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/web"
)

// seedRun records a run the way the engine does: steps (already redacted),
// usage, and a confirmation someone decided.
func (e *env) seedRun(p *store.Project, status, task string) *store.Execution {
	e.t.Helper()
	ctx := e.t.Context()
	ex := &store.Execution{ProjectID: p.ID, Status: status, Surface: "slack", Requester: "slack:T1/U2",
		Task: task, Model: "gpt-4.1-mini", ThreadRef: "T1/C1/1700000000.1"}
	if err := e.db.CreateExecution(ctx, ex); err != nil {
		e.t.Fatal(err)
	}
	ex.TokensIn, ex.TokensOut, ex.CostUSD, ex.CostKnown, ex.Steps = 12000, 800, 0.0061, true, 3
	ex.Summary = "Fixed the flaky test in cart_test.go."
	if err := e.db.UpdateExecution(ctx, ex); err != nil {
		e.t.Fatal(err)
	}
	for _, s := range []store.Step{
		{Kind: store.StepModel, TokensIn: 6000, TokensOut: 400, CostUSD: 0.003, DurationMS: 900},
		{Kind: store.StepTool, Tool: "run_command", Arguments: `{"command":"go test ./cart/..."}`, Output: "ok  \tshop/cart\t0.2s\nNPM_TOKEN=[redacted]", DurationMS: 2100},
		{Kind: store.StepConfirmation, Tool: "git_push", Output: "asked: push hero/r1 to origin"},
	} {
		s.ExecutionID = ex.ID
		if err := e.db.AppendStep(ctx, &s); err != nil {
			e.t.Fatal(err)
		}
	}
	c := &store.Confirmation{ExecutionID: ex.ID, ProjectID: p.ID, Kind: store.ConfirmKindTool, Tool: "git_push",
		Action: "git push origin hero/" + ex.ID, Risk: "medium", Reason: "publishing a branch", ExpiresAt: time.Now().Add(time.Hour)}
	if err := e.db.CreateConfirmation(ctx, c); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.DecideConfirmation(ctx, c.ID, store.ConfirmApproved, "slack:T1/U9 (Grace)", "", time.Now()); err != nil {
		e.t.Fatal(err)
	}
	return ex
}

func TestRunsListAndDetail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop := e.project("shop", map[string]store.Role{"dev@example.com": store.RoleMember})
	blog := e.project("blog", map[string]store.Role{"dev@example.com": store.RoleViewer})
	secret := e.project("secret-project", nil)
	done := e.seedRun(shop, store.StatusSucceeded, "fix the flaky cart test")
	running := e.seedRun(shop, store.StatusRunning, "upgrade the router")
	blogRun := e.seedRun(blog, store.StatusFailed, "write a post")
	hidden := e.seedRun(secret, store.StatusRunning, "a task nobody else sees")

	b := e.browser()
	b.login("google", "dev@example.com")
	_, all := b.get("/settings/runs")
	for _, ex := range []*store.Execution{done, running, blogRun} {
		if !strings.Contains(all, ex.ID) {
			t.Errorf("runs page lacks run %s", ex.ID)
		}
	}
	if strings.Contains(all, hidden.ID) || strings.Contains(all, "secret-project") {
		t.Error("runs page shows a run of a project the user is not in")
	}
	_, filtered := b.get("/settings/runs?project=shop&status=running")
	if !strings.Contains(filtered, running.ID) || strings.Contains(filtered, done.ID) || strings.Contains(filtered, blogRun.ID) {
		t.Errorf("filter project=shop status=running:\n%s", text(filtered))
	}
	if code, _ := b.get("/settings/runs?status=bogus"); code != http.StatusBadRequest {
		t.Errorf("unknown status filter: %d", code)
	}
	if code, _ := b.get("/settings/runs?project=secret-project"); code != http.StatusNotFound {
		t.Errorf("filter on a foreign project: %d", code)
	}

	code, page := b.get("/settings/runs/" + done.ID)
	if code != http.StatusOK {
		t.Fatalf("run page: %d", code)
	}
	pt := text(page)
	for _, want := range []string{"fix the flaky cart test", "$0.0061", "12000 tokens in", "go test ./cart/...", "NPM_TOKEN=[redacted]",
		"git push origin hero/" + done.ID, "approved", "slack:T1/U9 (Grace)", "Fixed the flaky test", "slack:T1/U2 via slack"} {
		if !strings.Contains(pt, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	if strings.Contains(page, "/cancel") {
		t.Error("a finished run offers a cancel button")
	}
	_, page = b.get("/settings/runs/" + running.ID)
	if !strings.Contains(page, "/settings/runs/"+running.ID+"/cancel") {
		t.Fatal("a running run has no cancel button for a member")
	}
	if code, loc, _ := b.post("/settings/runs/"+running.ID+"/cancel", nil); code != http.StatusSeeOther || !strings.Contains(loc, "ok=cancelling") {
		t.Fatalf("cancel: %d %s", code, loc)
	}
	e.runs.mu.Lock()
	got := fmt.Sprint(e.runs.cancelled)
	e.runs.mu.Unlock()
	if got != "["+running.ID+" by web:dev@example.com]" {
		t.Fatalf("engine asked to cancel %s", got)
	}
	// A viewer sees the run but no button, and cannot cancel.
	_, page = b.get("/settings/runs/" + blogRun.ID)
	if strings.Contains(page, "/cancel") {
		t.Error("viewer sees a cancel button")
	}
	if code, _ := b.get("/settings/runs/" + hidden.ID); code != http.StatusNotFound {
		t.Errorf("run of a foreign project: %d", code)
	}
}

func TestIntegrationsShowLiveStatusAndBindings(t *testing.T) {
	t.Parallel()
	// Slack, GitHub and Discord at their network edge.
	api := http.NewServeMux()
	api.HandleFunc("POST /slack/api/auth.test", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer xoxb-good" {
			fmt.Fprint(w, `{"ok":false,"error":"token_expired"}`)
			return
		}
		w.Header().Set("X-OAuth-Scopes", "commands,chat:write,app_mentions:read")
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": "https://acme.slack.com/", "team": "Acme", "user": "hero", "team_id": "T1", "user_id": "U1", "bot_id": "B1"})
	})
	api.HandleFunc("GET /github/user", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-OAuth-Scopes", "read:org")
		fmt.Fprint(w, `{"login":"hero-bot"}`)
	})
	api.HandleFunc("GET /discord/users/@me", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message": "401: Unauthorized", "code": 0}`)
	})
	fake := httptest.NewServer(api)
	t.Cleanup(fake.Close)
	client := fake.Client()

	e := newEnv(t, func(c *web.Config) {
		c.Integrations = []web.Integration{
			{Name: "Slack", ConnectURL: "/slack/install", ConnectLabel: "Add to Slack", AdminOnly: true, Status: web.SlackTokenStatus(client, fake.URL+"/slack/api", "xoxb-good")},
			{Name: "GitHub", Status: web.GitHubTokenStatus(client, fake.URL+"/github", "ghp_x")},
			{Name: "Discord", ConnectURL: "https://discord.com/oauth2/authorize?client_id=99&scope=bot+applications.commands&permissions=326417599552", ConnectLabel: "Invite to a server", Status: web.DiscordTokenStatus(client, fake.URL+"/discord", "bad")},
		}
	})
	shop := e.project("shop", map[string]store.Role{"dev@example.com": store.RoleViewer})
	other := e.project("other", nil)
	ctx := t.Context()
	if err := e.db.BindChannel(ctx, "slack", "T1/C1", shop.ID, "slack:T1/U2"); err != nil {
		t.Fatal(err)
	}
	if err := e.db.BindChannel(ctx, "slack", "T1/C9", other.ID, "slack:T1/U2"); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.login("google", "dev@example.com")
	code, page := b.get("/settings/integrations")
	if code != http.StatusOK {
		t.Fatalf("integrations: %d", code)
	}
	pt := text(page)
	for _, want := range []string{"connected to Acme as hero", "missing scope repo", "token is invalid (DISCORD_BOT_TOKEN)", "T1/C1", "shop"} {
		if !strings.Contains(pt, want) {
			t.Errorf("integrations page lacks %q:\n%s", want, pt)
		}
	}
	// Installing hero into a Slack workspace is a site administrator's:
	// others do not get the button (and /slack/install refuses them).
	if strings.Contains(page, "/slack/install") {
		t.Error("a non-admin is shown Add to Slack")
	}
	admin := e.browser()
	admin.login("google", siteAdmin)
	if _, page := admin.get("/settings/integrations"); !strings.Contains(page, `href="/slack/install"`) {
		t.Error("no Add to Slack link for the site administrator")
	}
	if strings.Contains(pt, "T1/C9") {
		t.Error("a binding of a project the user is not in is shown")
	}
}

func TestSlackStatusExpired(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ok":false,"error":"token_expired"}`)
	}))
	t.Cleanup(srv.Close)
	ok, detail := web.SlackTokenStatus(srv.Client(), srv.URL, "xoxb-old")(t.Context())
	if ok || !strings.Contains(detail, "expired") || strings.Contains(detail, "xoxb-old") {
		t.Fatalf("expired token: %v %q", ok, detail)
	}
}

func TestConnectGitHubAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *web.Config) { c.GitHubOAuthAccount = "hero-bot" })
	admin := e.browser()
	admin.login("google", siteAdmin)
	_, page := admin.get("/settings/integrations")
	if !strings.Contains(text(page), "hero-bot not connected yet") || !strings.Contains(page, "/auth/github/login?connect=1") {
		t.Fatalf("integrations before connecting:\n%s", text(page))
	}
	// The wrong GitHub account is refused.
	e.idp.as(fakePerson{Email: "someone@example.com", Login: "someone"})
	resp, err := admin.follow.Get(e.srv.URL + "/auth/github/login?connect=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Query().Get("err") != "github-wrong-account" {
		t.Fatalf("wrong account ended on %s", resp.Request.URL)
	}
	// The right one is saved, and the admin stays logged in as themselves.
	e.idp.as(fakePerson{Email: "bot@example.com", Login: "hero-bot"})
	resp, err = admin.follow.Get(e.srv.URL + "/auth/github/login?connect=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Query().Get("ok") != "github-connected" {
		t.Fatalf("connect ended on %s", resp.Request.URL)
	}
	tok, err := e.db.GitHubToken(t.Context(), "hero-bot")
	if err != nil || !strings.HasPrefix(tok.AccessToken, "at-") || !strings.HasPrefix(tok.RefreshToken, "rat-") || tok.Expiry.IsZero() {
		t.Fatalf("saved token: %+v %v", tok.Expiry, err)
	}
	_, page = admin.get("/settings/integrations")
	if pt := text(page); !strings.Contains(pt, siteAdmin) || !strings.Contains(pt, "token valid for hero-bot") || !strings.Contains(pt, "refreshed automatically") {
		t.Fatalf("integrations after connecting:\n%s", pt)
	}
	if _, err := e.db.UserByEmail(t.Context(), "bot@example.com"); err == nil {
		t.Fatal("connecting the bot account created a user for it")
	}
	if strings.Contains(e.bodies.String(), tok.AccessToken) || strings.Contains(e.logs.String(), tok.AccessToken) {
		t.Fatal("the GitHub token leaked into a page or the log")
	}
	// People who are not site administrators cannot connect.
	dev := e.browser()
	dev.login("google", "dev@example.com")
	if code, _ := dev.get("/auth/github/login?connect=1"); code != http.StatusForbidden {
		t.Fatalf("non-admin connect: %d", code)
	}
}
