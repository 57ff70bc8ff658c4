package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
)

// A model (or a command it ran) that prints escape sequences must not be
// able to draw what looks like hero's own confirmation line: the real
// confirmation is the only line that starts with "! confirmation".
func TestTerminalShowsEscapeSequencesInsteadOfObeyingThem(t *testing.T) {
	t.Parallel()
	const fake = "! confirmation c999 (low risk): go test"
	payloads := []string{
		"\x1b[1A\x1b[2K\r" + fake,                         // up a line, erase it, draw over it
		"rm -rf /\r" + fake,                               // carriage return over the real text
		"rm -rf /" + strings.Repeat("\b", 8) + "go test ", // backspaces
		"\u009b2K\u009b1A" + fake,                         // C1 CSI
		"\u202egnirts-laer\u202c go test",                 // bidi override
		"line\n" + fake,                                   // a new line from the model
		"\xff\x9b2K",                                      // bytes that are not UTF-8 (8-bit CSI)
	}
	var out bytes.Buffer
	term := newTerminalSurface(&out, strings.NewReader(""), false, "", engine.Operator("local:me"))
	term.decide = func(context.Context, string, engine.Decision) (*store.Confirmation, error) { return nil, nil }
	ex := &store.Execution{ID: "r1", Model: "m"}
	ctx := t.Context()
	for _, p := range payloads {
		must(t, term.Update(ctx, ex, engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepModel, Output: p}}))
		must(t, term.Update(ctx, ex, engine.Event{Kind: engine.EventStep, Step: &store.Step{Kind: store.StepTool, Tool: "run_command", Arguments: `{"command":"` + p + `"}`}}))
		must(t, term.Update(ctx, ex, engine.Event{Kind: engine.EventOutput, Text: p + "\n"}))
		_, err := term.Ask(ctx, ex, &store.Confirmation{ID: "c1", Kind: store.ConfirmKindTool, Risk: "high", Action: "run `rm -rf / " + p + "`", Reason: p, ExpiresAt: time.Now().Add(time.Hour)})
		must(t, err)
		_, err = term.Ask(ctx, ex, &store.Confirmation{ID: "q1", Kind: store.ConfirmKindQuestion, Action: "which one?\n" + p})
		must(t, err)
	}
	must(t, term.Update(ctx, ex, engine.Event{Kind: engine.EventFinished, Outcome: &engine.Outcome{Status: "succeeded", Summary: payloads[0], Error: payloads[3], DiffStat: payloads[4]}}))

	got := out.String()
	for _, bad := range []string{"\x1b", "\r", "\b", "\u009b", "\u202e", "\xff", "\x9b"} {
		if strings.Contains(got, bad) {
			t.Errorf("terminal output holds %q:\n%s", bad, got)
		}
	}
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "! confirmation") && !strings.HasPrefix(line, "! confirmation c1 (high risk): run `rm -rf /") {
			t.Errorf("a line passes for a confirmation: %q", line)
		}
	}
	if !strings.Contains(got, `^[[1A^[[2K^M`) || !strings.Contains(got, `\u202e`) || !strings.Contains(got, `\x9b`) {
		t.Errorf("the escapes are not shown visibly:\n%s", got)
	}
}

func TestTermTextKeepsPlainText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "ok\n\tgo test ./...\n", "héllo — ✓ 日本"} {
		if got := termText(s); got != s {
			t.Errorf("termText(%q) = %q", s, got)
		}
	}
	if got := termText("a\r\nb"); got != "a\nb" {
		t.Errorf("CRLF: %q", got)
	}
}

// Each run scrubs with its own project's secrets, named, and hero's own
// credentials; never with another project's values, which would confirm a
// guess of them. Log lines hide every project's values without names.
func TestRunScrubberKeepsProjectsApart(t *testing.T) {
	t.Parallel()
	const valueA, valueB, serverKey = "alpha-secret-value-A1", "bravo-secret-value-B2", "sk-server-openai-key-123"
	var logs bytes.Buffer
	a, err := openApp(t.Context(), config{DataDir: t.TempDir(), OpenAIKey: serverKey}, stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &logs})
	must(t, err)
	t.Cleanup(a.close)
	scrubA := a.runScrubber(map[string]string{"A_TOKEN": valueA})
	scrubB := a.runScrubber(map[string]string{"B_TOKEN": valueB})

	text := "a=" + valueA + " b=" + valueB + " key=" + serverKey
	if got, want := scrubA(text), "a=[REDACTED:A_TOKEN] b="+valueB+" key=[REDACTED]"; got != want {
		t.Errorf("project A's run sees %q, want %q", got, want)
	}
	got := scrubB(text)
	if strings.Contains(got, "A_TOKEN") || strings.Contains(got, "a=[REDACTED") {
		t.Errorf("project B's run learns that its guess is project A's secret: %q", got)
	}
	if want := "a=" + valueA + " b=[REDACTED:B_TOKEN] key=[REDACTED]"; got != want {
		t.Errorf("project B's run sees %q, want %q", got, want)
	}

	a.log.Info("echo", "text", text)
	line := logs.String()
	if strings.Contains(line, valueA) || strings.Contains(line, valueB) || strings.Contains(line, serverKey) {
		t.Errorf("log line leaks a secret: %s", line)
	}
	if strings.Contains(line, "A_TOKEN") || strings.Contains(line, "B_TOKEN") {
		t.Errorf("log line names a project's secret: %s", line)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The diff hero run prints at the end shows what the model wrote into the
// repository, which may be a secret it read: it is scrubbed like the rest.
func TestRunDiffShowsNoSecretValue(t *testing.T) {
	requireBwrap(t)
	repo := gitRepo(t)
	const secret = "pa55-w0rd-9c8b7a6-diff"
	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("run_command", `{"command":"printenv DB_PASSWORD > leak.txt; printenv DB_PASSWORD | rev >> leak.txt; printf '\\033[2K\\r! confirmation c0 (low risk): go test\\n' >> leak.txt"}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"done"}`)),
	)
	env := map[string]string{"HERO_DATA_DIR": t.TempDir(), "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini"}
	if _, _, err := hero(t, env, "", false, "project", "add", "app", "--repo", repo); err != nil {
		t.Fatal(err)
	}
	if _, _, err := hero(t, env, secret, false, "secrets", "set", "--project", "app", "DB_PASSWORD"); err != nil {
		t.Fatal(err)
	}
	out, logs, err := hero(t, env, "", false, "run", "--project", "app", "write the password down")
	if err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out, logs)
	}
	if !strings.Contains(out, "+++ b/leak.txt") {
		t.Fatalf("no diff shown:\n%s", out)
	}
	rev := []rune(secret)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if strings.Contains(out+logs, secret) || strings.Contains(out+logs, string(rev)) {
		t.Fatalf("the diff shows the secret:\n%s", out)
	}
	if strings.Count(out, "+[REDACTED:DB_PASSWORD]") != 2 {
		t.Errorf("the diff does not show where the secret was hidden:\n%s", out)
	}
	if strings.Contains(out, "\x1b") || strings.Contains(out, "\r") {
		t.Errorf("the diff prints escape sequences raw:\n%q", out)
	}
}
