package discord

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/hero-dev/hero/bot/discord/discordtest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
)

// One real discordgo session against the local gateway: GET /gateway/bot
// goes to DISCORD_API_URL, IDENTIFY asks for guild and direct messages
// and not the privileged message-content intent, and a MESSAGE_CREATE
// mentioning hero starts a run in a thread opened on that message; a
// reply to hero's message in the thread by the requester steers it; a
// message neither mentioning nor replying to hero is not even stored.
func TestGatewaySession(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("ask_human", `{"question":"Which file?"}`)),
		openaitest.Tools(call("finish", `{"summary":"done"}`)),
	)
	gw := discordtest.NewGateway(t, testBot)
	var fake *discordtest.Server
	e := newEnv(t, model, func(c *Config) {
		c.Gateway = NewSessionGateway(testToken, c.APIURL, &http.Client{Timeout: 10 * time.Second})
		c.LeaseTTL = 300 * time.Millisecond
	})
	fake = e.discord
	fake.SetGateway(gw.URL())
	e.user("200", "requester@example.com", store.RoleMember)
	e.bind("300")
	gw.WaitConnections(t, 1, 10*time.Second)

	ids := gw.Identifies()
	intents, _ := ids[0]["intents"].(float64)
	if int(intents)&int(discordgo.IntentMessageContent) != 0 {
		t.Fatalf("IDENTIFY asked for the message-content intent (%d)", int(intents))
	}
	if int(intents)&int(discordgo.IntentGuildMessages) == 0 {
		t.Fatalf("IDENTIFY without guild messages (%d)", int(intents))
	}
	if tok, _ := ids[0]["token"].(string); tok != "Bot "+testToken {
		t.Fatalf("IDENTIFY token %q", tok)
	}
	gotBot := false
	for _, c := range fake.Calls() {
		gotBot = gotBot || (c.Method == "GET" && c.Path == "/gateway/bot")
	}
	if !gotBot {
		t.Fatal("GET /gateway/bot did not reach DISCORD_API_URL")
	}

	actor := discordtest.Actor{Guild: testGuild, Channel: "300", User: "200"}
	chatter := discordtest.NewID()
	gw.Dispatch(discordtest.MessageCreate(chatter, actor, "", nil, "", ""))
	mention := discordtest.NewID()
	gw.Dispatch(discordtest.MessageCreate(mention, actor, "<@"+testBot+"> tidy up the readme", []string{testBot}, "", ""))
	thread := e.threadOf(t)
	if p := fake.Threads()[thread]; p != "300" {
		t.Fatalf("thread opened in %q", p)
	}
	opened := false
	for _, c := range fake.Calls() {
		opened = opened || (c.Method == "POST" && c.Path == "/channels/300/messages/"+mention+"/threads")
	}
	if !opened {
		t.Fatal("the thread was not opened on the mention")
	}
	q := e.waitMessage(t, "the question", thread, func(m discordtest.Message) bool { return strings.Contains(m.Content, "Which file?") })

	// The requester replies to hero's question (no mention): it answers it.
	in := discordtest.Actor{Guild: testGuild, Channel: thread, User: "200"}
	gw.Dispatch(discordtest.MessageCreate(discordtest.NewID(), in, "README.md please", nil, q.ID, testBot))
	e.waitMessage(t, "the summary", thread, func(m discordtest.Message) bool { return strings.Contains(m.Content, "finished") })
	if e.timesHandled("msg:"+chatter) != 0 {
		t.Fatal("a message for nobody was stored")
	}
	var answer string
	cs, _ := e.db.Bun().NewSelect().Table("confirmations").Column("answer").Where("kind = ?", store.ConfirmKindQuestion).Rows(context.Background())
	for cs.Next() {
		cs.Scan(&answer)
	}
	cs.Close()
	if answer != "README.md please" {
		t.Fatalf("the question's answer is %q", answer)
	}
}

// fakeGateway is a Gateway whose sessions the test watches.
type fakeGateway struct {
	runs chan context.Context
	fail error

	mu     sync.Mutex
	failed []time.Time // when each failing Run returned
}

func (g *fakeGateway) Run(ctx context.Context, on Events) error {
	if g.fail != nil {
		g.runs <- ctx
		g.mu.Lock()
		g.failed = append(g.failed, time.Now())
		g.mu.Unlock()
		return g.fail
	}
	g.runs <- ctx
	<-ctx.Done()
	return nil
}

