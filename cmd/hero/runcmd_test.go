package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
)

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
	enginetest.RequireBwrap(t)
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
