package bot

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// FuzzParse checks the command grammar on any text: Parse never panics;
// it returns either a *ParseError with a message or a command with a known
// verb; what it takes from the text (task, ids, project, code, reason) is
// in the text; ids, project names and codes are single words; and blank
// space around the text changes nothing. Its seeds run in every `go test`.
func FuzzParse(f *testing.F) {
	// Texts of the recorded payloads in bot/slack/testdata and
	// webhooks/github/testdata (after the mention or /hero prefix), and
	// the commands people type.
	for _, s := range []string{
		"", "hello world", "Hi opsdroid", "this is a test message", "this is an edited message",
		"Hey there \r\n\r\nthis is another test issue", "It looks like you accidently spelled 'commit' with two 't's.",
		"You are totally right! I'll get this fixed right away.", "Maybe you should use more emoji on this line.", "dfds",
		"help", "run add retries to the uploader", `run "fix the \"quoted\" bug"`, "run “make it faster”",
		"run fix this:\n```go\nfunc  a() {  }\n```\nplease", "status r7f3a2c9", "cancel", "approve c4k9x2",
		"deny c4k9x2 wrong branch, use hero/12", "use web", "projects", "budget", "aprove c12", "link AB12CD34",
		"LINK  ab12cd34 ", "lint web", "\"", "“", "run \"\"", "deny\u00a0c1", "approve\tc1\nc2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || strings.TrimSpace(pe.Msg) == "" {
				t.Fatalf("Parse(%q) error %v is not a ParseError with a message", text, err)
			}
			if pe.Suggestion != "" && !slices.Contains(verbs, pe.Suggestion) {
				t.Fatalf("Parse(%q) suggests unknown verb %q", text, pe.Suggestion)
			}
		} else {
			if !slices.Contains(verbs, c.Verb) {
				t.Fatalf("Parse(%q) verb %q is not a verb", text, c.Verb)
			}
			if c.Verb == VerbRun && strings.TrimSpace(c.Task) == "" {
				t.Fatalf("Parse(%q) starts a run with an empty task", text)
			}
			for what, v := range map[string]string{"task": c.Task, "id": c.ID, "project": c.Project, "code": c.Code, "reason": c.Reason} {
				if !strings.Contains(text, v) {
					t.Fatalf("Parse(%q) %s %q is not in the text", text, what, v)
				}
			}
			for what, v := range map[string]string{"id": c.ID, "project": c.Project, "code": c.Code} {
				if strings.ContainsFunc(v, unicode.IsSpace) {
					t.Fatalf("Parse(%q) %s %q is not one word", text, what, v)
				}
			}
		}
		c2, err2 := Parse(" \n\t" + text + " \n")
		if c2 != c || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("blank space around %q changes the result: %+v, %v vs %+v, %v", text, c, err, c2, err2)
		}
	})
}
