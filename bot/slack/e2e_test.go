package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
)

var call = openaitest.Call

var runIDRE = regexp.MustCompile("On it: run `([a-z0-9]+)`")

// TestEndToEnd: a signed slash command starts a run; the thread gets "on
// it", a progress message edited in place, Approve/Deny buttons; a
// non-approver's click is refused, an approver's click lets the run go on;
// the thread ends with the final message.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("0123456789abcdef\n", 200) // 3,400 bytes: uploaded as a file
	script := []openaitest.Turn{
		openaitest.Tools(call("run_command", `{"command":"printf '`+strings.ReplaceAll(long, "\n", `\n`)+`'"}`)),
		openaitest.Tools(call("edit_file", `{"path":"calc.go","old":"return a - b","new":"return a + b"}`)),
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("finish", `{"summary":"Add adds now; README removed."}`)),
	}
	// The model's first answer waits until the test lets it go: the
	// acknowledgement and the "on it" reply must not wait for the model
	// (whatever the time a loaded machine takes for either).
	letModelAnswer := make(chan struct{})
	release := sync.OnceFunc(func() { close(letModelAnswer) })
	var modelMu sync.Mutex
	turn, answered := 0, false
	model := openaitest.NewServerFunc(t, func(openaitest.Request) openaitest.Turn {
		select {
		case <-letModelAnswer:
		case <-time.After(enginetest.Patience):
		}
		modelMu.Lock()
		defer modelMu.Unlock()
		answered = true
		if turn == len(script) {
			t.Errorf("the model was asked more than its %d turns", len(script))
			return openaitest.Error(http.StatusInternalServerError)
		}
		turn++
		return script[turn-1]
	})
	modelAnswered := func() bool { modelMu.Lock(); defer modelMu.Unlock(); return answered }
	e := newRealEnv(t, model)
	t.Cleanup(release) // a failed test's run ends without waiting on the model
	e.user("U1", "requester@example.com", store.RoleMember)
	e.user("U2", "approver@example.com", store.RoleApprover)
	e.user("U3", "bystander@example.com", store.RoleMember)
	e.bind("C1")

	resp := e.command("U1", "C1", "run fix the adder in calc.go", "trig-1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("slash command: status %d", resp.StatusCode)
	}
	if modelAnswered() {
		t.Fatal("the slash command was acknowledged only after the model answered; Slack allows 3 s")
	}

	// The thread: a parent message, then "on it" as the first reply.
	calls := e.slack.waitFor(t, "the 'on it' reply", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Text, "On it: run") })
	})
	var parent apiCall
	for _, c := range calls {
		if c.Method == "chat.postMessage" && c.ThreadTS == "" {
			parent = c
			break
		}
	}
	if parent.TS == "" || !strings.Contains(parent.Text, "fix the adder") || parent.Channel != "C1" {
		t.Fatalf("no parent message for the thread:\n%s", dumpCalls(calls))
	}
	var firstReply apiCall
	for _, c := range calls {
		if c.Method == "chat.postMessage" && c.ThreadTS == parent.TS {
			firstReply = c
			break
		}
	}
	if !strings.Contains(firstReply.Text, "On it: run") {
		t.Fatalf("the first reply in the thread is %q, want the 'on it' message", firstReply.Text)
	}
	if modelAnswered() {
		t.Fatal("the 'on it' reply waited for the model's answer")
	}
	release()
	runID := runIDRE.FindStringSubmatch(firstReply.Text)[1]

	// The confirmation with buttons.
	calls = e.slack.waitFor(t, "the confirmation buttons", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Blocks, actionApprove) })
	})
	var ask apiCall
	for _, c := range calls {
		if c.Method == "chat.postMessage" && strings.Contains(c.Blocks, actionApprove) {
			ask = c
		}
	}
	if ask.ThreadTS != parent.TS || !strings.Contains(ask.Blocks, "delete_file") || !strings.Contains(ask.Blocks, "README.md") {
		t.Fatalf("confirmation not in the thread or without the exact action: %+v", ask)
	}
	// Slack must not fetch links the model wrote for a preview.
	if ask.Unfurl != "false/false" {
		t.Errorf("the confirmation is posted with unfurl_links/unfurl_media = %q, want false/false", ask.Unfurl)
	}
	pending, err := e.db.PendingConfirmations(context.Background(), runID)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending confirmations: %v %v", pending, err)
	}
	cid := pending[0].ID
	if !strings.Contains(ask.Blocks, `"value":"`+cid+`"`) {
		t.Fatalf("button value is not the confirmation id %s: %s", cid, ask.Blocks)
	}

	// A bystander (member, not approver) clicks: refused, ephemeral.
	if r := e.click("U3", "C1", ask.TS, actionApprove, cid, "trig-2"); r.StatusCode != http.StatusOK {
		t.Fatalf("click: status %d", r.StatusCode)
	}
	e.slack.waitFor(t, "the not-allowed ephemeral", func(cs []apiCall) bool {
		return has(cs, "chat.postEphemeral", func(c apiCall) bool { return c.User == "U3" && strings.Contains(c.Text, "may not decide") })
	})
	if c, _ := e.db.Confirmation(context.Background(), cid); c.Status != store.ConfirmPending {
		t.Fatalf("a bystander's click decided the confirmation: %s", c.Status)
	}

	// The approver clicks: the message shows who decided, without buttons.
	if r := e.click("U2", "C1", ask.TS, actionApprove, cid, "trig-3"); r.StatusCode != http.StatusOK {
		t.Fatalf("click: status %d", r.StatusCode)
	}
	e.slack.waitFor(t, "the decided confirmation message", func(cs []apiCall) bool {
		return has(cs, "chat.update", func(c apiCall) bool {
			return c.TS == ask.TS && strings.Contains(c.Blocks, "Approved by \\u003c@U2\\u003e") && !strings.Contains(c.Blocks, actionApprove)
		})
	})

	// The run goes on and ends with the final message.
	calls = e.slack.waitFor(t, "the final message", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return c.ThreadTS == parent.TS && strings.Contains(c.Text, "succeeded") })
	})
	final := calls[len(calls)-1]
	for _, c := range calls {
		if c.Method == "chat.postMessage" && strings.Contains(c.Text, "succeeded") {
			final = c
		}
	}
	for _, want := range []string{"Add adds now", "steps", "tokens"} {
		if !strings.Contains(final.Blocks, want) {
			t.Errorf("final message lacks %q: %s", want, final.Blocks)
		}
	}
	// The long output went up as a file in the thread.
	if !has(calls, "files.completeUploadExternal", func(c apiCall) bool { return c.ThreadTS == parent.TS }) {
		t.Errorf("long output not uploaded as a file in the thread:\n%s", dumpCalls(calls))
	}

	// Progress: one message, edited in place, at most once per second.
	var progressTS string
	for _, c := range calls {
		if c.Method == "chat.postMessage" && c.ThreadTS == parent.TS && strings.Contains(c.Text, "Run "+runID+":") {
			progressTS = c.TS
		}
	}
	if progressTS == "" {
		t.Fatalf("no progress message:\n%s", dumpCalls(calls))
	}
	// The last edit shows the finished state (it may come up to 1 s later).
	calls = e.slack.waitFor(t, "the progress message's final state", func(cs []apiCall) bool {
		return has(cs, "chat.update", func(c apiCall) bool { return c.TS == progressTS && strings.Contains(c.Text, "succeeded") })
	})
	var last time.Time
	edits := 0
	for _, c := range calls {
		if c.Method != "chat.update" || c.TS != progressTS {
			continue
		}
		edits++
		if !last.IsZero() && c.At.Sub(last) < time.Second {
			t.Errorf("two edits of the progress message %s apart", c.At.Sub(last))
		}
		last = c.At
		if !strings.Contains(c.Blocks, "cost") && !strings.Contains(c.Blocks, "$") {
			t.Errorf("progress without cost: %s", c.Blocks)
		}
	}
	if edits == 0 {
		t.Fatal("the progress message was never edited")
	}
	ex, err := e.db.Execution(context.Background(), runID)
	if err != nil || ex.Status != store.StatusSucceeded || ex.Requester != "slack:T1/U1" {
		t.Fatalf("run: %+v %v", ex, err)
	}
	// Processing the same command again (the inbox is at-least-once: a
	// crash before the delivery was marked done) starts nothing.
	before := len(e.slack.snapshot())
	f := map[string][]string{"team_id": {"T1"}, "channel_id": {"C1"}, "user_id": {"U1"}, "text": {"run fix the adder in calc.go"}}
	if err := e.a.onCommand(context.Background(), f, "cmd:trig-1"); err != nil {
		t.Fatal(err)
	}
	if runs, _ := e.db.ListExecutions(context.Background(), store.ExecutionFilter{ProjectID: e.project.ID}); len(runs) != 1 {
		t.Fatalf("%d runs after the command was processed twice", len(runs))
	}
	if after := e.slack.snapshot(); len(after) != before {
		t.Fatalf("reprocessing posted:\n%s", dumpCalls(after[before:]))
	}
}

