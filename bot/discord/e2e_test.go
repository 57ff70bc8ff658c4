package discord

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/hero-dev/hero/bot/discord/discordtest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
)

func call(name, args string) openaitest.ToolCall { return openaitest.Call(name, args) }

// sentTo hands seen the text of every message of the model's request
// (a Turn's Check): what it was told, steering included.
func sentTo(seen chan<- string) func(openai.ChatCompletionRequest) error {
	return func(req openai.ChatCompletionRequest) error {
		var all strings.Builder
		for _, m := range req.Messages {
			all.WriteString(m.Content + "\n")
		}
		seen <- all.String()
		return nil
	}
}

var runIDRE = regexp.MustCompile("run `([a-z0-9]+)`")

// threadOf waits for the thread a command opened and returns its id.
func (e *env) threadOf(t *testing.T) string {
	t.Helper()
	var thread string
	e.discord.WaitFor(t, "a thread", 10*time.Second, func(s *discordtest.Server) bool {
		for id := range s.Threads() {
			thread = id
		}
		return thread != ""
	})
	return thread
}

// waitMessage waits for a message in channel whose content matches and
// returns it.
func (e *env) waitMessage(t *testing.T, what, channel string, match func(discordtest.Message) bool) discordtest.Message {
	t.Helper()
	var got discordtest.Message
	e.discord.WaitFor(t, what, 30*time.Second, func(s *discordtest.Server) bool {
		for _, m := range s.Messages(channel) {
			if match(m) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

func hasButtons(m discordtest.Message) bool { return len(m.Components) > 0 }

// The whole flow in one thread: /hero <task> opens a thread on the
// command's response with "on it" first, one progress message edited in
// place, a confirmation with Approve/Deny buttons whose custom_id holds
// only the confirmation id; a bystander's click gets an ephemeral
// refusal (flags 64) and decides nothing; the requester's click
// approves, and the buttons are replaced by the outcome; the run closes
// with a summary, steps, tokens and cost. Model text is escaped and no
// message may notify anyone.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("edit_file", `{"path":"calc.go","old":"return a - b","new":"return a + b"}`)),
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("finish", `{"summary":"Fixed **Add**; @everyone <@123> look at [this](https://evil.example)"}`)),
	)
	e := newRealEnv(t, model)
	e.user("200", "requester@example.com", store.RoleMember)
	e.user("201", "bystander@example.com", store.RoleMember)
	e.bind("300")

	id, code, _ := e.command("200", "300", "fix the adder in calc.go")
	if code != 200 {
		t.Fatalf("command: %d", code)
	}
	thread := e.threadOf(t)
	if parent := e.discord.Threads()[thread]; parent != "300" {
		t.Fatalf("thread %s opened in channel %q, want 300", thread, parent)
	}
	// The command's response became the request the thread hangs on.
	e.discord.WaitFor(t, "the request message", 5*time.Second, func(s *discordtest.Server) bool {
		for _, c := range s.Calls() {
			if c.Method == "PATCH" && strings.HasSuffix(c.Path, "tok-"+id+"/messages/@original") && strings.Contains(c.Content(), "fix the adder") {
				return true
			}
		}
		return false
	})
	first := e.waitMessage(t, "on it", thread, func(m discordtest.Message) bool { return true })
	if !strings.Contains(first.Content, "On it: run") {
		t.Fatalf("first message in the thread: %q, want the 'on it' message", first.Content)
	}
	runID := runIDRE.FindStringSubmatch(first.Content)[1]

	ask := e.waitMessage(t, "the confirmation", thread, hasButtons)
	if !strings.Contains(ask.Content, "delete_file") || !strings.Contains(ask.Content, "README.md") {
		t.Fatalf("confirmation without the exact action: %q", ask.Content)
	}
	pending, err := e.db.PendingConfirmations(context.Background(), runID)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending confirmations: %v %v", pending, err)
	}
	cid := pending[0].ID
	row := ask.Components[0].(map[string]any)["components"].([]any)
	approveID := row[0].(map[string]any)["custom_id"].(string)
	if approveID != approvePrefix+cid || len(approveID) >= 100 {
		t.Fatalf("approve button custom_id %q, want %q (under 100 characters)", approveID, approvePrefix+cid)
	}

	// A bystander (a member, neither requester nor approver) clicks.
	click, code := e.click("201", thread, ask.ID, approveID)
	if code != 200 {
		t.Fatalf("click: %d", code)
	}
	e.waitHandled("ia:" + click)
	var refusal discordtest.Call
	e.discord.WaitFor(t, "the ephemeral refusal", 5*time.Second, func(s *discordtest.Server) bool {
		for _, c := range s.Calls() {
			if c.Method == "POST" && c.Path == "/webhooks/"+testApp+"/tok-"+click {
				refusal = c
				return true
			}
		}
		return false
	})
	if f, _ := refusal.Body["flags"].(float64); int(f) != 64 || !strings.Contains(refusal.Content(), "may not decide") {
		t.Fatalf("refusal %s: want an ephemeral (flags 64) refusal", refusal.JSON())
	}
	if c, _ := e.db.Confirmation(context.Background(), cid); c.Status != store.ConfirmPending {
		t.Fatalf("a bystander's click decided the confirmation: %s", c.Status)
	}

	// The requester approves: the buttons give way to the outcome.
	if _, code := e.click("200", thread, ask.ID, approveID); code != 200 {
		t.Fatalf("click: %d", code)
	}
	e.discord.WaitFor(t, "the decided confirmation", 10*time.Second, func(s *discordtest.Server) bool {
		m, _ := s.Message(ask.ID)
		return !hasButtons(m) && strings.Contains(m.Content, "Approved by <@200>")
	})

	final := e.waitMessage(t, "the summary", thread, func(m discordtest.Message) bool { return strings.Contains(m.Content, "finished") })
	for _, want := range []string{"Run `" + runID + "` finished", "steps", "tokens in", "$", `\*\*Add\*\*`, "@\u200beveryone", `\<@123\>`, `\[this\]\(https\://evil.example\)`} {
		if !strings.Contains(final.Content, want) {
			t.Errorf("summary lacks %q:\n%s", want, final.Content)
		}
	}
	// One progress message, edited in place, never more than once a
	// second (UpdateInterval is 100 ms here).
	msgs := e.discord.Messages(thread)
	progress := 0
	for _, m := range msgs {
		if strings.Contains(m.Content, "**Run `"+runID+"`**") {
			progress++
			if !strings.Contains(m.Content, "succeeded") {
				t.Errorf("progress message not brought up to date: %q", m.Content)
			}
		}
	}
	if progress != 1 {
		t.Errorf("%d progress messages, want 1", progress)
	}
	var last time.Time
	for _, c := range e.discord.Calls() {
		if c.Method != "POST" && c.Method != "PATCH" {
			continue
		}
		if strings.HasPrefix(c.Path, "/channels/"+thread+"/messages") {
			if am, ok := c.Body["allowed_mentions"].(map[string]any); !ok || am["parse"] == nil || len(am["parse"].([]any)) != 0 {
				t.Errorf("%s %s posted without allowed_mentions {parse: []}: %s", c.Method, c.Path, c.JSON())
			}
		}
		if c.Method == "PATCH" && strings.Contains(c.Content(), "**Run `"+runID+"`**") {
			if !last.IsZero() && c.At.Sub(last) < 90*time.Millisecond {
				t.Errorf("progress edited %s after the previous edit, want at least UpdateInterval", c.At.Sub(last))
			}
			last = c.At
		}
	}
}

