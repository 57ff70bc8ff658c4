package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sashabaranov/go-openai"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
)

var call = openaitest.Call

func TestRunFixesCodeAndRecordsEverything(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("read_file", `{"path":"calc.go"}`)),
		openaitest.Tools(call("edit_file", `{"path":"calc.go","old":"return a - b","new":"return a + b"}`)),
		openaitest.Tools(call("run_command", `{"command":"grep -c 'a + b' calc.go"}`)),
		openaitest.Tools(call("finish", `{"summary":"Add now adds."}`)),
	)
	h := newHarness(t, model)
	ex := h.start("fix Add")
	o := h.outcome(ex.ID)
	if o.Status != store.StatusSucceeded || o.Summary != "Add now adds." {
		t.Fatalf("outcome = %+v", o)
	}
	if o.Steps != 4 || !o.CostKnown {
		t.Errorf("outcome accounting = %+v", o)
	}

	reqs := model.Requests()
	if len(reqs) != 4 {
		t.Fatalf("model calls = %d, want 4", len(reqs))
	}
	// The model sees every public tool with a JSON Schema.
	names := map[string]bool{}
	for _, tool := range reqs[0].Decoded.Tools {
		names[tool.Function.Name] = true
		if _, ok := tool.Function.Parameters.(map[string]any); !ok {
			if b, err := json.Marshal(tool.Function.Parameters); err != nil || !json.Valid(b) {
				t.Errorf("tool %s has no JSON schema", tool.Function.Name)
			}
		}
	}
	for _, n := range []string{"read_file", "list_files", "search", "write_file", "edit_file", "delete_file", "run_command", "git_commit", "git_push", "create_pull_request", "comment", "ask_human", "finish"} {
		if !names[n] {
			t.Errorf("tool %s missing from the schemas sent to the model", n)
		}
	}
	// Each tool result goes back to the model.
	last := reqs[3].Decoded.Messages
	var sawGrep bool
	for _, m := range last {
		if m.Role == openai.ChatMessageRoleTool && strings.Contains(m.Content, "1") && strings.Contains(m.Content, "exit") {
			sawGrep = true
		}
	}
	if !sawGrep {
		t.Errorf("the run_command result did not reach the model: %+v", last)
	}

	steps := h.steps(ex.ID)
	var tools []string
	for i, s := range steps {
		if s.Ordinal != i+1 {
			t.Errorf("step %d has ordinal %d", i, s.Ordinal)
		}
		if s.Kind == store.StepTool {
			tools = append(tools, s.Tool)
		}
	}
	if got := strings.Join(tools, ","); got != "read_file,edit_file,run_command,finish" {
		t.Errorf("tool steps = %s", got)
	}
	saved, err := h.db.Execution(t.Context(), ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Status != store.StatusSucceeded || saved.FinishedAt == nil || saved.Conversation == "" {
		t.Errorf("saved run = status %s finished %v", saved.Status, saved.FinishedAt)
	}
}

func TestSecretsNeverReachModelSurfaceOrSteps(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-value-xyz-123"
	model := openaitest.NewServer(t,
		openaitest.Tools(call("run_command", `{"command":"echo token=$API_TOKEN; printf %s \"$API_TOKEN\" | base64"}`)),
		openaitest.Tools(call("finish", `{"summary":"printed it"}`)),
	)
	model.ForbidSubstrings(secret)
	h := newHarness(t, model)
	if err := h.db.SetSecret(t.Context(), h.project.ID, "API_TOKEN", []byte(secret), "test"); err != nil {
		t.Fatal(err)
	}
	ex := h.start("print the token")
	if o := h.outcome(ex.ID); o.Status != store.StatusSucceeded {
		t.Fatalf("outcome = %+v", o)
	}
	if txt := h.surface.Text(ex.ID); strings.Contains(txt, secret) || !strings.Contains(txt, "[REDACTED:API_TOKEN]") {
		t.Errorf("surface text leaks or lacks redaction marker:\n%s", txt)
	}
	for _, s := range h.steps(ex.ID) {
		if strings.Contains(s.Output+s.Arguments, secret) {
			t.Errorf("step %d stores the secret", s.Ordinal)
		}
	}
	saved, _ := h.db.Execution(t.Context(), ex.ID)
	if strings.Contains(saved.Conversation, secret) {
		t.Error("saved conversation holds the secret")
	}
}

