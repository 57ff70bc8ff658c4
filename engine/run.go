package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
)

// errLeaseLost stops a run whose lease another replica has taken over.
var errLeaseLost = errors.New("another replica took over this run")

// run is the state of one execution while this replica drives it.
type run struct {
	e       *Engine
	ex      *store.Execution
	project *store.Project
	surface Surface
	limits  Limits
	policy  *Policy
	scrub   func(string) string
	// secrets: the project has secrets (the run's commands can read them).
	secrets bool
	sb      sandbox.Sandbox
	forge   Forge
	conv    []Message
	started time.Time
	// resumed asks for a note to the model before its next call: the
	// workspace was re-created after a restart.
	resumed bool
	prURL   string
}

// drive claims the execution and runs it to its end. It returns nil when
// another replica owns the run or when it is already over.
func (e *Engine) drive(ctx context.Context, id string, resumed bool) error {
	ex, err := e.cfg.Store.Execution(ctx, id)
	if err != nil {
		return fmt.Errorf("load run %s: %w", id, err)
	}
	if store.Final(ex.Status) {
		return nil
	}
	ok, err := e.cfg.Store.ClaimExecution(ctx, id, e.cfg.Owner, e.cfg.Now().Add(e.cfg.LeaseTTL))
	if err != nil {
		return fmt.Errorf("claim run %s: %w", id, err)
	}
	if !ok {
		return nil
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h := &runHandle{cancel: cancel, wake: make(chan struct{}, 1)}
	e.mu.Lock()
	if e.running[id] != nil {
		e.mu.Unlock()
		return nil // already driven here
	}
	e.running[id] = h
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, id)
		e.mu.Unlock()
	}()
	go e.keepLease(runCtx, id, cancel)

	r := &run{e: e, ex: ex, resumed: resumed, started: e.cfg.Now(), scrub: func(s string) string { return s }}
	r.surface, _ = e.surface(ex.Surface)
	if r.surface == nil {
		// Nobody can be told anything: close the run with the reason.
		return r.end(ctx, store.StatusFailed, "", fmt.Sprintf("surface %q is not configured on this server", ex.Surface))
	}
	return r.execute(ctx, runCtx)
}

// keepLease renews the run's lease until ctx ends; losing it stops the run.
func (e *Engine) keepLease(ctx context.Context, id string, cancel context.CancelCauseFunc) {
	t := time.NewTicker(e.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok, err := e.cfg.Store.ClaimExecution(ctx, id, e.cfg.Owner, e.cfg.Now().Add(e.cfg.LeaseTTL))
			if err != nil {
				e.cfg.Log.Warn("renew run lease", "execution", id, "err", err)
				continue
			}
			if !ok {
				cancel(errLeaseLost)
				return
			}
		}
	}
}

