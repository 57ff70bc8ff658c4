package bot

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Command
		wantErr string // substring; "" = no error
		suggest string
	}{
		{in: "", want: Command{Verb: VerbHelp}},
		{in: "help", want: Command{Verb: VerbHelp}},
		{in: "HELP", want: Command{Verb: VerbHelp}},
		{in: "run add retries to the uploader", want: Command{Verb: VerbRun, Task: "add retries to the uploader"}},
		{in: "fix the flaky login test", want: Command{Verb: VerbRun, Task: "fix the flaky login test"}},
		{in: `run "fix the \"quoted\" bug"`, want: Command{Verb: VerbRun, Task: `"fix the \"quoted\" bug"`}},
		{in: `run "fix the login test"`, want: Command{Verb: VerbRun, Task: "fix the login test"}},
		{in: "run “make it faster”", want: Command{Verb: VerbRun, Task: "make it faster"}},
		{in: "run fix this:\n```go\nfunc  a() {  }\n```\nplease", want: Command{Verb: VerbRun, Task: "fix this:\n```go\nfunc  a() {  }\n```\nplease"}},
		{in: "run", wantErr: "Say what to do"},
		{in: `""`, wantErr: "Say what to do"}, // found by FuzzParse: an empty run
		{in: "“ ”", wantErr: "Say what to do"},
		{in: "status", want: Command{Verb: VerbStatus}},
		{in: "status r7f3a2c9", want: Command{Verb: VerbStatus, ID: "r7f3a2c9"}},
		{in: "status a b", wantErr: "at most one run id"},
		{in: "cancel r1", want: Command{Verb: VerbCancel, ID: "r1"}},
		{in: "approve c4k9x2", want: Command{Verb: VerbApprove, ID: "c4k9x2"}},
		{in: "approve", wantErr: "needs the confirmation id"},
		{in: "approve c1 c2", wantErr: "exactly one"},
		{in: "deny c4k9x2 wrong branch, use hero/12", want: Command{Verb: VerbDeny, ID: "c4k9x2", Reason: "wrong branch, use hero/12"}},
		{in: "use web", want: Command{Verb: VerbUse, Project: "web"}},
		{in: "use", wantErr: "one project name"},
		{in: "projects", want: Command{Verb: VerbProjects}},
		{in: "budget", want: Command{Verb: VerbBudget}},
		{in: "card Fix the login loop", want: Command{Verb: VerbCard, Task: "Fix the login loop"}},
		{in: `card "Fix it"`, want: Command{Verb: VerbCard, Task: "Fix it"}},
		{in: "card", wantErr: "Say the card's title"},
		{in: "board", want: Command{Verb: VerbBoard}},
		{in: "board now", wantErr: "takes no arguments"},
		{in: "budget now", wantErr: "no arguments"},
		{in: "aprove c12", wantErr: "don't know the command", suggest: VerbApprove},
		{in: "stauts", wantErr: "don't know", suggest: VerbStatus},
		{in: "projets", wantErr: "don't know", suggest: VerbProjects},
		{in: "cancle r1", wantErr: "don't know", suggest: VerbCancel},
		// A real task that starts with a word near a verb is still a task.
		{in: "denny's menu page is broken on mobile", want: Command{Verb: VerbRun, Task: "denny's menu page is broken on mobile"}},
		{in: "test the uploader", want: Command{Verb: VerbRun, Task: "test the uploader"}},
		{in: "link AB12CD34", want: Command{Verb: VerbLink, Code: "AB12CD34"}},
		{in: "LINK  ab12cd34 ", want: Command{Verb: VerbLink, Code: "ab12cd34"}},
		{in: "link", wantErr: "takes the one code shown on hero's settings page"},
		{in: "link AB12 CD34", wantErr: "takes the one code"},
		// "link" is one letter from "lint": linting stays a task.
		{in: "lint", want: Command{Verb: VerbRun, Task: "lint"}},
		{in: "lint web", want: Command{Verb: VerbRun, Task: "lint web"}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.wantErr) || pe.Suggestion != tt.suggest {
				t.Errorf("Parse(%q) error = %v (suggest %q), want %q (suggest %q)", tt.in, err, suggestion(err), tt.wantErr, tt.suggest)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func suggestion(err error) string {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Suggestion
	}
	return ""
}

func TestHelpMentionsEveryVerb(t *testing.T) {
	h := Help()
	for _, v := range verbs {
		if v == VerbHelp {
			continue
		}
		if !strings.Contains(h, "/hero "+v) {
			t.Errorf("help does not mention %s", v)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    Command
		wantErr string
	}{
		{in: `schedule "0 9 * * 1-5" bump the dependencies`, want: Command{Verb: VerbSchedule, Schedule: "add", Expr: "0 9 * * 1-5", Task: "bump the dependencies"}},
		{in: "schedule “CRON_TZ=Europe/Berlin 0 9 * * 1” weekly cleanup", want: Command{Verb: VerbSchedule, Schedule: "add", Expr: "CRON_TZ=Europe/Berlin 0 9 * * 1", Task: "weekly cleanup"}},
		{in: "schedule @daily hunt flaky tests", want: Command{Verb: VerbSchedule, Schedule: "add", Expr: "@daily", Task: "hunt flaky tests"}},
		{in: `schedule @every 2h "look at the queue"`, want: Command{Verb: VerbSchedule, Schedule: "add", Expr: "@every 2h", Task: "look at the queue"}},
		{in: "schedule list", want: Command{Verb: VerbSchedule, Schedule: "list"}},
		{in: "Schedule LS", want: Command{Verb: VerbSchedule, Schedule: "list"}},
		{in: "schedule rm s3kq7xw2a", want: Command{Verb: VerbSchedule, Schedule: "rm", ID: "s3kq7xw2a"}},
		{in: "schedule pause s3kq7xw2a", want: Command{Verb: VerbSchedule, Schedule: "pause", ID: "s3kq7xw2a"}},
		{in: "schedule resume s3kq7xw2a", want: Command{Verb: VerbSchedule, Schedule: "resume", ID: "s3kq7xw2a"}},
		{in: "schedule", wantErr: "Say when and what"},
		{in: "schedule list all", wantErr: "takes no arguments"},
		{in: "schedule rm", wantErr: "takes one schedule id"},
		{in: "schedule 0 9 * * * bump", wantErr: "Put the schedule's expression in quotes"},
		{in: `schedule "0 9 * * *"`, wantErr: "Say what the scheduled run should do after `0 9 * * *`"},
		{in: `schedule "0 9 * * * bump`, wantErr: "Put the schedule's expression in quotes"},
	} {
		got, err := Parse(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) = %+v, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// Every surface answers an unparsable command with the same words: the
// error, and the command list only when the verb itself was unknown.
func TestParseErrorReply(t *testing.T) {
	_, err := Parse("aprove c1")
	reply, ok := ParseErrorReply(err)
	if !ok || !strings.Contains(reply, "Did you mean `/hero approve`?") || !strings.HasSuffix(reply, Help()) {
		t.Errorf("unknown verb: %q, %v", reply, ok)
	}
	_, err = Parse("approve")
	reply, ok = ParseErrorReply(err)
	if !ok || strings.Contains(reply, Help()) || !strings.Contains(reply, "confirmation id") {
		t.Errorf("missing id: %q, %v", reply, ok)
	}
	if _, ok := ParseErrorReply(errors.New("database gone")); ok {
		t.Error("a database error was taken for a parse error")
	}
}