func TestConfirmationApproveDenyExpire(t *testing.T) {
	t.Parallel()
	t.Run("approve", func(t *testing.T) {
		t.Parallel()
		model := openaitest.NewServer(t,
			openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
			openaitest.Tools(call("finish", `{"summary":"deleted"}`)),
		)
		h := newHarness(t, model)
		ex := h.start("delete the readme")
		c := h.confirmation(ex.ID)
		if c.Tool != "delete_file" || !strings.Contains(c.Action, "README.md") {
			t.Fatalf("confirmation = %+v", c)
		}
		// A stranger may not decide; the requester may.
		_, err := h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U999"}})
		errIs(t, err, engine.ErrNotAllowed)
		if _, err := h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U1"}}); err != nil {
			t.Fatal(err)
		}
		_, err = h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: false, By: engine.Principal{ID: "slack:U1"}})
		errIs(t, err, engine.ErrAlreadyDecided)
		if o := h.outcome(ex.ID); o.Status != store.StatusSucceeded {
			t.Fatalf("outcome = %+v", o)
		}
		// The file is gone: the model got the tool's success.
		msgs := model.Requests()[1].Decoded.Messages
		if res := msgs[len(msgs)-1].Content; strings.HasPrefix(res, "error") {
			t.Errorf("approved delete failed: %s", res)
		}
	})
	t.Run("deny", func(t *testing.T) {
		t.Parallel()
		model := openaitest.NewServer(t,
			openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
			openaitest.Tools(call("finish", `{"summary":"could not delete"}`)),
		)
		h := newHarness(t, model)
		ex := h.start("delete the readme")
		c := h.confirmation(ex.ID)
		if _, err := h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: false, By: engine.Principal{ID: "slack:U1"}}); err != nil {
			t.Fatal(err)
		}
		h.outcome(ex.ID)
		msgs := model.Requests()[1].Decoded.Messages
		if res := msgs[len(msgs)-1].Content; !strings.Contains(res, "denied") {
			t.Errorf("model was not told of the denial: %q", res)
		}
		sb := h.ws.Sandbox(ex.ID)
		_ = sb // closed by now; the deny path never ran the tool, checked via the step log:
		for _, s := range h.steps(ex.ID) {
			if s.Kind == store.StepTool && s.Tool == "delete_file" && !s.IsError {
				t.Errorf("denied delete ran: %+v", s)
			}
		}
	})
	t.Run("expire", func(t *testing.T) {
		t.Parallel()
		model := openaitest.NewServer(t,
			openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
			openaitest.Tools(call("finish", `{"summary":"nobody answered"}`)),
		)
		h := newHarness(t, model, func(_ *engine.Config, p *store.Project) { p.Governance.ConfirmationTTLS = 1 })
		ex := h.start("delete the readme")
		c := h.confirmation(ex.ID)
		h.outcome(ex.ID)
		got, err := h.db.Confirmation(t.Context(), c.ID)
		if err != nil || got.Status != store.ConfirmExpired {
			t.Fatalf("confirmation after expiry = %+v, %v", got, err)
		}
		msgs := model.Requests()[1].Decoded.Messages
		if res := msgs[len(msgs)-1].Content; !strings.Contains(res, "expired") {
			t.Errorf("model was not told of the expiry: %q", res)
		}
		_, err = h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U1"}})
		errIs(t, err, engine.ErrAlreadyDecided)
	})
}