// execute prepares the run and drives its loop. serverCtx ends at
// shutdown; runCtx also ends on cancellation.
func (r *run) execute(serverCtx, runCtx context.Context) error {
	e := r.e
	p, err := e.cfg.Store.ProjectByID(runCtx, r.ex.ProjectID)
	if err != nil {
		return r.end(serverCtx, store.StatusFailed, "", fmt.Sprintf("load project: %v", err))
	}
	r.project = p
	r.limits = withRunLimits(limitsFor(p.Governance, e.cfg.Defaults), r.ex)
	if r.policy, err = NewPolicy(p.PolicyRules); err != nil {
		return r.end(serverCtx, store.StatusFailed, "", fmt.Sprintf("project %s has an invalid confirmation policy: %v", p.Name, err))
	}
	secrets, err := e.cfg.Store.SecretValues(runCtx, p.ID)
	if err != nil {
		return r.end(serverCtx, store.StatusFailed, "", fmt.Sprintf("load project secrets: %v", err))
	}
	r.scrub = e.cfg.Redact(secrets)
	r.secrets = len(secrets) > 0

	if err := r.loadConversation(); err != nil {
		return r.end(serverCtx, store.StatusFailed, "", err.Error())
	}
	now := e.cfg.Now()
	r.ex.Status = store.StatusRunning
	if r.ex.StartedAt == nil {
		r.ex.StartedAt = &now
	} else {
		// Wall-clock time counts from the first start, across restarts.
		r.started = *r.ex.StartedAt
	}
	if err := r.save(runCtx, "status", "started_at", "conversation"); err != nil {
		return err
	}
	greeting := fmt.Sprintf("On it: run %s in project %s.", r.ex.ID, p.Name)
	if r.resumed {
		greeting = fmt.Sprintf("Resuming run %s after a restart.", r.ex.ID)
	}
	r.update(runCtx, Event{Kind: EventStarted, Text: greeting, Resumed: r.resumed})

	r.sb, err = e.cfg.Workspaces.Open(runCtx, p, r.ex, secrets)
	if err != nil {
		if status, done := r.stopped(serverCtx, runCtx); done {
			return r.end(serverCtx, status, "", context.Cause(runCtx).Error())
		}
		return r.end(serverCtx, store.StatusFailed, "", "prepare the sandbox: "+r.scrub(err.Error()))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(serverCtx), 30*time.Second)
		defer cancel()
		if err := e.cfg.Workspaces.Close(cctx, r.ex, r.sb); err != nil {
			e.cfg.Log.Warn("close sandbox", "execution", r.ex.ID, "err", r.scrub(err.Error()))
		}
	}()
	if e.cfg.Forge != nil {
		if r.forge, err = e.cfg.Forge(runCtx, p, r.ex); err != nil {
			return r.end(serverCtx, store.StatusFailed, "", "connect to the repository host: "+r.scrub(err.Error()))
		}
	}

	status, summary, errText := r.loop(runCtx)
	if st, done := r.stopped(serverCtx, runCtx); done {
		if st == "" {
			return nil // shutting down: left for the next start to resume
		}
		return r.end(serverCtx, st, summary, context.Cause(runCtx).Error())
	}
	return r.end(serverCtx, status, summary, errText)
}

// stopped tells whether the run was stopped from outside and how it must
// be recorded: cancelled, or "" for a server shutdown (left to resume).
func (r *run) stopped(serverCtx, runCtx context.Context) (string, bool) {
	if runCtx.Err() == nil {
		return "", false
	}
	if serverCtx.Err() != nil || errors.Is(context.Cause(runCtx), errLeaseLost) {
		return "", true
	}
	return store.StatusCancelled, true
}

// loadConversation restores the persisted conversation or starts a new
// one from the task. A restored one is scrubbed again: it may be the one
// Start seeded from the raw task, and secrets may have been added since.
func (r *run) loadConversation() error {
	if r.ex.Conversation != "" {
		if err := json.Unmarshal([]byte(r.ex.Conversation), &r.conv); err != nil {
			return fmt.Errorf("the saved conversation of run %s is unreadable: %v", r.ex.ID, err)
		}
		for i := range r.conv {
			m := &r.conv[i]
			m.Content = r.scrub(m.Content)
			for j := range m.ToolCalls {
				m.ToolCalls[j].Arguments = scrubArguments(r.scrub, m.ToolCalls[j].Arguments)
			}
		}
		return nil
	}
	r.conv = firstConversation(r.scrub(r.ex.Task), false)
	return nil
}

// firstConversation is the conversation a run starts with.
func firstConversation(task string, untrusted bool) []Message {
	return []Message{
		{Role: RoleSystem, Content: systemPrompt},
		{Role: RoleUser, Content: task, Untrusted: untrusted},
	}
}

// exposure says what the run has been exposed to (see Exposure).
func (r *run) exposure() Exposure {
	x := Exposure{Secrets: r.secrets}
	for i := range r.conv {
		if r.conv[i].Untrusted {
			x.UntrustedText = true
			break
		}
	}
	return x
}