// TestThreadReplies: the requester's reply answers a question; a
// bystander's chatter is ignored; a mention in the thread steers.
func TestThreadReplies(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("ask_human", `{"question":"Which file should I fix?"}`)),
		openaitest.Turn{ToolCalls: []openaitest.ToolCall{call("finish", `{"summary":"fixed calc.go"}`)}},
	)
	e := newEnv(t, model)
	e.user("U1", "requester@example.com", store.RoleMember)
	e.user("U3", "bystander@example.com", store.RoleMember)
	e.bind("C1")

	// Started by a mention: the mention's own thread is the run's thread.
	mention := eventJSON("Ev1", "app_mention", "U1", "C1", "<@UHERO> fix the failing test", "1700000100.000100", "")
	if r := e.post("/slack/events", "application/json", mention, time.Now()); r.StatusCode != http.StatusOK {
		t.Fatalf("event: status %d", r.StatusCode)
	}
	calls := e.slack.waitFor(t, "the question", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Blocks, "Which file should I fix?") })
	})
	onIt := ""
	for _, c := range calls {
		if c.Method == "chat.postMessage" && strings.Contains(c.Text, "On it") {
			onIt = c.Text
			if c.ThreadTS != "1700000100.000100" {
				t.Fatalf("'on it' went to thread %q, want the mention's", c.ThreadTS)
			}
		}
	}
	runID := runIDRE.FindStringSubmatch(onIt)[1]

	// A bystander chats in the thread: nothing happens.
	chat := eventJSON("Ev2", "message", "U3", "C1", "lol nice", "1700000100.000200", "1700000100.000100")
	e.post("/slack/events", "application/json", chat, time.Now())
	e.waitHandled("ev:Ev2")
	if p, _ := e.db.PendingConfirmations(context.Background(), runID); len(p) != 1 {
		t.Fatalf("a bystander's message answered the question: pending = %v", p)
	}
	// The requester answers by replying in the thread.
	answer := eventJSON("Ev3", "message", "U1", "C1", "calc.go please", "1700000100.000300", "1700000100.000100")
	e.post("/slack/events", "application/json", answer, time.Now())
	e.slack.waitFor(t, "the final message", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Text, "succeeded") })
	})
	reqs := model.Requests()
	lastReq, _ := json.Marshal(reqs[len(reqs)-1].Decoded.Messages)
	if !strings.Contains(string(lastReq), "calc.go please") {
		t.Fatalf("the answer did not reach the model: %s", lastReq)
	}
	e.slack.waitFor(t, "the answered question message", func(cs []apiCall) bool {
		return has(cs, "chat.update", func(c apiCall) bool { return strings.Contains(c.Blocks, "Answered by") })
	})
}

