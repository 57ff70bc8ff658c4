package bot_test

import (
	"strings"
	"testing"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/store"
)

// What a chat's step list shows of each step, and how a run's status
// reads, decided once for Slack and Discord.
func TestLook(t *testing.T) {
	t.Parallel()
	look := bot.Look{Done: "+", Failed: "!", Asked: "?", Message: "@", Warning: "~",
		Working: "W", Waiting: "H", Succeeded: "S", Failure: "F", Cancelled: "C",
		Code: func(s string) string { return "[" + s + "]" }, Text: strings.ToUpper}
	long := strings.Repeat("a ", 100)
	for _, tc := range []struct {
		step bot.Step
		want string
	}{
		{bot.Step{Kind: store.StepTool, Tool: "run_command", Subject: "go  test\n./..."}, "+ [run_command] [go test ./...]"},
		{bot.Step{Kind: store.StepTool, Tool: "git_push", Failed: true}, "! [git_push]"},
		{bot.Step{Kind: store.StepTool, Tool: "read_file", Subject: long}, "+ [read_file] [" + strings.Repeat("a ", 40) + "…]"},
		{bot.Step{Kind: store.StepConfirmation, Text: "asked: delete README.md"}, "? ASKED: DELETE README.MD"},
		{bot.Step{Kind: store.StepMessage, From: "slack:T1/U1", Text: "use\ntabs"}, "@ USE TABS"},
		{bot.Step{Kind: store.StepLimit, Text: "the step limit"}, "~ THE STEP LIMIT"},
		{bot.Step{Kind: store.StepError, Text: long}, "~ " + strings.ToUpper(strings.Repeat("a ", 50)) + "…"},
		{bot.Step{Kind: store.StepModel, Tool: "run_command", Text: "thinking aloud"}, ""},
	} {
		if got := look.Line(&tc.step); got != tc.want {
			t.Errorf("%s step: %q, want %q", tc.step.Kind, got, tc.want)
		}
	}
	for status, want := range map[string]string{store.StatusQueued: "W", store.StatusRunning: "W", store.StatusWaiting: "H", store.StatusSucceeded: "S",
		store.StatusFailed: "F", store.StatusInterrupted: "F", store.StatusCancelled: "C"} {
		if got := look.Status(status); got != want {
			t.Errorf("status %s: %q, want %q", status, got, want)
		}
	}
}
