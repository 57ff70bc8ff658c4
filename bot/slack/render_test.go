package slack

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// TestRenderGolden pins the Block Kit hero sends. UPDATE_GOLDEN=1
// rewrites the files in testdata/.
func TestRenderGolden(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	decided := now.Add(-time.Minute)
	push := store.Confirmation{ID: "c4k9x2", Kind: store.ConfirmKindTool, Tool: "git_push", Action: "git push origin hero/r7f3a2c9",
		Risk: "high", Reason: "publish the fix", Status: store.ConfirmPending, ExpiresAt: now.Add(time.Hour)}
	approved := push
	approved.Status, approved.DecidedBy, approved.DecidedAt = store.ConfirmApproved, "slack:T1/U2", &decided
	expired := push
	expired.Status, expired.Risk = store.ConfirmExpired, "medium"
	question := store.Confirmation{ID: "c7q", Kind: store.ConfirmKindQuestion, Tool: "ask_human", Action: "Which file should I fix?",
		Risk: "low", Status: store.ConfirmPending, ExpiresAt: now.Add(time.Hour)}

	ex := &store.Execution{ID: "r7f3a2c9", Status: store.StatusRunning, TokensIn: 4000, TokensOut: 512, CostUSD: 0.0123, CostKnown: true}
	p := progressOf(ex,
		engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepTool, Tool: "read_file", Arguments: `{"path":"calc.go"}`}},
		engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepTool, Tool: "run_command", Arguments: `{"command":"go test ./..."}`, IsError: true}},
		engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepModel, Tool: "run_command"}},
		engine.Event{Kind: engine.EventOutput, Text: "ok  \tcalc\t0.01s\n"})
	finText, finBlocks := finalMessage(ex.ID, &engine.Outcome{Status: store.StatusSucceeded, Summary: "Add adds now.", Steps: 7,
		TokensIn: 4000, TokensOut: 512, CostUSD: 0.0123, CostKnown: true, PullRequestURL: "https://github.com/acme/web/pull/42"})

	cases := map[string]any{
		"progress":              blocksOf(progressMessage(p)),
		"confirmation.pending":  blocksOf(confirmationMessage(&push, now)),
		"confirmation.approved": blocksOf(confirmationMessage(&approved, now)),
		"confirmation.expired":  blocksOf(confirmationMessage(&expired, now)),
		"confirmation.question": blocksOf(confirmationMessage(&question, now)),
		"final":                 map[string]any{"text": finText, "blocks": finBlocks},
	}
	for name, got := range cases {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "render."+name+".golden.json")
		if os.Getenv("UPDATE_GOLDEN") != "" {
			if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run with UPDATE_GOLDEN=1 to create it)", name, err)
		}
		if string(want) != string(b)+"\n" {
			t.Errorf("%s differs from %s (UPDATE_GOLDEN=1 to accept):\n%s", name, path, b)
		}
	}
}

// progressOf is the progress model of ex after events.
func progressOf(ex *store.Execution, events ...engine.Event) *bot.Progress {
	p := bot.NewProgress(ex)
	for _, ev := range events {
		p.Apply(ex, ev)
	}
	return p
}

func blocksOf(text string, blocks []slack.Block) map[string]any {
	return map[string]any{"text": text, "blocks": blocks}
}

// TestManifestMatchesDefaults keeps manifest.yaml's scopes and routes in
// step with the code.
func TestManifestMatchesDefaults(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := string(b)
	// New fills the default scopes; read them back through a real adapter.
	e := newEnv(t, nil)
	for _, s := range e.a.cfg.Scopes {
		if !strings.Contains(m, "      - "+s+"\n") {
			t.Errorf("manifest.yaml lacks the scope %s", s)
		}
	}
	for _, route := range []string{"/slack/commands", "/slack/events", "/slack/interactions", "/slack/oauth/callback"} {
		if !strings.Contains(m, "https://HERO"+route) {
			t.Errorf("manifest.yaml lacks %s", route)
		}
	}
}

// Text the model wrote cannot notify a channel, mention people or disguise
// a link: Slack's <, > and & are escaped wherever it is shown.
func TestModelTextIsInertInSlack(t *testing.T) {
	t.Parallel()
	const payload = "<!channel> see <https://evil.example/?d=6869|github.com/acme/web> & ask <@U0ADMIN> <!here>"
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ex := &store.Execution{ID: "r1"}
	c := store.Confirmation{ID: "c1", Kind: store.ConfirmKindTool, Tool: "comment", Action: "post a comment: " + payload,
		Risk: "high", Reason: payload, Status: store.ConfirmPending, ExpiresAt: now.Add(time.Hour)}
	q := store.Confirmation{ID: "c2", Kind: store.ConfirmKindQuestion, Tool: "ask_human", Action: payload, Status: store.ConfirmApproved,
		DecidedBy: "slack:T1/U2", DecidedAt: &now, Answer: payload}
	ex.Status = store.StatusRunning
	p := progressOf(ex,
		engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepTool, Tool: "comment", Arguments: `{"title":"` + strings.ReplaceAll(payload, `"`, `\"`) + `"}`}},
		engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepError, Output: payload}},
		engine.Event{Kind: engine.EventOutput, Text: payload})
	finText, finBlocks := finalMessage(ex.ID, &engine.Outcome{Status: store.StatusFailed, Summary: payload, Error: payload, DiffStat: payload})
	rendered := []any{blocksOf(confirmationMessage(&c, now)), blocksOf(confirmationMessage(&q, now)), blocksOf(progressMessage(p)), finText, finBlocks}
	for i, r := range rendered {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		// JSON escapes < and > itself; undo that to see what Slack reads.
		got := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
		for _, live := range []string{"<!channel>", "<!here>", "<@U0ADMIN>", "<https://evil"} {
			if strings.Contains(got, live) {
				t.Errorf("rendering %d keeps %s live: %s", i, live, got)
			}
		}
		if !strings.Contains(got, "&lt;!channel&gt;") {
			t.Errorf("rendering %d does not show the text as typed: %s", i, got)
		}
	}
}
