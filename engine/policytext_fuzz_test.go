package engine_test

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine"
)

var lineErr = regexp.MustCompile(`^line ([0-9]+)\b`)

// FuzzParsePolicyRules checks the policy-rule parser (the settings page's
// rules box, `hero project set --policy-file`) on any text: it never
// panics; an error names a line of the text; rules it accepts build a
// policy, decide any call without panicking, and survive
// FormatPolicyRules unchanged. Its seeds run in every `go test`.
func FuzzParsePolicyRules(f *testing.F) {
	for _, s := range []string{
		"", "\n# nothing\n", "# ours\r\nrun_command confirm ^npm publish( --tag next)?\n\n  git_push   allow\n* deny \\.env$\n",
		"comment allow", "create_pull_request allow", "run_command deny (?i)drop\\s+table", "delete_file allow ^tmp/",
		"git_push allow\nrun_command", "run_command maybe", "\nlaunch_missiles confirm", "run_command confirm ^npm publish(",
		"write_file confirm \\.github/workflows/", "* confirm", "run_command\tallow\t^go test", "read_file deny  secrets/ \r\n",
	} {
		f.Add(s, "rm -rf / && npm publish")
	}
	f.Fuzz(func(t *testing.T, text, subject string) {
		rules, err := engine.ParsePolicyRules(text)
		if err != nil {
			m := lineErr.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("ParsePolicyRules(%q) error %q does not name a line", text, err)
			}
			n, _ := strconv.Atoi(m[1])
			if lines := strings.Count(text, "\n") + 1; n < 1 || n > lines {
				t.Fatalf("ParsePolicyRules(%q) error names line %d of %d", text, n, lines)
			}
			return
		}
		if rules == nil {
			t.Fatalf("ParsePolicyRules(%q) = nil rules without an error", text)
		}
		p, err := engine.NewPolicy(rules)
		if err != nil {
			t.Fatalf("ParsePolicyRules(%q) accepted rules NewPolicy refuses: %v", text, err)
		}
		for _, r := range rules {
			tool := r.Tool
			if tool == "*" {
				tool = "run_command"
			}
			d := p.DecideFor(tool, subject, engine.Exposure{UntrustedText: true, Secrets: true})
			if d.Action != engine.PolicyAllow && d.Action != engine.PolicyConfirm && d.Action != engine.PolicyDeny {
				t.Fatalf("Decide(%s, %q) = %+v", tool, subject, d)
			}
		}
		again, err := engine.ParsePolicyRules(engine.FormatPolicyRules(rules))
		if err != nil || !reflect.DeepEqual(again, rules) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", text, again, err, rules)
		}
	})
}