func TestApproverRoleMayDecide(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("finish", `{"summary":"ok"}`)),
	)
	h := newHarness(t, model)
	approver, err := h.db.UpsertUser(t.Context(), "ann@example.com", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	member, err := h.db.UpsertUser(t.Context(), "bob@example.com", "Bob")
	if err != nil {
		t.Fatal(err)
	}
	must(t, h.db.SetMember(t.Context(), h.project.ID, approver.ID, store.RoleApprover))
	must(t, h.db.SetMember(t.Context(), h.project.ID, member.ID, store.RoleMember))
	ex := h.start("delete")
	c := h.confirmation(ex.ID)
	_, err = h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U2", UserID: member.ID}})
	errIs(t, err, engine.ErrNotAllowed)
	if _, err := h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U3", UserID: approver.ID}}); err != nil {
		t.Fatal(err)
	}
	if o := h.outcome(ex.ID); o.Status != store.StatusSucceeded {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestLowConfidenceBecomesConfirmation(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("write_file", `{"path":"notes.txt","content":"x","confidence":0.2,"reason":"not sure the file belongs here"}`)),
		openaitest.Tools(call("finish", `{"summary":"ok"}`)),
	)
	h := newHarness(t, model)
	ex := h.start("write notes")
	c := h.confirmation(ex.ID)
	if c.Kind != store.ConfirmKindUncertainty || !strings.Contains(c.Reason, "not sure the file belongs here") || !strings.Contains(c.Reason, "20%") {
		t.Fatalf("confirmation = %+v", c)
	}
	must2(t)(h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U1"}}))
	h.outcome(ex.ID)
}

func TestStepLimitPausesAndExtends(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("list_files", `{"path":""}`)),
		openaitest.Tools(call("read_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("finish", `{"summary":"done after extension"}`)),
	)
	h := newHarness(t, model, func(_ *engine.Config, p *store.Project) { p.Governance.MaxSteps = 2 })
	ex := h.start("look around")
	c := h.confirmation(ex.ID)
	if c.Kind != store.ConfirmKindLimit || !strings.Contains(c.Reason, "2 steps") {
		t.Fatalf("confirmation = %+v", c)
	}
	must2(t)(h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U1"}}))
	if o := h.outcome(ex.ID); o.Status != store.StatusSucceeded || o.Summary != "done after extension" {
		t.Fatalf("outcome = %+v", o)
	}
}

// A run started with its own limits (hero run --max-steps) uses them over
// the project's, and keeps them in the database for a resumed run.
func TestRunLimitsOverrideTheProjects(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("list_files", `{"path":""}`)),
		openaitest.Tools(call("finish", `{"summary":"not reached"}`)),
	)
	h := newHarness(t, model, func(_ *engine.Config, p *store.Project) { p.Governance.MaxSteps = 40 })
	ex, err := h.eng.Start(h.ctx, engine.StartRequest{Project: h.project, Task: "look", Surface: "slack", ThreadRef: "C1/1.0", By: requester,
		Limits: engine.RunLimits{MaxSteps: 1, BudgetUSD: 0.25, WallClock: 90 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	c := h.confirmation(ex.ID)
	if c.Kind != store.ConfirmKindLimit || !strings.Contains(c.Reason, "1 steps") {
		t.Fatalf("confirmation = %+v", c)
	}
	stored, err := h.db.Execution(t.Context(), ex.ID)
	if err != nil || stored.LimitSteps != 1 || stored.LimitBudgetUSD != 0.25 || stored.LimitWallS != 90 {
		t.Fatalf("stored limits = %+v, %v", stored, err)
	}
	must2(t)(h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: false, By: engine.Principal{ID: "slack:U1"}}))
	if o := h.outcome(ex.ID); o.Status != store.StatusCancelled || !strings.Contains(o.Summary, "steps limit") {
		t.Fatalf("outcome = %+v", o)
	}
	if _, err := h.eng.Start(h.ctx, engine.StartRequest{Project: h.project, Task: "x", Surface: "slack", By: requester, Limits: engine.RunLimits{MaxSteps: -1}}); err == nil || !strings.Contains(err.Error(), "limits must be positive") {
		t.Fatalf("negative limit: %v", err)
	}
}

