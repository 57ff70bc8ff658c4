package discord

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot/discord/discordtest"
	"github.com/hero-dev/hero/store"
)

// answerTo waits for the answer to interaction id (its deferred response
// replaced) and returns its content.
func (e *env) answerTo(t *testing.T, id, want string) string {
	t.Helper()
	var got string
	e.discord.WaitFor(t, "the answer containing "+want, 10*time.Second, func(s *discordtest.Server) bool {
		for _, c := range s.Calls() {
			if c.Method == "PATCH" && strings.Contains(c.Path, "tok-"+id+"/messages/@original") && strings.Contains(c.Content(), want) {
				got = c.Content()
				return true
			}
		}
		return false
	})
	return got
}

// A Discord account is linked with a code from the settings page, typed
// as /hero link (answered privately); until then hero says how. A code
// posted in a channel mentioning hero is cancelled, not used. /hero use
// binds the channel (owner or admin only).
func TestLinkAndUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	u, err := e.db.UpsertUser(ctx, "lin@example.com", "Lin")
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := e.command("700", "300", "use web")
	e.answerTo(t, id, "/hero link CODE")

	code := store.NewLinkCode()
	if err := e.db.CreateLinkCode(ctx, u.ID, code, time.Now().Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	id, _, ack := e.command("700", "300", "link "+strings.ToLower(code))
	var a struct {
		Data struct{ Flags int } `json:"data"`
	}
	if json.Unmarshal([]byte(ack), &a); a.Data.Flags != 64 {
		t.Fatalf("link ack %s: want an ephemeral response", ack)
	}
	e.answerTo(t, id, "now acts as lin@example.com")
	if got, err := e.db.UserByIdentity(ctx, Surface, "700"); err != nil || got.ID != u.ID {
		t.Fatalf("identity discord 700 → %+v, %v", got, err)
	}
	for _, c := range e.discord.Calls() {
		if strings.Contains(c.JSON(), code) {
			t.Fatalf("the link code was echoed to Discord: %s", c.JSON())
		}
	}

	// A member may not bind the channel; an owner may.
	if err := e.db.SetMember(ctx, e.project.ID, u.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	id, _, _ = e.command("700", "300", "use web")
	e.answerTo(t, id, "Only an owner or admin")
	if err := e.db.SetMember(ctx, e.project.ID, u.ID, store.RoleOwner); err != nil {
		t.Fatal(err)
	}
	id, _, _ = e.command("700", "300", "use web")
	e.answerTo(t, id, "now bound to project *web*")
	if p, err := e.db.ChannelProject(ctx, Surface, "300"); err != nil || p.ID != e.project.ID {
		t.Fatalf("binding: %+v %v", p, err)
	}

	// A code posted publicly is burned.
	pub := store.NewLinkCode()
	if err := e.db.CreateLinkCode(ctx, u.ID, pub, time.Now().Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	msg := discordtest.NewID()
	e.a.onGatewayMessage(mustMessage(t, discordtest.MessageCreate(msg, discordtest.Actor{Guild: testGuild, Channel: "300", User: "701"},
		"<@"+testBot+"> link "+pub, []string{testBot}, "", "")))
	e.waitHandled("msg:" + msg)
	e.waitMessage(t, "the cancellation", "300", func(m discordtest.Message) bool { return strings.Contains(m.Content, "cancelled it") })
	if _, err := e.db.UseLinkCode(ctx, pub, time.Now()); err == nil {
		t.Fatal("a link code posted in a channel still works")
	}
	if _, err := e.db.UserByIdentity(ctx, Surface, "701"); err == nil {
		t.Fatal("a public link code linked its poster")
	}
}

// After the interaction's 15 minutes, a public answer is posted in the
// channel with the bot token instead of through the expired webhook.
func TestAnswerAfterTokenExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.user("700", "owner@example.com", store.RoleOwner)
	old := discordtest.Snowflake(time.Now().Add(-20 * time.Minute))
	id := itoa(old)
	code, _ := e.post(discordtest.Command(testApp, id, "tok-"+id, discordtest.Actor{Guild: testGuild, Channel: "300", User: "700"}, "use web"), time.Now(), true)
	if code != 200 {
		t.Fatalf("command: %d", code)
	}
	e.waitMessage(t, "the answer in the channel", "300", func(m discordtest.Message) bool { return strings.Contains(m.Content, "now bound to project") })
	for _, c := range e.discord.Calls() {
		if strings.Contains(c.Path, "tok-"+id) {
			t.Fatalf("the expired interaction token was used: %s %s", c.Method, c.Path)
		}
		if c.Method == "POST" && c.Path == "/channels/300/messages" && c.Auth != "Bot "+testToken {
			t.Fatalf("channel message without the bot token: %q", c.Auth)
		}
	}
}