func eventJSON(id, typ, user, channel, text, ts, threadTS string) []byte {
	chType := "channel"
	if strings.HasPrefix(channel, "D") {
		chType = "im"
	}
	ev := map[string]any{"type": typ, "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts, "channel_type": chType}
	if threadTS != "" {
		ev["thread_ts"] = threadTS
	}
	b, _ := json.Marshal(map[string]any{"token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": id,
		"event_time": 1700000000, "event": ev,
		"authorizations": []map[string]any{{"team_id": "T1", "user_id": "UHERO", "is_bot": true}}})
	return b
}

func TestSteerByMention(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("finish", `{"summary":"done"}`)),
	)
	e := newEnv(t, model)
	e.user("U1", "requester@example.com", store.RoleMember)
	e.bind("C1")
	e.command("U1", "C1", "clean up the readme", "trig-s1")
	calls := e.slack.waitFor(t, "the confirmation", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Blocks, actionApprove) })
	})
	var ask apiCall
	for _, c := range calls {
		if c.Method == "chat.postMessage" && strings.Contains(c.Blocks, actionApprove) {
			ask = c
		}
	}
	steer := eventJSON("EvS", "app_mention", "U1", "C1", "<@UHERO> keep the license section", "1700000200.000001", ask.ThreadTS)
	e.post("/slack/events", "application/json", steer, time.Now())
	e.waitHandled("ev:EvS")
	pending, _ := e.db.PendingConfirmations(context.Background(), runFromThread(t, e, ask.ThreadTS))
	if len(pending) != 1 {
		t.Fatalf("pending = %v", pending)
	}
	// The requester may decide their own run.
	e.click("U1", "C1", ask.TS, actionDeny, pending[0].ID, "trig-s2")
	e.slack.waitFor(t, "the final message", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Text, "succeeded") })
	})
	found := false
	for _, r := range model.Requests() {
		b, _ := json.Marshal(r.Decoded.Messages)
		found = found || strings.Contains(string(b), "keep the license section")
	}
	if !found {
		t.Fatal("the steering message never reached the model")
	}
}