// scrubArguments scrubs a tool call's raw JSON arguments: every string in
// them (keys too) goes through scrub, so a secret the model writes into a
// comment, a pull request or a commit message is replaced before any tool
// sees it, and the saved conversation never holds it. Arguments without a
// secret are returned unchanged (byte for byte, so a confirmation bound to
// them still matches after a restart); malformed JSON is scrubbed as text.
func scrubArguments(scrub func(string) string, raw string) string {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return scrub(raw)
	}
	changed := false
	v = scrubValue(scrub, v, &changed)
	if !changed {
		return raw
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return scrub(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func scrubValue(scrub func(string) string, v any, changed *bool) any {
	switch t := v.(type) {
	case string:
		s := scrub(t)
		if s != t {
			*changed = true
		}
		return s
	case []any:
		for i := range t {
			t[i] = scrubValue(scrub, t[i], changed)
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			sk := scrub(k)
			if sk != k {
				*changed = true
			}
			out[sk] = scrubValue(scrub, e, changed)
		}
		return out
	}
	return v
}

// loop is the tool loop. It returns how the run ended.
func (r *run) loop(ctx context.Context) (status, summary, errText string) {
	for {
		if ctx.Err() != nil {
			return store.StatusCancelled, "", ""
		}
		// Answer tool calls the model made but that have no result yet
		// (after a restart, the last turn may be half done).
		if calls := pendingCalls(r.conv); len(calls) > 0 {
			for _, tc := range calls {
				out, fin, err := r.callTool(ctx, tc)
				if err != nil {
					return store.StatusFailed, "", err.Error()
				}
				r.conv = append(r.conv, Message{Role: RoleTool, ToolCallID: tc.ID, Name: tc.Name, Content: out, Untrusted: r.e.tools[tc.Name].Untrusted})
				if err := r.save(ctx, "conversation", "steps"); err != nil {
					return store.StatusFailed, "", err.Error()
				}
				if fin != nil {
					return fin.Status, fin.Summary, fin.Error
				}
			}
			continue
		}
		if cancelled, err := r.takeInputs(ctx); err != nil {
			return store.StatusFailed, "", err.Error()
		} else if cancelled {
			return store.StatusCancelled, "", ""
		}
		if fin := r.governance(ctx); fin != nil {
			return fin.Status, fin.Summary, fin.Error
		}
		if r.resumed {
			r.conv = append(r.conv, Message{Role: RoleUser, Content: "(hero restarted and re-created the workspace from the repository: changes made before the restart are gone. Check the workspace and redo them if they are still needed.)"})
			r.resumed = false
		}
		resp, err := r.callModel(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return store.StatusCancelled, "", ""
			}
			return store.StatusFailed, "", "the model failed: " + r.scrub(err.Error())
		}
		msg := resp.Message
		msg.Role = RoleAssistant
		msg.Content = r.scrub(msg.Content)
		for i := range msg.ToolCalls {
			msg.ToolCalls[i].Name = r.scrub(msg.ToolCalls[i].Name)
			msg.ToolCalls[i].Arguments = scrubArguments(r.scrub, msg.ToolCalls[i].Arguments)
		}
		r.conv = append(r.conv, msg)
		if err := r.save(ctx, "conversation", "tokens_in", "tokens_out", "cost_usd", "cost_known"); err != nil {
			return store.StatusFailed, "", err.Error()
		}
		if len(msg.ToolCalls) == 0 {
			// A plain answer ends the run: the model has nothing more to do.
			return store.StatusSucceeded, msg.Content, ""
		}
	}
}

// pendingCalls returns the last assistant message's tool calls that have
// no tool result after it.
func pendingCalls(conv []Message) []ToolCall {
	for i := len(conv) - 1; i >= 0; i-- {
		if conv[i].Role != RoleAssistant {
			continue
		}
		answered := map[string]bool{}
		for _, m := range conv[i+1:] {
			if m.Role == RoleTool {
				answered[m.ToolCallID] = true
			}
		}
		var out []ToolCall
		for _, tc := range conv[i].ToolCalls {
			if !answered[tc.ID] {
				out = append(out, tc)
			}
		}
		return out
	}
	return nil
}

// takeInputs hands people's messages to the model; it reports whether one
// of them was a cancellation.
func (r *run) takeInputs(ctx context.Context) (bool, error) {
	ins, err := r.e.cfg.Store.TakeInputs(ctx, r.ex.ID)
	if err != nil {
		return false, fmt.Errorf("read messages for the run: %w", err)
	}
	cancelled := false
	for _, in := range ins {
		if in.Body == cancelMarker {
			cancelled = true
			continue
		}
		body := r.scrub(in.Body)
		r.conv = append(r.conv, Message{Role: RoleUser, Content: fmt.Sprintf("Message from %s while you work: %s", in.Author, body)})
		r.step(ctx, &store.Step{Kind: store.StepMessage, Arguments: in.Author, Output: body})
	}
	return cancelled, nil
}

// governance pauses the run at a limit and asks whether to go on. It
// returns an outcome when the run must stop.
func (r *run) governance(ctx context.Context) *Outcome {
	for {
		spent, err := r.e.cfg.Store.ProjectSpendSince(ctx, r.ex.ProjectID, startOfDay(r.e.cfg.Now()))
		if err != nil {
			return &Outcome{Status: store.StatusFailed, Error: "read the project's spend: " + err.Error()}
		}
		others := spent - r.ex.CostUSD
		if others < 0 {
			others = 0
		}
		hit := checkLimits(r.ex, r.limits, others, r.e.cfg.Now().Sub(r.started))
		if hit == nil {
			return nil
		}
		r.step(ctx, &store.Step{Kind: store.StepLimit, Tool: hit.what, Output: hit.text})
		c, err := r.confirm(ctx, store.ConfirmKindLimit, hit.what, "Continue past the "+hit.what+" limit", "medium", hit.text)
		if err != nil {
			return &Outcome{Status: store.StatusFailed, Error: err.Error()}
		}
		if c.Status != store.ConfirmApproved {
			how := "denied by " + c.DecidedBy
			if c.Status == store.ConfirmExpired {
				how = "nobody answered before the confirmation expired"
			}
			return &Outcome{Status: store.StatusCancelled, Summary: fmt.Sprintf("Stopped at the %s limit (%s).", hit.what, how)}
		}
		extend(r.ex, r.limits, hit.what)
		if err := r.save(ctx, "extra_budget_usd", "extra_steps", "extra_wall_s"); err != nil {
			return &Outcome{Status: store.StatusFailed, Error: err.Error()}
		}
	}
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// callModel makes one model call and accounts for it.
func (r *run) callModel(ctx context.Context) (ModelResponse, error) {
	start := time.Now()
	resp, err := r.e.cfg.Model.Complete(ctx, ModelRequest{Model: r.ex.Model, Messages: r.conv, Tools: r.e.schemas})
	if err != nil {
		r.step(ctx, &store.Step{Kind: store.StepError, Tool: "model", Output: r.scrub(err.Error()), IsError: true, DurationMS: time.Since(start).Milliseconds()})
		return resp, err
	}
	cost, known := r.e.cfg.Prices.Cost(r.ex.Model, resp.Usage)
	r.ex.TokensIn += resp.Usage.PromptTokens
	r.ex.TokensOut += resp.Usage.CompletionTokens
	r.ex.CostUSD += cost
	r.ex.CostKnown = r.ex.CostKnown && known
	names := make([]string, 0, len(resp.Message.ToolCalls))
	for _, tc := range resp.Message.ToolCalls {
		names = append(names, r.e.shownName(tc.Name))
	}
	r.step(ctx, &store.Step{
		Kind: store.StepModel, Tool: strings.Join(names, ","), Output: truncate(r.scrub(resp.Message.Content), 4<<10),
		DurationMS: time.Since(start).Milliseconds(), TokensIn: resp.Usage.PromptTokens, TokensOut: resp.Usage.CompletionTokens, CostUSD: cost,
	})
	return resp, nil
}

// callTool runs one tool call through policy and confirmation. The string
// is the result shown to the model; a non-nil Outcome ends the run; an
// error is a failure of hero itself (database, broken sandbox).
func (r *run) callTool(ctx context.Context, tc ToolCall) (string, *Outcome, error) {
	start := time.Now()
	r.ex.Steps++
	st := &store.Step{Kind: store.StepTool, Tool: r.e.shownName(tc.Name), Arguments: truncate(r.scrub(tc.Arguments), 8<<10)}
	finishStep := func(out string, isErr bool) {
		st.Output, st.IsError, st.DurationMS = truncate(out, 8<<10), isErr, time.Since(start).Milliseconds()
		r.step(ctx, st)
	}
	modelErr := func(msg string) (string, *Outcome, error) {
		out := "error: " + msg
		finishStep(out, true)
		return out, nil, nil
	}

	tool, ok := r.e.tools[tc.Name]
	if !ok {
		return modelErr(fmt.Sprintf("unknown tool %q; the tools are: %s", r.scrub(tc.Name), strings.Join(r.e.toolNames(), ", ")))
	}
	if !json.Valid([]byte(tc.Arguments)) {
		return modelErr(fmt.Sprintf("the arguments of %s are not valid JSON; send one JSON object matching the tool's schema", tc.Name))
	}
	switch tc.Name {
	case toolFinish:
		summary, err := stringArg(tc.Arguments, "summary")
		if err != nil {
			return modelErr(err.Error())
		}
		summary = r.scrub(summary)
		finishStep(summary, false)
		return "finished", &Outcome{Status: store.StatusSucceeded, Summary: summary}, nil
	case toolAskHuman:
		q, err := stringArg(tc.Arguments, "question")
		if err != nil {
			return modelErr(err.Error())
		}
		c, err := r.confirm(ctx, store.ConfirmKindQuestion, toolAskHuman, r.scrub(q), "low", "")
		if err != nil {
			return "", nil, err
		}
		out := "The person did not answer before the question expired. Decide yourself, or finish and explain."
		if c.Status == store.ConfirmApproved || c.Answer != "" {
			out = "The person answered: " + r.scrub(c.Answer)
		} else if c.Status == store.ConfirmDenied {
			out = "The person declined to answer. Decide yourself, or finish and explain."
		}
		finishStep(out, false)
		return out, nil, nil
	}

	subject, action, err := tool.Subject(json.RawMessage(tc.Arguments))
	if err != nil {
		return modelErr(err.Error())
	}
	action = r.scrub(action)
	d := r.policy.DecideFor(tc.Name, subject, r.exposure())
	if d.Action == "deny" {
		return modelErr(fmt.Sprintf("%s is not allowed in this project (%s). Do not retry it; choose another way or finish.", action, d.Reason))
	}
	kind, why := store.ConfirmKindTool, d.Reason
	confidence, hasConfidence, reason := callMeta(tc.Arguments)
	if tool.Mutating && hasConfidence && confidence < r.limits.UncertaintyThreshold {
		kind = store.ConfirmKindUncertainty
		why = fmt.Sprintf("the agent is only %.0f%% sure: %s", confidence*100, r.scrub(reason))
		if d.Action != "confirm" {
			d.Risk = "medium"
		}
		d.Action = "confirm"
	} else if reason != "" && d.Action == "confirm" {
		why = d.Reason + "; the agent says: " + r.scrub(reason)
	}
	if d.Action == "confirm" {
		c, err := r.confirmCall(ctx, kind, tc, action, d.Risk, why)
		if err != nil {
			return "", nil, err
		}
		switch c.Status {
		case store.ConfirmApproved:
		case store.ConfirmDenied:
			return modelErr(fmt.Sprintf("%s denied: %s. Do not retry it; choose another way or finish.", c.DecidedBy, action))
		default:
			return modelErr(fmt.Sprintf("nobody approved %s before the confirmation expired. Do not retry it; finish and explain what is left to do.", action))
		}
	}

	tcx := &ToolContext{Sandbox: r.sb, Project: r.project, Execution: r.ex, Forge: r.forge, Output: r.outputStreamer(ctx)}
	out, err := tool.Run(ctx, tcx, json.RawMessage(tc.Arguments))
	if err != nil {
		if errors.Is(err, ErrSandboxBroken) {
			msg := r.scrub(err.Error())
			finishStep("error: "+msg, true)
			return "", nil, fmt.Errorf("the sandbox failed while running %s: %s; it has been discarded, start the run again", tc.Name, msg)
		}
		if ctx.Err() != nil {
			finishStep("stopped: "+context.Cause(ctx).Error(), true)
			return "", nil, context.Cause(ctx)
		}
		return modelErr(r.scrub(err.Error()))
	}
	out = truncate(r.scrub(out), r.e.cfg.MaxToolOutput)
	if tc.Name == "create_pull_request" {
		if u := urlPattern.FindString(out); u != "" {
			r.prURL = u
		}
	}
	finishStep(out, false)
	return out, nil, nil
}

var urlPattern = regexp.MustCompile(`https?://\S+`)

// shownName is a tool name as steps record it: the model names tools, so
// a name that is not a tool is shown as "unknown" rather than carried,
// markup and all, into every surface.
func (e *Engine) shownName(name string) string {
	if _, ok := e.tools[name]; ok {
		return name
	}
	return "unknown"
}

func (e *Engine) toolNames() []string {
	names := make([]string, 0, len(e.schemas))
	for _, s := range e.schemas {
		names = append(names, s.Name)
	}
	return names
}

// confirmCall asks about one exact tool call: the approval is bound to
// this call (its id, tool and arguments). After a restart the same call's
// confirmation is reused, so a button pressed on the old message still
// counts, even if it was pressed before the run came back.
func (r *run) confirmCall(ctx context.Context, kind string, tc ToolCall, action, risk, reason string) (*store.Confirmation, error) {
	hash := actionHash(tc.Name, tc.ID+"\x00"+tc.Arguments)
	existing, err := r.e.cfg.Store.ConfirmationsOf(ctx, r.ex.ID)
	if err != nil {
		return nil, fmt.Errorf("read the run's confirmations: %w", err)
	}
	for i := range existing {
		if existing[i].ActionHash == hash {
			return r.wait(ctx, &existing[i])
		}
	}
	return r.ask(ctx, kind, tc.Name, action, hash, risk, reason)
}

func (r *run) confirm(ctx context.Context, kind, tool, action, risk, reason string) (*store.Confirmation, error) {
	return r.ask(ctx, kind, tool, action, actionHash(tool, action), risk, reason)
}

func actionHash(tool, args string) string {
	h := sha256.Sum256([]byte(tool + "\x00" + args))
	return hex.EncodeToString(h[:16])
}

// ask records a confirmation, shows it on the surface and waits for it.
func (r *run) ask(ctx context.Context, kind, tool, action, hash, risk, reason string) (*store.Confirmation, error) {
	now := r.e.cfg.Now()
	c := &store.Confirmation{
		ExecutionID: r.ex.ID, ProjectID: r.ex.ProjectID, Kind: kind, Tool: tool,
		Action: action, ActionHash: hash, Risk: risk, Reason: reason,
		Status: store.ConfirmPending, ExpiresAt: now.Add(r.limits.ConfirmationTTL), CreatedAt: now,
	}
	if err := r.e.cfg.Store.CreateConfirmation(ctx, c); err != nil {
		return nil, fmt.Errorf("record confirmation: %w", err)
	}
	r.step(ctx, &store.Step{Kind: store.StepConfirmation, Tool: tool, Arguments: c.ID, Output: "asked: " + action})
	ref, err := r.surface.Ask(ctx, r.ex, c)
	if err != nil {
		r.e.cfg.Log.Warn("show confirmation", "execution", r.ex.ID, "confirmation", c.ID, "err", err)
	} else if ref != "" {
		c.SurfaceRef = ref
		if err := r.e.cfg.Store.SetConfirmationRef(ctx, c.ID, ref); err != nil {
			r.e.cfg.Log.Warn("save confirmation message reference", "confirmation", c.ID, "err", err)
		}
	}
	r.observe(Event{Kind: EventAsked, Confirmation: c})
	return r.wait(ctx, c)
}

// wait blocks until c is decided or expires, or ctx ends.
func (r *run) wait(ctx context.Context, c *store.Confirmation) (*store.Confirmation, error) {
	e := r.e
	ch := make(chan struct{}, 1)
	e.mu.Lock()
	e.waiters[c.ID] = ch
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.waiters, c.ID)
		e.mu.Unlock()
	}()
	r.ex.Status = store.StatusWaiting
	if err := r.save(ctx, "status"); err != nil {
		return nil, err
	}
	defer func() {
		r.ex.Status = store.StatusRunning
		_ = r.save(ctx, "status")
	}()
	poll := time.NewTicker(e.cfg.PollInterval)
	defer poll.Stop()
	for {
		cur, err := e.cfg.Store.Confirmation(ctx, c.ID)
		if err != nil {
			return nil, fmt.Errorf("read confirmation %s: %w", c.ID, err)
		}
		if cur.Status == store.ConfirmPending && !e.cfg.Now().Before(cur.ExpiresAt) {
			e.expire(ctx, cur)
			continue
		}
		if cur.Status != store.ConfirmPending {
			r.step(ctx, &store.Step{Kind: store.StepConfirmation, Tool: cur.Tool, Arguments: cur.ID, Output: decisionText(cur)})
			r.update(ctx, Event{Kind: EventDecided, Confirmation: cur})
			return cur, nil
		}
		expiry := time.NewTimer(cur.ExpiresAt.Sub(e.cfg.Now()))
		select {
		case <-ctx.Done():
			expiry.Stop()
			return nil, context.Cause(ctx)
		case <-ch:
		case <-poll.C:
		case <-expiry.C:
		}
		expiry.Stop()
	}
}

