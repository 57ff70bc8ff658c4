package discord

import (
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot/discord/discordtest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
)

// commandIn sends a signed `/hero text` as a typed it.
func (e *env) commandIn(a discordtest.Actor, text string) string {
	e.t.Helper()
	id := discordtest.NewID()
	if code, body := e.post(discordtest.Command(testApp, id, "tok-"+id, a, text), time.Now(), true); code != 200 {
		e.t.Fatalf("command %q: %d %s", text, code, body)
	}
	return id
}

// /hero <task> typed in a thread of a bound channel starts the run in that
// thread (no new thread; "on it" replaces the command's response there);
// typed again while that run is going, it steers the run, as a mention in
// a run's thread does. A mention in another thread of the channel starts
// a run there too (the thread's parent is looked up).
func TestCommandInThreadStartsRunThere(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
	)
	e := newEnv(t, model)
	e.user("200", "requester@example.com", store.RoleMember)
	e.bind("300")
	inThread := discordtest.Actor{Guild: testGuild, Channel: "301", User: "200", Parent: "300"}

	id := e.commandIn(inThread, "remove the readme")
	on := e.answerTo(t, id, "On it: run")
	runID := runIDRE.FindStringSubmatch(on)[1]
	ex, err := e.db.Execution(t.Context(), runID)
	if err != nil || ex.ThreadRef != "301" {
		t.Fatalf("run %s reports to %q (%v), want the thread 301", runID, ex.ThreadRef, err)
	}
	ask := e.waitMessage(t, "the confirmation in the thread", "301", hasButtons)
	if !strings.Contains(ask.Content, "README.md") {
		t.Fatalf("confirmation %q", ask.Content)
	}
	if n := len(e.discord.Threads()); n != 0 {
		t.Fatalf("%d threads opened, want none: the command was typed in one", n)
	}

	// The run waits for its confirmation: a second task in its thread
	// steers it instead of starting another.
	id = e.commandIn(inThread, "also keep a backup")
	e.answerTo(t, id, "Run `"+runID+"` reads that before its next step")
	exs, err := e.db.ListExecutions(t.Context(), store.ExecutionFilter{ProjectID: e.project.ID})
	if err != nil || len(exs) != 1 {
		t.Fatalf("%d runs (%v), want the one", len(exs), err)
	}

	// A mention in another thread of the bound channel: hero looks the
	// thread up and starts there.
	e.discord.AddChannel(discordtest.Channel{ID: "302", GuildID: testGuild, ParentID: "300", Type: 11, Name: "talk"})
	msg := discordtest.NewID()
	e.a.onGatewayMessage(mustMessage(t, discordtest.MessageCreate(msg, discordtest.Actor{Guild: testGuild, Channel: "302", User: "200"},
		"<@"+testBot+"> remove the readme here too", []string{testBot}, "", "")))
	e.waitHandled("msg:" + msg)
	on2 := e.waitMessage(t, "on it in thread 302", "302", func(m discordtest.Message) bool { return strings.Contains(m.Content, "On it: run") })
	ex2, err := e.db.Execution(t.Context(), runIDRE.FindStringSubmatch(on2.Content)[1])
	if err != nil || ex2.ThreadRef != "302" || ex2.ID == runID {
		t.Fatalf("the mention's run: %+v %v, want a new run in thread 302", ex2, err)
	}
	if n := len(e.discord.Threads()); n != 1 { // 302 itself
		t.Fatalf("threads %v: the mention opened a thread in a thread", e.discord.Threads())
	}
}

// A thread of a channel that is not bound is answered like that channel.
func TestCommandInThreadOfUnboundChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.user("200", "requester@example.com", store.RoleMember)
	id := e.commandIn(discordtest.Actor{Guild: testGuild, Channel: "401", User: "200", Parent: "400"}, "fix it")
	e.answerTo(t, id, "not bound to a project")
	if exs, _ := e.db.ListExecutions(t.Context(), store.ExecutionFilter{}); len(exs) != 0 {
		t.Fatalf("%d runs started", len(exs))
	}
}

// In a direct message hero links the account, answers status and help,
// privately; a task there starts nothing and says to use a bound channel.
// Direct messages need no mention.
func TestDirectMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	e.bind("300")
	u, err := e.db.UpsertUser(ctx, "dee@example.com", "Dee")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetMember(ctx, e.project.ID, u.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	dm := discordtest.Actor{Channel: "900", User: "250"} // no guild

	code := store.NewLinkCode()
	if err := e.db.CreateLinkCode(ctx, u.ID, code, time.Now().Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	id := e.commandIn(dm, "link "+code)
	e.answerTo(t, id, "now acts as dee@example.com")
	if got, err := e.db.UserByIdentity(ctx, Surface, "250"); err != nil || got.ID != u.ID {
		t.Fatalf("a link code in a direct message did not link: %+v %v", got, err)
	}

	id = e.commandIn(dm, "fix the flaky test")
	e.answerTo(t, id, "start work with `/hero <task>` in a channel bound to a project")
	id = e.commandIn(dm, "status")
	e.answerTo(t, id, "You have no runs going")
	id = e.commandIn(dm, "help")
	e.answerTo(t, id, "/hero status")

	// Over the gateway: a direct message is for hero without a mention.
	msg := discordtest.NewID()
	e.a.onGatewayMessage(mustMessage(t, discordtest.MessageCreate(msg, dm, "deploy the thing", nil, "", "")))
	e.waitHandled("msg:" + msg)
	reply := e.waitMessage(t, "the reply in the direct message", "900", func(m discordtest.Message) bool { return true })
	if !strings.Contains(reply.Content, "direct message") || !strings.Contains(reply.Content, "bound to a project") {
		t.Fatalf("reply to a task in a direct message: %q", reply.Content)
	}
	if exs, _ := e.db.ListExecutions(ctx, store.ExecutionFilter{}); len(exs) != 0 {
		t.Fatalf("%d runs started from direct messages", len(exs))
	}
	if _, err := e.db.ChannelProject(ctx, Surface, "900"); err == nil {
		t.Fatal("a direct message is bound to a project")
	}
}