// A click on a confirmation after hero restarted still decides it: the
// button carries only the id and the rest is in the database.
func TestClickAfterRestart(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("finish", `{"summary":"done"}`)),
	)
	e := newEnv(t, model)
	e.user("200", "requester@example.com", store.RoleMember)
	e.bind("300")
	e.command("200", "300", "remove the readme")
	thread := e.threadOf(t)
	ask := e.waitMessage(t, "the confirmation", thread, hasButtons)
	e2 := e.restart(model)
	// The new process (with a new fake Discord) knows the confirmation
	// from the database alone.
	_, code := e2.click("200", thread, ask.ID, ask.Components[0].(map[string]any)["components"].([]any)[0].(map[string]any)["custom_id"].(string))
	if code != 200 {
		t.Fatalf("click after restart: %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs, err := e2.db.Bun().NewSelect().Table("confirmations").Where("status = ?", store.ConfirmApproved).Count(context.Background())
		if err == nil && cs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the click after the restart did not approve the confirmation")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// /hero status typed in a run's thread is about that run.
func TestStatusInThread(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t, openaitest.Tools(call("finish", `{"summary":"all done"}`)))
	e := newEnv(t, model)
	e.user("200", "requester@example.com", store.RoleMember)
	e.bind("300")
	e.command("200", "300", "say hello")
	thread := e.threadOf(t)
	first := e.waitMessage(t, "on it", thread, func(m discordtest.Message) bool { return strings.Contains(m.Content, "On it") })
	runID := runIDRE.FindStringSubmatch(first.Content)[1]
	e.waitMessage(t, "the summary", thread, func(m discordtest.Message) bool { return strings.Contains(m.Content, "finished") })
	id, _, _ := e.command("200", thread, "status")
	e.answerTo(t, id, "Run `"+runID+"` is *succeeded*")
}