func TestBudgetLimitDeniedStopsRun(t *testing.T) {
	t.Parallel()
	expensive := openaitest.Tools(call("list_files", `{"path":""}`))
	expensive.PromptTokens, expensive.CompletionTokens = 1_000_000, 1_000_000 // $0.75 on gpt-4o-mini
	model := openaitest.NewServer(t, expensive)
	h := newHarness(t, model, func(_ *engine.Config, p *store.Project) { p.Governance.BudgetPerRunUSD = 0.5 })
	ex := h.start("spend")
	c := h.confirmation(ex.ID)
	if c.Kind != store.ConfirmKindLimit || c.Tool != "budget" {
		t.Fatalf("confirmation = %+v", c)
	}
	must2(t)(h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: false, By: engine.Principal{ID: "slack:U1"}}))
	o := h.outcome(ex.ID)
	if o.Status != store.StatusCancelled || !strings.Contains(o.Summary, "budget limit") || o.CostUSD < 0.74 {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestUnknownModelIsCountedInTokens(t *testing.T) {
	t.Parallel()
	turn := openaitest.Text("nothing to do")
	turn.PromptTokens, turn.CompletionTokens = 10, 5
	model := openaitest.NewServer(t, turn)
	h := newHarness(t, model, func(c *engine.Config, _ *store.Project) { c.ModelName = "my-local-llama" })
	ex := h.start("hello")
	o := h.outcome(ex.ID)
	if o.Status != store.StatusSucceeded || o.CostKnown || o.TokensIn != 10 || o.TokensOut != 5 || o.Summary != "nothing to do" {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestCancelKillsRunningCommand(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t, openaitest.Tools(call("run_command", `{"command":"echo started; sleep 60","timeout_s":120}`)))
	h := newHarness(t, model)
	ex := h.start("wait a long time")
	enginetest.Eventually(t, "the command to start", func() bool { return strings.Contains(h.surface.Text(ex.ID), "started") })
	err := h.eng.Cancel(t.Context(), ex.ID, engine.Principal{ID: "slack:U999"})
	errIs(t, err, engine.ErrNotAllowed)
	begin := time.Now()
	must(t, h.eng.Cancel(t.Context(), ex.ID, engine.Principal{ID: "slack:U1"}))
	o := h.outcome(ex.ID)
	if o.Status != store.StatusCancelled || time.Since(begin) > 10*time.Second {
		t.Fatalf("outcome = %+v after %s", o, time.Since(begin))
	}
	err = h.eng.Cancel(t.Context(), ex.ID, engine.Principal{ID: "slack:U1"})
	errIs(t, err, engine.ErrFinished)
}

func TestSteeringIsSeenByTheModel(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	model := openaitest.NewServer(t,
		openaitest.Tools(call("run_command", `{"command":"cat /repo/.hold 2>/dev/null; echo ok"}`)),
		openaitest.Tools(call("finish", `{"summary":"steered"}`)),
	)
	h := newHarness(t, model)
	h.surface.setOnOutput(func() {
		select {
		case <-started:
		default:
			close(started)
			<-release
		}
	})
	ex := h.start("do it")
	<-started
	must(t, h.eng.Steer(t.Context(), ex.ID, engine.Principal{ID: "slack:U1"}, "use tabs, not spaces"))
	close(release)
	h.outcome(ex.ID)
	second := model.Requests()[1].Decoded.Messages
	if m := second[len(second)-1]; m.Role != openai.ChatMessageRoleUser || !strings.Contains(m.Content, "use tabs, not spaces") {
		t.Fatalf("last message before the second call = %+v", m)
	}
}

func TestBadToolCallsGoBackToTheModel(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("read_file", `{"path":`)),
		openaitest.Tools(call("read_file", `{"path":"../../etc/passwd"}`)),
		openaitest.Tools(call("read_file", `{"file":"README.md"}`)),
		openaitest.Tools(call("no_such_tool", `{}`)),
		openaitest.Tools(call("finish", `{"summary":"gave up"}`)),
	)
	h := newHarness(t, model)
	ex := h.start("read things")
	if o := h.outcome(ex.ID); o.Status != store.StatusSucceeded {
		t.Fatalf("outcome = %+v", o)
	}
	reqs := model.Requests()
	want := []string{"not valid JSON", "inside the workspace", "file", "unknown tool"}
	for i, w := range want {
		msgs := reqs[i+1].Decoded.Messages
		res := msgs[len(msgs)-1].Content
		if !strings.HasPrefix(res, "error") || !strings.Contains(res, w) {
			t.Errorf("call %d result = %q, want an error mentioning %q", i+1, res, w)
		}
	}
}