func decisionText(c *store.Confirmation) string {
	switch c.Status {
	case store.ConfirmApproved:
		return "approved by " + c.DecidedBy
	case store.ConfirmDenied:
		return "denied by " + c.DecidedBy
	}
	return c.Status
}

// outputStreamer forwards live command output to the surface line by
// line, so a secret split across two chunks is still scrubbed whole.
func (r *run) outputStreamer(ctx context.Context) func(string) {
	var mu sync.Mutex
	var partial strings.Builder
	return func(chunk string) {
		mu.Lock()
		defer mu.Unlock()
		partial.WriteString(chunk)
		s := partial.String()
		i := strings.LastIndexByte(s, '\n')
		if i < 0 {
			if partial.Len() < 64<<10 {
				return
			}
			i = len(s) - 1
		}
		partial.Reset()
		partial.WriteString(s[i+1:])
		r.update(ctx, Event{Kind: EventOutput, Text: r.scrub(s[:i+1])})
	}
}

// step persists a step and shows it. A failure to persist is logged: the
// run itself must not die of a log write.
func (r *run) step(ctx context.Context, s *store.Step) {
	s.ExecutionID = r.ex.ID
	s.CreatedAt = r.e.cfg.Now()
	if err := r.e.cfg.Store.AppendStep(context.WithoutCancel(ctx), s); err != nil {
		r.e.cfg.Log.Error("record step", "execution", r.ex.ID, "err", err)
	}
	r.update(ctx, Event{Kind: EventStep, Step: s})
}