// Exactly one replica holds the gateway; when it stops, another takes
// over within the lease's life.
func TestGatewayLease(t *testing.T) {
	t.Parallel()
	ga := &fakeGateway{runs: make(chan context.Context, 4)}
	gb := &fakeGateway{runs: make(chan context.Context, 4)}
	// Long enough that a loaded machine's stall in renewing it is not a
	// lapse during the 1 s watched for a second holder (300 ms was not).
	const lease = 2 * time.Second
	a := newEnv(t, nil, func(c *Config) { c.Gateway, c.Owner, c.LeaseTTL = ga, "replica-a", lease })
	// b shares a's database.
	b := startEnv(t, a.dir, a.project, a.key, nil, a.real, func(c *Config) { c.Gateway, c.Owner, c.LeaseTTL = gb, "replica-b", lease })
	var held context.Context
	var standby *env
	select {
	case held = <-ga.runs:
		standby = b
	case held = <-gb.runs:
		standby = a
	case <-time.After(5 * time.Second):
		t.Fatal("no replica took the gateway")
	}
	if s := standby.a.Status(); s != "standby" {
		t.Fatalf("the other replica's gateway status is %q, want standby", s)
	}
	select {
	case <-ga.runs:
		t.Fatal("both replicas hold the gateway")
	case <-gb.runs:
		t.Fatal("both replicas hold the gateway")
	case <-time.After(time.Second):
	}
	// The holder dies.
	if standby == b {
		a.stop()
	} else {
		b.stop()
	}
	<-held.Done()
	select {
	case <-ga.runs:
	case <-gb.runs:
	case <-time.After(5 * time.Second):
		t.Fatal("the other replica did not take the gateway over")
	}
}

// A session that fails is retried after a backoff that doubles, not in a
// tight IDENTIFY loop.
func TestGatewayBackoff(t *testing.T) {
	t.Parallel()
	g := &fakeGateway{runs: make(chan context.Context, 64), fail: context.DeadlineExceeded}
	newEnv(t, nil, func(c *Config) {
		c.Gateway, c.LeaseTTL, c.IdentifyBackoff = g, 150*time.Millisecond, 100*time.Millisecond
	})
	// The wait is from a failure to the next attempt: measured from when
	// Run returned, so a slow scheduler cannot make it look shorter.
	var at []time.Time
	for len(at) < 3 {
		select {
		case <-g.runs:
			at = append(at, time.Now())
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d attempts", len(at))
		}
	}
	g.mu.Lock()
	failed := append([]time.Time(nil), g.failed...)
	g.mu.Unlock()
	if d1, d2 := at[1].Sub(failed[0]), at[2].Sub(failed[1]); d1 < 100*time.Millisecond || d2 < 200*time.Millisecond {
		t.Fatalf("attempts %s and %s after the failures, want ≥100 ms then ≥200 ms", d1, d2)
	}
}

// In a run's thread the requester steers by mentioning hero; a message by
// someone else that neither mentions nor replies to hero is not stored,
// and the model sees only the steering.
func TestSteerByMention(t *testing.T) {
	t.Parallel()
	steered := make(chan string, 1)
	model := openaitest.NewServer(t,
		openaitest.Tools(call("run_command", `{"command":"sleep 1.5"}`)),
		openaitest.Turn{ToolCalls: []openaitest.ToolCall{call("finish", `{"summary":"done"}`)}, Check: sentTo(steered)},
	)
	e := newRealEnv(t, model)
	e.user("200", "requester@example.com", store.RoleMember)
	e.bind("300")
	e.command("200", "300", "run the slow thing")
	thread := e.threadOf(t)
	e.waitMessage(t, "on it", thread, func(m discordtest.Message) bool { return strings.Contains(m.Content, "On it") })
	in := discordtest.Actor{Guild: testGuild, Channel: thread, User: "200"}
	other := discordtest.Actor{Guild: testGuild, Channel: thread, User: "201"}
	quiet := discordtest.NewID()
	e.a.onGatewayMessage(mustMessage(t, discordtest.MessageCreate(quiet, other, "", nil, "", "")))
	steer := discordtest.NewID()
	e.a.onGatewayMessage(mustMessage(t, discordtest.MessageCreate(steer, in, "<@"+testBot+"> also update the changelog", []string{testBot}, "", "")))
	e.waitHandled("msg:" + steer)
	select {
	case got := <-steered:
		if !strings.Contains(got, "also update the changelog") {
			t.Fatalf("the model did not see the steering:\n%s", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not continue")
	}
	if e.timesHandled("msg:"+quiet) != 0 || e.deliveries() != 2 {
		t.Fatalf("%d deliveries; a message for nobody was stored", e.deliveries())
	}
}
