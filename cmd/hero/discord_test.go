package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot/discord/discordtest"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// `hero serve` with the Discord variables, end to end: a signed /hero
// command starts a run in a thread against the fake model; the run's
// git_push and create_pull_request wait for buttons; the requester's
// clicks approve them; a real git push reaches the git http-backend
// remote, the pull request is opened on the fake GitHub API, and the
// final message in the thread links it. A forged signature and a
// replayed interaction do nothing. The gateway is held through the lease.
func TestServeDiscordEndToEnd(t *testing.T) {
	enginetest.RequireBwrap(t)
	const ghToken = "ghp_discordE2E0123456789abcdef"
	const appID, botToken, botID, guild, channel, user = "110000000000000001", "discord-bot-token", "110000000000000002", "110000000000000003", "110000000000000004", "110000000000000005"

	// GitHub: one host serves the API (under /api/v3) and git, as GitHub
	// Enterprise does, so the token is bound to the remote's host.
	api := githubtest.NewServer(t, ghToken)
	git := githubtest.NewGitServer(t, "acme", "web", map[string]string{"README.md": "# web\n\nHelo\n"}, api.ValidToken)
	apiURL, _ := url.Parse(api.URL)
	gitURL, _ := url.Parse(git.URL)
	toAPI, toGit := httputil.NewSingleHostReverseProxy(apiURL), httputil.NewSingleHostReverseProxy(gitURL)
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok {
			r.URL.Path = p
			toAPI.ServeHTTP(w, r)
			return
		}
		toGit.ServeHTTP(w, r)
	}))
	t.Cleanup(gh.Close)

	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("edit_file", `{"path":"README.md","old":"Helo","new":"Hello"}`)),
		openaitest.Tools(openaitest.Call("git_commit", `{"message":"Fix the README typo"}`)),
		openaitest.Tools(openaitest.Call("git_push", `{}`)),
		openaitest.Tools(openaitest.Call("create_pull_request", `{"title":"Fix the README typo","body":"Helo → Hello."}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"Fixed the typo and opened a pull request."}`)),
	)
	fake := discordtest.NewServer(t, botToken, botID)
	gw := discordtest.NewGateway(t, botID)
	fake.SetGateway(gw.URL())
	key := discordtest.NewKey(t)
	dir := t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": dir, "HERO_ADDR": "127.0.0.1:0",
		"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini",
		"GITHUB_TOKEN": ghToken, "GITHUB_API_URL": gh.URL + "/api/v3/",
		"DISCORD_APP_ID": appID, "DISCORD_PUBLIC_KEY": key.PublicHex(), "DISCORD_BOT_TOKEN": botToken, "DISCORD_API_URL": fake.APIURL()}
	if _, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", gh.URL+"/acme/web"); err != nil {
		t.Fatal(err)
	}
	// The requester: a member linked to the Discord account, the channel
	// bound to the project (what /hero link and /hero use record).
	db := storetest.OpenIn(t, dir)
	p, err := db.ProjectByName(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.UpsertUser(t.Context(), "dev@example.com", "Dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{db.LinkIdentity(t.Context(), "discord", user, u.ID), db.SetMember(t.Context(), p.ID, u.ID, store.RoleMember),
		db.BindChannel(t.Context(), "discord", channel, p.ID, "discord:"+user)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	base, logs := startServe(t, env)
	gw.WaitConnections(t, 1, 20*time.Second)

	post := func(body []byte, k discordtest.Key) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/discord/interactions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		k.Sign(req, body, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	who := discordtest.Actor{Guild: guild, Channel: channel, User: user}
	// A forged request does nothing.
	if code := post(discordtest.Command(appID, discordtest.NewID(), "forged", who, "delete everything"), discordtest.NewKey(t)); code != http.StatusUnauthorized {
		t.Fatalf("forged command: %d, want 401", code)
	}
	id := discordtest.NewID()
	cmd := discordtest.Command(appID, id, "tok-"+id, who, "fix the typo in the README")
	if code := post(cmd, key); code != http.StatusOK {
		t.Fatalf("command: %d\n%s", code, logs.String())
	}
	var thread string
	fake.WaitFor(t, "the run's thread", 30*time.Second, func(s *discordtest.Server) bool {
		for th := range s.Threads() {
			thread = th
		}
		return thread != ""
	})
	// The same interaction again: nothing more happens.
	if code := post(cmd, key); code != http.StatusOK {
		t.Fatalf("replayed command: %d", code)
	}

	approve := func(what string) {
		t.Helper()
		var ask discordtest.Message
		fake.WaitFor(t, "the "+what+" confirmation", 60*time.Second, func(s *discordtest.Server) bool {
			for _, m := range s.Messages(thread) {
				if len(m.Components) > 0 && strings.Contains(m.Content, what) {
					ask = m
					return true
				}
			}
			return false
		})
		custom := ask.Components[0].(map[string]any)["components"].([]any)[0].(map[string]any)["custom_id"].(string)
		cid := discordtest.NewID()
		if code := post(discordtest.Click(appID, cid, "tok-"+cid, discordtest.Actor{Guild: guild, Channel: thread, User: user}, ask.ID, custom), key); code != http.StatusOK {
			t.Fatalf("click: %d", code)
		}
		fake.WaitFor(t, "the "+what+" decision", 30*time.Second, func(s *discordtest.Server) bool {
			m, _ := s.Message(ask.ID)
			return len(m.Components) == 0 && strings.Contains(m.Content, "Approved by <@"+user+">")
		})
	}
	approve("git_push")
	approve("create_pull_request")

	var final discordtest.Message
	fake.WaitFor(t, "the summary", 60*time.Second, func(s *discordtest.Server) bool {
		for _, m := range s.Messages(thread) {
			if strings.Contains(m.Content, "finished") {
				final = m
				return true
			}
		}
		return false
	})
	pulls := api.Pulls()
	if len(pulls) != 1 {
		t.Fatalf("pull requests: %+v", pulls)
	}
	if !strings.Contains(final.Content, pulls[0].HTMLURL) {
		t.Fatalf("the summary does not link the pull request %s:\n%s", pulls[0].HTMLURL, final.Content)
	}
	if out, err := git.Git("show", pulls[0].Head+":README.md"); err != nil || !strings.Contains(out, "Hello") {
		t.Fatalf("pushed branch %s: %v\n%s", pulls[0].Head, err, out)
	}
	threads := 0
	for range fake.Threads() {
		threads++
	}
	if threads != 1 {
		t.Fatalf("%d threads: the replayed command started another run", threads)
	}
}

// `hero discord register [--guild ID]` installs the slash command through
// DISCORD_API_URL and says where; a bad DISCORD_GATEWAY is refused.
func TestDiscordRegisterCommand(t *testing.T) {
	t.Parallel()
	fake := discordtest.NewServer(t, "tok", "1")
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "DISCORD_APP_ID": "42", "DISCORD_BOT_TOKEN": "tok", "DISCORD_API_URL": fake.APIURL()}
	out, _, err := hero(t, env, "", false, "discord", "register", "--guild", "7")
	if err != nil || !strings.Contains(out, "registered /hero in server 7") {
		t.Fatalf("register: %v %q", err, out)
	}
	if len(fake.Commands("7")) != 1 {
		t.Fatal("the command was not installed in the guild")
	}
	out, _, err = hero(t, env, "", false, "discord", "register")
	if err != nil || !strings.Contains(out, "registered /hero globally") || len(fake.Commands("")) != 1 {
		t.Fatalf("global register: %v %q", err, out)
	}
	env["DISCORD_BOT_TOKEN"] = "wrong"
	if _, _, err := hero(t, env, "", false, "discord", "register"); err == nil {
		t.Fatal("a wrong token registered commands")
	}
	if out, _, err := hero(t, env, "", false, "discord", "register", "--help"); err != nil || !strings.Contains(out, "--guild") {
		t.Fatalf("help: %v %q", err, out)
	}
	if _, err := readDiscordEnv(func(k string) string { return map[string]string{"DISCORD_GATEWAY": "maybe"}[k] }); err == nil {
		t.Fatal("DISCORD_GATEWAY=maybe accepted")
	}
}

// The settings page's Discord row: the invite asks for the bot and
// command scopes with the thread permissions; the status checks the
// token and says which replica holds the gateway (or that none does).
func TestDiscordIntegrationStatus(t *testing.T) {
	t.Parallel()
	fake := discordtest.NewServer(t, "tok", "1")
	db := storetest.Open(t)
	env := map[string]string{"DISCORD_APP_ID": "42", "DISCORD_BOT_TOKEN": "tok", "DISCORD_API_URL": fake.APIURL()}
	in, ok := discordIntegration(func(k string) string { return env[k] }, db, http.DefaultClient)
	if !ok || !strings.Contains(in.ConnectURL, "client_id=42") || !strings.Contains(in.ConnectURL, "scope=bot+applications.commands") ||
		!strings.Contains(in.ConnectURL, "permissions=326417599696") {
		t.Fatalf("invite %q", in.ConnectURL)
	}
	if ok, detail := in.Status(t.Context()); ok || !strings.Contains(detail, "no replica holds the gateway") {
		t.Fatalf("status without a gateway holder: %v %q", ok, detail)
	}
	if _, err := db.ClaimSingleton(t.Context(), "discord-gateway", "host-a-1234", time.Minute); err != nil {
		t.Fatal(err)
	}
	in, _ = discordIntegration(func(k string) string { return env[k] }, db, http.DefaultClient) // the token check is cached
	if ok, detail := in.Status(t.Context()); !ok || !strings.Contains(detail, "gateway held by host-a-1234") {
		t.Fatalf("status with a holder: %v %q", ok, detail)
	}
	env["DISCORD_GATEWAY"] = "off"
	in, _ = discordIntegration(func(k string) string { return env[k] }, db, http.DefaultClient)
	if _, detail := in.Status(t.Context()); !strings.Contains(detail, "gateway off") {
		t.Fatalf("status with the gateway off: %q", detail)
	}
}

// hero serve shows a board linked to a Discord forum there: a card added
// on the command line (where Discord is out of reach) becomes a post in
// the forum, tagged with its column, once serve is up.
func TestServeDiscordForumBoard(t *testing.T) {
	const appID, botToken, botID, guild, forum = "120000000000000001", "discord-bot-token", "120000000000000002", "120000000000000003", "120000000000000004"
	fake := discordtest.NewServer(t, botToken, botID)
	fake.AddChannel(discordtest.Channel{ID: forum, GuildID: guild, Type: 15, Name: "board"})
	key := discordtest.NewKey(t)
	dir := t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": dir, "HERO_ADDR": "127.0.0.1:0", "DISCORD_GATEWAY": "off",
		"DISCORD_APP_ID": appID, "DISCORD_PUBLIC_KEY": key.PublicHex(), "DISCORD_BOT_TOKEN": botToken, "DISCORD_API_URL": fake.APIURL()}
	for _, args := range [][]string{
		{"project", "add", "web", "--repo", "https://git.example.com/acme/web.git"},
		{"board", "link", "--project", "web", "--discord-forum", forum},
	} {
		if _, stderr, err := hero(t, env, "", false, args...); err != nil {
			t.Fatalf("hero %v: %v\n%s", args, err, stderr)
		}
	}
	out, stderr, err := hero(t, env, "", false, "card", "add", "--project", "web", "Fix the login loop")
	if err != nil {
		t.Fatalf("card add: %v\n%s", err, stderr)
	}
	cardID := strings.Fields(out)[1]

	startServe(t, env)
	var post discordtest.Channel
	fake.WaitFor(t, "the card's post in the forum", 30*time.Second, func(s *discordtest.Server) bool {
		for id, parent := range s.Threads() {
			if parent == forum {
				post, _ = s.Channel(id)
				return true
			}
		}
		return false
	})
	if post.Name != "Fix the login loop" {
		t.Fatalf("post %+v", post)
	}
	f, _ := fake.Channel(forum)
	todo := ""
	for _, tg := range f.AvailableTags {
		if tg.Name == "To do" {
			todo = tg.ID
		}
	}
	if todo == "" || len(post.AppliedTags) != 1 || post.AppliedTags[0] != todo {
		t.Fatalf("post tags %v, forum tags %+v: want the To do tag", post.AppliedTags, f.AvailableTags)
	}
	if first, _ := fake.Message(post.ID); !strings.Contains(first.Content, cardID) {
		t.Fatalf("the post's first message %q does not name card %s", first.Content, cardID)
	}
}