func (r *run) update(ctx context.Context, ev Event) {
	r.observe(ev)
	if err := r.surface.Update(ctx, r.ex, ev); err != nil {
		r.e.cfg.Log.Warn("update surface", "execution", r.ex.ID, "surface", r.surface.Name(), "err", r.scrub(err.Error()))
	}
}

// observe shows ev to the engine's observer (metrics), if any.
func (r *run) observe(ev Event) {
	if r.e.cfg.Observe != nil {
		r.e.cfg.Observe(r.ex, ev)
	}
}

// save persists the listed columns of the execution (the conversation is
// re-encoded when listed).
func (r *run) save(ctx context.Context, columns ...string) error {
	for _, c := range columns {
		if c == "conversation" {
			b, err := json.Marshal(r.conv)
			if err != nil {
				return fmt.Errorf("encode conversation: %w", err)
			}
			r.ex.Conversation = string(b)
		}
	}
	r.ex.UpdatedAt = r.e.cfg.Now()
	if err := r.e.cfg.Store.UpdateExecution(context.WithoutCancel(ctx), r.ex, columns...); err != nil {
		return fmt.Errorf("save run %s: %w", r.ex.ID, err)
	}
	return nil
}

// end records the final state and tells the surface.
func (r *run) end(ctx context.Context, status, summary, errText string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := r.e.cfg.Now()
	r.ex.Status, r.ex.Summary, r.ex.Error, r.ex.FinishedAt = status, summary, r.scrub(errText), &now
	r.ex.Owner = ""
	err := r.save(ctx, "status", "summary", "error", "finished_at", "owner", "steps", "tokens_in", "tokens_out", "cost_usd", "cost_known")
	var diffStat string
	if ds, ok := r.e.cfg.Workspaces.(DiffStater); ok && r.sb != nil {
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		if s, derr := ds.DiffStat(dctx, r.ex, r.sb); derr != nil {
			r.e.cfg.Log.Warn("summarise the run's changes", "execution", r.ex.ID, "err", r.scrub(derr.Error()))
		} else {
			diffStat = r.scrub(s)
		}
		dcancel()
	}
	if r.surface != nil {
		r.update(ctx, Event{Kind: EventFinished, Outcome: &Outcome{
			Status: status, Summary: summary, Error: r.ex.Error, Steps: r.ex.Steps,
			TokensIn: r.ex.TokensIn, TokensOut: r.ex.TokensOut, CostUSD: r.ex.CostUSD, CostKnown: r.ex.CostKnown,
			PullRequestURL: r.prURL, DiffStat: diffStat,
		}})
	}
	return err
}

// truncate keeps the head and tail of s within max bytes, with a visible
// marker of what was cut.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	head, tail := max*3/4, len(s)-(max-max*3/4)
	// Cut on rune boundaries so the kept text stays valid UTF-8.
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return s[:head] + fmt.Sprintf("\n[… %d bytes omitted …]\n", tail-head) + s[tail:]
}
