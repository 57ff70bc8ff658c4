package engine_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

func TestPolicyRulesText(t *testing.T) {
	text := "# ours\r\nrun_command confirm ^npm publish( --tag next)?\n\n  git_push   allow\n* deny \\.env$\n"
	rules, err := engine.ParsePolicyRules(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.PolicyRule{
		{Tool: "run_command", Action: "confirm", Pattern: "^npm publish( --tag next)?"},
		{Tool: "git_push", Action: "allow"},
		{Tool: "*", Action: "deny", Pattern: `\.env$`},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Fatalf("rules = %+v", rules)
	}
	again, err := engine.ParsePolicyRules(engine.FormatPolicyRules(rules))
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("round trip = %+v, %v", again, err)
	}
	if rules, err := engine.ParsePolicyRules("\n# nothing\n"); err != nil || rules == nil || len(rules) != 0 {
		t.Fatalf("empty text = %#v, %v", rules, err)
	}
	for text, want := range map[string]string{
		"git_push allow\nrun_command":       `line 2: write a rule as "tool action [pattern]"`,
		"run_command maybe":                 `line 1 (run_command maybe): unknown action "maybe"; use allow, confirm or deny`,
		"\nlaunch_missiles confirm":         `line 2 (launch_missiles confirm): unknown tool "launch_missiles"`,
		"run_command confirm ^npm publish(": `line 1 (run_command confirm ^npm publish(): pattern is not a valid regular expression`,
	} {
		if _, err := engine.ParsePolicyRules(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", text, err, want)
		}
	}
}
