package slack

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
)

// In a direct message with hero (a slash command there, or a message)
// hero links the account and answers status, help, projects and
// decisions by id, privately; a task, `use` or `budget` starts and binds
// nothing and says to use a bound channel. Direct messages need no
// mention.
func TestDirectMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	e.bind("C1")
	u, err := e.db.UpsertUser(ctx, "dee@example.com", "Dee")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetMember(ctx, e.project.ID, u.ID, store.RoleOwner); err != nil {
		t.Fatal(err)
	}
	seen := 0 // calls already matched: each answer is looked for after the last
	answer := func(method, want string) apiCall {
		t.Helper()
		var got apiCall
		e.slack.waitFor(t, method+" in D5 with "+want, func(cs []apiCall) bool {
			for i := seen; i < len(cs); i++ {
				c := cs[i]
				if c.Method == method && c.Channel == "D5" && strings.Contains(c.Text, want) {
					got, seen = c, i+1
					return true
				}
			}
			return false
		})
		return got
	}
	const direct = "start work with `/hero <task>` in a channel bound to a project"

	// A slash command in the direct message: the link code works there.
	code := webLinkCode(t, e.db, u)
	e.command("U5", "D5", "link "+code, "trig-d1")
	if c := answer("chat.postEphemeral", "now acts as dee@example.com"); c.User != "U5" {
		t.Fatalf("the link answer went to %q", c.User)
	}
	if got, err := e.db.UserByIdentity(ctx, Surface, "T1/U5"); err != nil || got.ID != u.ID {
		t.Fatalf("a link code in a direct message did not link: %+v %v", got, err)
	}
	e.command("U5", "D5", "fix the flaky test", "trig-d2")
	answer("chat.postEphemeral", direct)
	e.command("U5", "D5", "use web", "trig-d3")
	answer("chat.postEphemeral", direct)
	e.command("U5", "D5", "budget", "trig-d4")
	answer("chat.postEphemeral", direct)
	e.command("U5", "D5", "status", "trig-d5")
	answer("chat.postEphemeral", "You have no runs going")
	e.command("U5", "D5", "projects", "trig-d6")
	answer("chat.postEphemeral", "`web`")
	e.command("U5", "D5", "approve cnope", "trig-d7")
	answer("chat.postEphemeral", "There is no confirmation `cnope`")
	e.command("U5", "D5", "help", "trig-d8")
	answer("chat.postEphemeral", "/hero status")

	// Slack names the channel of a slash command typed in a direct
	// message "directmessage"; that alone says where it was typed.
	f := url.Values{"team_id": {"T1"}, "channel_id": {"D6"}, "channel_name": {"directmessage"}, "user_id": {"U5"},
		"command": {"/hero"}, "text": {"deploy it"}, "response_url": {"https://hooks.slack.com/commands/T1/1/x"}, "trigger_id": {"trig-d9"}}
	if r := e.post("/slack/commands", formType, []byte(f.Encode()), time.Now()); r.StatusCode != http.StatusOK {
		t.Fatalf("slash command: status %d", r.StatusCode)
	}
	e.slack.waitFor(t, "the answer in D6", func(cs []apiCall) bool {
		return has(cs, "chat.postEphemeral", func(c apiCall) bool { return c.Channel == "D6" && strings.Contains(c.Text, direct) })
	})

	// A message in the direct message: for hero without a mention.
	e.post("/slack/events", "application/json", eventJSON("EvD1", "message", "U5", "D5", "deploy the thing", "1700000500.000001", ""), time.Now())
	e.waitHandled("ev:EvD1")
	if c := answer("chat.postMessage", "direct message with hero"); !strings.Contains(c.Text, "bound to a project") {
		t.Fatalf("reply to a task in a direct message: %q", c.Text)
	}
	e.post("/slack/events", "application/json", eventJSON("EvD2", "message", "U5", "D5", "status", "1700000500.000002", ""), time.Now())
	answer("chat.postMessage", "You have no runs going")

	if exs, _ := e.db.ListExecutions(ctx, store.ExecutionFilter{}); len(exs) != 0 {
		t.Fatalf("%d runs started from direct messages", len(exs))
	}
	for _, ch := range []string{"T1/D5", "T1/D6"} {
		if _, err := e.db.ChannelProject(ctx, Surface, ch); err == nil {
			t.Fatalf("direct message %s is bound to a project", ch)
		}
	}
	for _, c := range e.slack.snapshot() {
		if strings.Contains(c.Text, "not bound to a project yet") {
			t.Fatalf("hero called a direct message an unbound channel: %s %q", c.Method, c.Text)
		}
	}
}