func runFromThread(t *testing.T, e *env, thread string) string {
	t.Helper()
	id, err := e.db.ThreadExecution(context.Background(), Surface, fmt.Sprintf("T1/C1/%s", thread))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestStatusAndCancelInThread: "@hero status" and "@hero cancel" in a
// run's thread act on that run.
func TestStatusAndCancelInThread(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("finish", `{"summary":"never reached"}`)),
	)
	e := newEnv(t, model)
	e.user("U1", "requester@example.com", store.RoleMember)
	e.bind("C1")
	e.command("U1", "C1", "remove the readme", "trig-c1")
	calls := e.slack.waitFor(t, "the confirmation", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Blocks, actionApprove) })
	})
	var thread string
	for _, c := range calls {
		if c.Method == "chat.postMessage" && strings.Contains(c.Blocks, actionApprove) {
			thread = c.ThreadTS
		}
	}
	runID := runFromThread(t, e, thread)
	e.post("/slack/events", "application/json", eventJSON("EvSt", "app_mention", "U1", "C1", "<@UHERO> status", "1700000800.000001", thread), time.Now())
	e.slack.waitFor(t, "the status reply", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool {
			return c.ThreadTS == thread && strings.Contains(c.Text, "Run `"+runID+"` is *waiting*")
		})
	})
	e.post("/slack/events", "application/json", eventJSON("EvCa", "app_mention", "U1", "C1", "<@UHERO> cancel", "1700000800.000002", thread), time.Now())
	e.slack.waitFor(t, "the cancelled run's final message", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool {
			return c.ThreadTS == thread && strings.Contains(c.Text, "cancelled") && strings.Contains(c.Blocks, "was cancelled")
		})
	})
	if ex, _ := e.db.Execution(context.Background(), runID); ex.Status != store.StatusCancelled {
		t.Fatalf("run is %s after @hero cancel", ex.Status)
	}
}

// TestRestartWhileWaiting: hero stops while a run waits for approval; the
// next hero resumes it, and a click on the button posted before the
// restart lets it finish.
func TestRestartWhileWaiting(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("finish", `{"summary":"removed after the restart"}`)),
	)
	e := newRealEnv(t, model)
	e.user("U1", "requester@example.com", store.RoleMember)
	e.user("U2", "approver@example.com", store.RoleApprover)
	e.bind("C1")
	e.command("U1", "C1", "remove the readme", "trig-rs1")
	calls := e.slack.waitFor(t, "the confirmation", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Blocks, actionApprove) })
	})
	var ask apiCall
	for _, c := range calls {
		if c.Method == "chat.postMessage" && strings.Contains(c.Blocks, actionApprove) {
			ask = c
		}
	}
	runID := runFromThread(t, e, ask.ThreadTS)
	var pending []store.Confirmation
	deadline := time.Now().Add(enginetest.Patience)
	for len(pending) == 0 || pending[0].SurfaceRef == "" { // the engine records the message
		if time.Now().After(deadline) {
			t.Fatalf("confirmation message reference never saved: %+v", pending)
		}
		time.Sleep(10 * time.Millisecond)
		pending, _ = e.db.PendingConfirmations(context.Background(), runID)
	}

	e2 := e.restart(model)
	resumed, _, err := e2.eng.Resume(e2.ctx)
	if err != nil || resumed != 1 {
		t.Fatalf("resume: %d runs, %v", resumed, err)
	}
	e2.slack.waitFor(t, "the resumed notice", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool {
			return c.ThreadTS == ask.ThreadTS && strings.Contains(c.Text, "Resuming run "+runID)
		})
	})
	// Click once the resumed run waits again. (A click between the restart
	// and that moment is lost today: the engine only reuses *pending*
	// confirmations when it replays the tool call — reported on the engine.)
	deadline = time.Now().Add(enginetest.Patience)
	for {
		cur, _ := e2.db.Execution(context.Background(), runID)
		if cur.Status == store.StatusWaiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resumed run never waited again: %s", cur.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e2.click("U2", "C1", ask.TS, actionApprove, pending[0].ID, "trig-rs2")
	e2.slack.waitFor(t, "the final message after the restart", func(cs []apiCall) bool {
		return has(cs, "chat.update", func(c apiCall) bool { return c.TS == ask.TS && strings.Contains(c.Blocks, "Approved by") }) &&
			has(cs, "chat.postMessage", func(c apiCall) bool {
				return c.ThreadTS == ask.ThreadTS && strings.Contains(c.Blocks, "removed after the restart")
			})
	})
}
