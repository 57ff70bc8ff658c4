package discord

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/hero-dev/hero/bot/discord/discordtest"
)

// Discord's 429 with retry_after is waited out and the call is made
// again: the message arrives late, not never; every request, whatever
// discordgo's built-in endpoint says, went to DISCORD_API_URL.
func TestRateLimitRetry(t *testing.T) {
	t.Parallel()
	fake := discordtest.NewServer(t, testToken, testBot)
	s, err := newSession(testToken, fake.APIURL(), testApp, &http.Client{Timeout: 10 * time.Second}, 50)
	if err != nil {
		t.Fatal(err)
	}
	a := &Adapter{api: s}
	fake.RateLimitNext("POST", "/channels/400/messages", 0.3)
	start := time.Now()
	m, err := a.send(t.Context(), "400", "hello", nil)
	if err != nil {
		t.Fatalf("send after a 429: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("retried after %s, before retry_after (300 ms)", d)
	}
	calls := fake.Calls()
	if len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 200 || calls[1].Content() != "hello" {
		t.Fatalf("calls: %+v", calls)
	}
	if got, ok := fake.Message(m.ID); !ok || got.Content != "hello" {
		t.Fatalf("message %+v", got)
	}
	if calls[1].Auth != "Bot "+testToken {
		t.Fatalf("Authorization %q", calls[1].Auth)
	}
}

// The rewriting transport keeps the API's path prefix, refuses anything
// outside discordgo's API root, and holds to the global rate.
func TestRewriterAndPacer(t *testing.T) {
	t.Parallel()
	fake := discordtest.NewServer(t, testToken, testBot)
	s, err := newSession(testToken, fake.APIURL()+"/", testApp, &http.Client{}, 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GatewayBot(); err != nil {
		t.Fatalf("GET /gateway/bot: %v", err)
	}
	if c := fake.Calls(); len(c) != 1 || c[0].Path != "/gateway/bot" {
		t.Fatalf("calls %+v", c)
	}
	if _, err := s.Client.Get("https://evil.example/api/v9/users/@me"); err == nil || !strings.Contains(err.Error(), "outside the API") {
		t.Fatalf("a request outside the API: %v", err)
	}
	if _, err := newSession(testToken, "ftp://x", testApp, &http.Client{}, 20); err == nil {
		t.Fatal("an ftp API URL was accepted")
	}
	// 40 requests at 20/s with a burst of 20: the last ones wait ~1 s.
	p := newPacer(20)
	start := time.Now()
	for range 40 {
		if err := p.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("40 requests at 20/s took %s", d)
	}
}

// Answers to interactions are not held to the global rate (Discord does
// not count them): at 1 request a second, ten answers go out at once
// while ordinary requests wait their turn.
func TestInteractionAnswersSkipTheGlobalRate(t *testing.T) {
	t.Parallel()
	fake := discordtest.NewServer(t, testToken, testBot)
	s, err := newSession(testToken, fake.APIURL(), testApp, &http.Client{Timeout: 10 * time.Second}, 1)
	if err != nil {
		t.Fatal(err)
	}
	text := "done"
	start := time.Now()
	for i := range 10 {
		in := &discordgo.Interaction{AppID: testApp, Token: fmt.Sprint("tok-", i)}
		if _, err := s.InteractionResponseEdit(in, &discordgo.WebhookEdit{Content: &text}); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("10 interaction answers at a global rate of 1/s took %s: they were paced", d)
	}
	start = time.Now()
	for range 3 {
		if _, err := s.GatewayBot(); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 1800*time.Millisecond {
		t.Errorf("3 ordinary requests at 1/s took %s: the global rate was not held", d)
	}
}

// `hero discord register` overwrites the application's commands, in one
// guild with --guild.
func TestRegister(t *testing.T) {
	t.Parallel()
	fake := discordtest.NewServer(t, testToken, testBot)
	cmds, err := Register(t.Context(), testApp, testToken, fake.APIURL(), "", nil)
	if err != nil || len(cmds) != 1 || cmds[0].Name != "hero" {
		t.Fatalf("register: %v %+v", err, cmds)
	}
	if _, err := Register(t.Context(), testApp, testToken, fake.APIURL(), testGuild, nil); err != nil {
		t.Fatal(err)
	}
	calls := fake.Calls()
	if calls[0].Method != "PUT" || calls[0].Path != "/applications/"+testApp+"/commands" ||
		calls[1].Path != "/applications/"+testApp+"/guilds/"+testGuild+"/commands" {
		t.Fatalf("calls: %+v", calls)
	}
	if len(fake.Commands("")) != 1 || len(fake.Commands(testGuild)) != 1 {
		t.Fatal("commands not installed")
	}
	if _, err := Register(t.Context(), testApp, "wrong", fake.APIURL(), "", nil); err == nil {
		t.Fatal("a wrong token registered commands")
	}
}