func TestModelRejectsKeyFailsClearly(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t, openaitest.Error(401))
	h := newHarness(t, model)
	ex := h.start("anything")
	o := h.outcome(ex.ID)
	if o.Status != store.StatusFailed || !strings.Contains(o.Error, "OPENAI_API_KEY") {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestSandboxFailureFailsRunClearly(t *testing.T) {
	t.Parallel()
	crashed := make(chan struct{})
	model := openaitest.NewServer(t, openaitest.Turn{
		ToolCalls: []openaitest.ToolCall{call("run_command", `{"command":"true"}`)},
		Check: func(openai.ChatCompletionRequest) error {
			<-crashed
			return nil
		},
	})
	h := newHarness(t, model)
	h.surface.setOnStarted(func(id string) {
		// Kill the sandbox under the run, as a crash would.
		enginetest.Eventually(t, "sandbox", func() bool { return h.ws.Sandbox(id) != nil })
		_ = h.ws.Sandbox(id).Close(context.Background())
		close(crashed)
	})
	ex := h.start("run")
	o := h.outcome(ex.ID)
	if o.Status != store.StatusFailed || !strings.Contains(o.Error, "sandbox") {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestRestartResumesWaitingRunAndOldButtonStillWorks(t *testing.T) {
	t.Parallel()
	db, p := sharedProject(t)
	cfg := engine.Config{ModelName: "gpt-4o-mini", PollInterval: 20 * time.Millisecond, LeaseTTL: 300 * time.Millisecond}

	model1 := openaitest.NewServer(t, openaitest.Tools(call("delete_file", `{"path":"README.md"}`)))
	h1 := startHarness(t, db, p, model1, withOwner(cfg, "replica-a"))
	ex := h1.start("delete the readme")
	c := h1.confirmation(ex.ID)
	// The process stops while the run waits for a person.
	h1.cancel()
	h1.eng.Wait()
	saved, _ := db.Execution(t.Context(), ex.ID)
	if store.Final(saved.Status) {
		t.Fatalf("stopping the server ended the run as %s; it must be left to resume", saved.Status)
	}

	model2 := openaitest.NewServer(t, openaitest.Tools(call("finish", `{"summary":"resumed and done"}`)))
	h2 := startHarness(t, db, p, model2, withOwner(cfg, "replica-b"))
	enginetest.Eventually(t, "the old lease to lapse", func() bool { return time.Now().After(saved.LeaseUntil) })
	resumed, closed, err := h2.eng.Resume(h2.ctx)
	if err != nil || resumed != 1 || closed != 0 {
		t.Fatalf("resume = %d, %d, %v", resumed, closed, err)
	}
	// The button on the old message still decides the same confirmation.
	enginetest.Eventually(t, "the resumed run to wait", func() bool {
		cur, _ := db.Execution(t.Context(), ex.ID)
		return cur.Status == store.StatusWaiting
	})
	if _, err := h2.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U1"}}); err != nil {
		t.Fatal(err)
	}
	o := h2.outcome(ex.ID)
	if o.Status != store.StatusSucceeded || o.Summary != "resumed and done" {
		t.Fatalf("outcome = %+v", o)
	}
	// The model was told the workspace was re-created.
	msgs := model2.Requests()[0].Decoded.Messages
	var told bool
	for _, m := range msgs {
		told = told || strings.Contains(m.Content, "restarted")
	}
	if !told {
		t.Error("the resumed model was not told about the restart")
	}
}

func TestRestartClosesTerminalRunAsInterrupted(t *testing.T) {
	t.Parallel()
	db, p := sharedProject(t)
	ex := &store.Execution{ProjectID: p.ID, Status: store.StatusRunning, Surface: "terminal", Requester: "local:me", Task: "x", Model: "gpt-4o-mini", Owner: "dead", LeaseUntil: time.Now().Add(-time.Minute), CreatedAt: time.Now(), UpdatedAt: time.Now()}
	must(t, db.CreateExecution(t.Context(), ex))
	h := startHarness(t, db, p, openaitest.NewServer(t), engine.Config{ModelName: "gpt-4o-mini"})
	resumed, closed, err := h.eng.Resume(h.ctx)
	if err != nil || resumed != 0 || closed != 1 {
		t.Fatalf("resume = %d, %d, %v", resumed, closed, err)
	}
	got, _ := db.Execution(t.Context(), ex.ID)
	if got.Status != store.StatusInterrupted || !strings.Contains(got.Error, "start it again") {
		t.Fatalf("run = %s %q", got.Status, got.Error)
	}
}

func TestAskHumanWaitsForAnswer(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("ask_human", `{"question":"tabs or spaces?"}`)),
		openaitest.Tools(call("finish", `{"summary":"asked"}`)),
	)
	h := newHarness(t, model)
	ex := h.start("format")
	c := h.confirmation(ex.ID)
	if c.Kind != store.ConfirmKindQuestion || c.Action != "tabs or spaces?" {
		t.Fatalf("question = %+v", c)
	}
	must2(t)(h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U1"}, Answer: "tabs"}))
	h.outcome(ex.ID)
	msgs := model.Requests()[1].Decoded.Messages
	if res := msgs[len(msgs)-1].Content; !strings.Contains(res, "tabs") {
		t.Fatalf("answer not given to the model: %q", res)
	}
}

func withOwner(c engine.Config, owner string) engine.Config { c.Owner = owner; return c }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func must2(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestDrainFinishesRunningWorkAndRefusesNew(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServerFunc(t, func(r openaitest.Request) openaitest.Turn {
		if r.FirstUserMessage() == "sleep" && r.Round() == 0 {
			return openaitest.Tools(call("run_command", `{"command":"sleep 1; echo slept"}`))
		}
		return openaitest.Tools(call("finish", `{"summary":"drained"}`))
	})
	h := newHarness(t, model)
	ex := h.start("sleep")
	enginetest.Eventually(t, "the run to start", func() bool { return h.eng.Running() == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- h.eng.Drain(ctx) }()
	enginetest.Eventually(t, "draining to refuse new runs", func() bool {
		_, err := h.eng.Start(h.ctx, engine.StartRequest{Project: h.project, Task: "quick", Surface: "slack", By: requester})
		return errors.Is(err, engine.ErrDraining)
	})
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if o := h.outcome(ex.ID); o.Status != store.StatusSucceeded || o.Summary != "drained" {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestCancelFromAnotherReplicaStopsWaitingRun(t *testing.T) {
	t.Parallel()
	db, p := sharedProject(t)
	cfg := engine.Config{ModelName: "gpt-4o-mini", PollInterval: 20 * time.Millisecond}
	a := startHarness(t, db, p, openaitest.NewServer(t, openaitest.Tools(call("delete_file", `{"path":"README.md"}`))), withOwner(cfg, "replica-a"))
	b := startHarness(t, db, p, openaitest.NewServer(t), withOwner(cfg, "replica-b"))
	ex := a.start("delete")
	a.confirmation(ex.ID)
	must(t, b.eng.Cancel(t.Context(), ex.ID, engine.Principal{ID: "slack:U1"}))
	if o := a.outcome(ex.ID); o.Status != store.StatusCancelled {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestApprovalGivenWhileNobodyDrivesTheRunIsHonoured(t *testing.T) {
	t.Parallel()
	db, p := sharedProject(t)
	cfg := engine.Config{ModelName: "gpt-4o-mini", PollInterval: 20 * time.Millisecond, LeaseTTL: 300 * time.Millisecond}
	h1 := startHarness(t, db, p, openaitest.NewServer(t, openaitest.Tools(call("delete_file", `{"path":"README.md"}`))), withOwner(cfg, "replica-a"))
	ex := h1.start("delete the readme")
	c := h1.confirmation(ex.ID)
	h1.cancel()
	h1.eng.Wait()
	// The button is pressed while no process drives the run.
	model2 := openaitest.NewServer(t, openaitest.Tools(call("finish", `{"summary":"deleted after restart"}`)))
	h2 := startHarness(t, db, p, model2, withOwner(cfg, "replica-b"))
	if _, err := h2.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U1"}}); err != nil {
		t.Fatal(err)
	}
	saved, _ := db.Execution(t.Context(), ex.ID)
	enginetest.Eventually(t, "the old lease to lapse", func() bool { return time.Now().After(saved.LeaseUntil) })
	if _, _, err := h2.eng.Resume(h2.ctx); err != nil {
		t.Fatal(err)
	}
	o := h2.outcome(ex.ID)
	if o.Status != store.StatusSucceeded {
		t.Fatalf("outcome = %+v", o)
	}
	// The approved delete ran without asking again.
	if again := h2.surface.AskedIn(ex.ID); len(again) != 0 {
		t.Fatalf("asked again after the approval: %+v", again[0])
	}
	var deleted bool
	for _, s := range h2.steps(ex.ID) {
		deleted = deleted || (s.Kind == store.StepTool && s.Tool == "delete_file" && !s.IsError)
	}
	if !deleted {
		t.Fatal("the approved delete_file did not run")
	}
}

func TestSiteAdminMayDecide(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("finish", `{"summary":"ok"}`)),
	)
	h := newHarness(t, model)
	admin, err := h.db.UpsertUser(t.Context(), "root@example.com", "Root")
	if err != nil {
		t.Fatal(err)
	}
	must(t, h.db.SetUserAdmin(t.Context(), admin.ID, true))
	ex := h.start("delete")
	c := h.confirmation(ex.ID)
	if _, err := h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "web:root@example.com", UserID: admin.ID}}); err != nil {
		t.Fatal(err)
	}
	if o := h.outcome(ex.ID); o.Status != store.StatusSucceeded {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestResumeLeavesRunsThisReplicaDrives(t *testing.T) {
	t.Parallel()
	model := openaitest.NewServer(t,
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Tools(call("finish", `{"summary":"once"}`)),
	)
	h := newHarness(t, model, func(c *engine.Config, _ *store.Project) { c.LeaseTTL = 300 * time.Millisecond })
	ex := h.start("delete")
	c := h.confirmation(ex.ID)
	// Periodic takeover runs while the run waits: it must not start a
	// second driver, even after several lease periods.
	for range 3 {
		resumed, closed, err := h.eng.Resume(h.ctx)
		if err != nil || resumed != 0 || closed != 0 {
			t.Fatalf("resume = %d, %d, %v", resumed, closed, err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	must2(t)(h.eng.Decide(t.Context(), c.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:U1"}}))
	if o := h.outcome(ex.ID); o.Status != store.StatusSucceeded {
		t.Fatalf("outcome = %+v", o)
	}
	if n := len(model.Requests()); n != 2 {
		t.Fatalf("model calls = %d, want 2 (one driver)", n)
	}
}

func TestSteeringFromARedeliveredMessageCountsOnce(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	model := openaitest.NewServer(t,
		openaitest.Tools(call("run_command", `{"command":"echo ok"}`)),
		openaitest.Tools(call("finish", `{"summary":"steered"}`)),
	)
	h := newHarness(t, model)
	h.surface.setOnOutput(func() {
		select {
		case <-started:
		default:
			close(started)
			<-release
		}
	})
	ex := h.start("do it")
	<-started
	// The platform delivered the same reply twice (a retry after a crash).
	dctx := engine.WithDelivery(t.Context(), "slack", "Ev42")
	must(t, h.eng.Steer(dctx, ex.ID, engine.Principal{ID: "slack:U1"}, "use tabs"))
	must(t, h.eng.Steer(dctx, ex.ID, engine.Principal{ID: "slack:U1"}, "use tabs"))
	close(release)
	h.outcome(ex.ID)
	n := 0
	for _, m := range model.Requests()[1].Decoded.Messages {
		if strings.Contains(m.Content, "use tabs") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the steering message reached the model %d times, want 1", n)
	}
}
