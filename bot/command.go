// Package bot holds what every chat surface shares: the command grammar
// (`/hero run …`, `/hero approve c123`, …) parsed the same way in Slack,
// Discord and GitHub comments. The platform adapters live in bot/slack and
// bot/discord; GitHub's in webhooks/github.
package bot

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Verbs of the command grammar.
const (
	VerbHelp     = "help"
	VerbRun      = "run"
	VerbStatus   = "status"
	VerbCancel   = "cancel"
	VerbProjects = "projects"
	VerbUse      = "use"
	VerbBudget   = "budget"
	VerbApprove  = "approve"
	VerbDeny     = "deny"
	VerbLink     = "link"
	VerbSchedule = "schedule"
	VerbCard     = "card"
	VerbBoard    = "board"
)

var verbs = []string{VerbHelp, VerbRun, VerbStatus, VerbCancel, VerbProjects, VerbUse, VerbBudget, VerbApprove, VerbDeny, VerbLink, VerbSchedule, VerbCard, VerbBoard}

// noSuggest are verbs never offered as a typo fix: "link" is one letter
// from "lint", and "/hero lint" is a task.
var noSuggest = map[string]bool{VerbLink: true}

// Command is one parsed command.
type Command struct {
	Verb string
	// Task is the run's task, verbatim (quotes, newlines and code blocks
	// kept), for VerbRun.
	Task string
	// ID is the run id (status, cancel; optional) or the confirmation id
	// (approve, deny; required).
	ID string
	// Project is the project name for VerbUse.
	Project string
	// Reason is free text after a deny ("/hero deny c12 wrong branch").
	Reason string
	// Code is the one-time code from the settings page for VerbLink
	// ("/hero link K7M2XQ9D"), as typed.
	Code string
	// Schedule is what VerbSchedule asks: "add" (Expr and Task set),
	// "list", or "rm", "pause", "resume" (ID set).
	Schedule string
	// Expr is a schedule's cron expression or descriptor, unquoted.
	Expr string
}

// ParseError is a command that cannot be understood; Error is written for
// the person who typed it and Suggestion, when set, is the verb they
// probably meant.
type ParseError struct {
	Msg        string
	Suggestion string
}

func (e *ParseError) Error() string {
	if e.Suggestion != "" {
		return fmt.Sprintf("%s Did you mean `/hero %s`?", e.Msg, e.Suggestion)
	}
	return e.Msg
}

// Parse reads the text after the command prefix (after "/hero", or after
// the bot's @mention). An empty text asks for help. A first word that is
// not a verb starts a run with the whole text as the task ("/hero fix the
// login test"), unless it is a likely typo of a verb followed by at most
// one word ("/hero aprove c12"), which is an error with a suggestion.
func Parse(text string) (Command, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Command{Verb: VerbHelp}, nil
	}
	word, rest := splitWord(text)
	verb := strings.ToLower(word)
	args := strings.Fields(rest)
	switch verb {
	case VerbHelp, "?", "--help", "-h":
		return Command{Verb: VerbHelp}, nil
	case VerbRun:
		task := unquote(rest)
		if task == "" {
			return Command{}, &ParseError{Msg: "Say what to do: `/hero run add retries to the uploader`."}
		}
		return Command{Verb: VerbRun, Task: task}, nil
	case VerbStatus, VerbCancel:
		if len(args) > 1 {
			return Command{}, &ParseError{Msg: fmt.Sprintf("`/hero %s` takes at most one run id, like `/hero %s r7f3a2c9`.", verb, verb)}
		}
		c := Command{Verb: verb}
		if len(args) == 1 {
			c.ID = args[0]
		}
		return c, nil
	case VerbApprove, VerbDeny:
		if len(args) == 0 {
			return Command{}, &ParseError{Msg: fmt.Sprintf("`/hero %s` needs the confirmation id shown with the request, like `/hero %s c4k9x2`.", verb, verb)}
		}
		if verb == VerbApprove && len(args) > 1 {
			return Command{}, &ParseError{Msg: "`/hero approve` takes exactly one confirmation id; approve several with one command each."}
		}
		_, reason := splitWord(rest)
		return Command{Verb: verb, ID: args[0], Reason: strings.TrimSpace(reason)}, nil
	case VerbUse:
		if len(args) != 1 {
			return Command{}, &ParseError{Msg: "`/hero use` takes one project name, like `/hero use web`; `/hero projects` lists them."}
		}
		return Command{Verb: VerbUse, Project: args[0]}, nil
	case VerbLink:
		if len(args) != 1 {
			return Command{}, &ParseError{Msg: "`/hero link` takes the one code shown on hero's settings page (Integrations → Link a chat account), like `/hero link K7M2XQ9D`."}
		}
		return Command{Verb: VerbLink, Code: args[0]}, nil
	case VerbSchedule:
		return parseSchedule(rest)
	case VerbCard:
		title := unquote(rest)
		if title == "" {
			return Command{}, &ParseError{Msg: "Say the card's title: `/hero card Fix the login loop`."}
		}
		return Command{Verb: VerbCard, Task: title}, nil
	case VerbProjects, VerbBudget, VerbBoard:
		if len(args) > 0 {
			return Command{}, &ParseError{Msg: fmt.Sprintf("`/hero %s` takes no arguments.", verb)}
		}
		return Command{Verb: verb}, nil
	}
	if s := closestVerb(verb); s != "" && len(args) <= 1 {
		return Command{}, &ParseError{Msg: fmt.Sprintf("I don't know the command `%s`.", word), Suggestion: s}
	}
	task := unquote(text)
	if task == "" { // only quotes: `/hero ""`
		return Command{}, &ParseError{Msg: "Say what to do: `/hero add retries to the uploader`."}
	}
	return Command{Verb: VerbRun, Task: task}, nil
}

// scheduleUsage is the grammar of /hero schedule.
const scheduleUsage = "`/hero schedule \"0 9 * * 1-5\" <task>` (five cron fields in quotes, or @daily, @weekly, @every 2h), `/hero schedule list`, `/hero schedule rm|pause|resume <id>`."

// parseSchedule reads what follows "schedule": list, a change of one
// schedule, or a new one (a quoted expression or a descriptor, then the
// task).
func parseSchedule(rest string) (Command, error) {
	word, after := splitWord(rest)
	args := strings.Fields(after)
	switch sub := strings.ToLower(word); sub {
	case "":
		return Command{}, &ParseError{Msg: "Say when and what: " + scheduleUsage}
	case "list", "ls":
		if len(args) > 0 {
			return Command{}, &ParseError{Msg: "`/hero schedule list` takes no arguments."}
		}
		return Command{Verb: VerbSchedule, Schedule: "list"}, nil
	case "rm", "remove", "pause", "resume":
		if sub == "remove" {
			sub = "rm"
		}
		if len(args) != 1 {
			return Command{}, &ParseError{Msg: fmt.Sprintf("`/hero schedule %s` takes one schedule id, like `/hero schedule %s s3kq7xw2a`; `/hero schedule list` shows them.", sub, sub)}
		}
		return Command{Verb: VerbSchedule, Schedule: sub, ID: args[0]}, nil
	}
	var expr, task string
	switch {
	case strings.HasPrefix(rest, "@every"):
		// "@every 2h <task>": the duration is part of the expression.
		_, r := splitWord(rest)
		d, t := splitWord(r)
		expr, task = "@every "+d, t
	case strings.HasPrefix(rest, "@"):
		expr, task = splitWord(rest)
	default:
		for _, q := range [][2]string{{`"`, `"`}, {"“", "”"}, {`'`, `'`}, {"‘", "’"}} {
			if r, ok := strings.CutPrefix(rest, q[0]); ok {
				if i := strings.Index(r, q[1]); i >= 0 {
					expr, task = strings.TrimSpace(r[:i]), r[i+len(q[1]):]
				}
				break
			}
		}
	}
	if expr == "" {
		return Command{}, &ParseError{Msg: "Put the schedule's expression in quotes before the task: " + scheduleUsage}
	}
	task = unquote(task)
	if task == "" {
		return Command{}, &ParseError{Msg: fmt.Sprintf("Say what the scheduled run should do after `%s`: %s", expr, scheduleUsage)}
	}
	return Command{Verb: VerbSchedule, Schedule: "add", Expr: expr, Task: task}, nil
}

// ParseErrorReply is what every surface answers to a command that does
// not parse: the error's own words, and the command list after an unknown
// command. ok is false when err is not a ParseError (the caller's to
// return).
func ParseErrorReply(err error) (reply string, ok bool) {
	var pe *ParseError
	if !errors.As(err, &pe) {
		return "", false
	}
	reply = pe.Error()
	if pe.Suggestion != "" {
		reply += "\n\n" + Help()
	}
	return reply, true
}

// Help is the text shown for /hero help and after a parse error.
func Help() string {
	return strings.Join([]string{
		"`/hero run <task>` (or just `/hero <task>`) — start a run in this channel's project",
		"`/hero status [run id]` — what a run (or this channel's latest) is doing",
		"`/hero cancel [run id]` — stop a run and kill its command",
		"`/hero approve <id>` / `/hero deny <id> [reason]` — decide a pending confirmation",
		"`/hero projects` — list projects; `/hero use <project>` — bind this channel to one",
		"`/hero budget` — the project's limits and today's spend",
		"`/hero card <title>` — add a card to the project's board; `/hero board` — show the board",
		"`/hero link <code>` — act as your hero user here, with the code from the settings page",
		"`/hero schedule \"0 9 * * 1-5\" <task>` — repeat a run here on a schedule; `/hero schedule list`, `/hero schedule rm|pause|resume <id>`",
		"Reply in a run's thread (or mention hero there) to steer it.",
	}, "\n")
}

// splitWord splits off the first whitespace-delimited word.
func splitWord(s string) (string, string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// unquote removes one pair of quotes around the whole task ("…", '…', or
// the typographic quotes chat apps substitute); everything else is kept
// exactly, code blocks included.
func unquote(s string) string {
	s = strings.TrimSpace(s)
	pairs := [][2]string{{`"`, `"`}, {`'`, `'`}, {"“", "”"}, {"‘", "’"}}
	for _, p := range pairs {
		if len(s) >= len(p[0])+len(p[1]) && strings.HasPrefix(s, p[0]) && strings.HasSuffix(s, p[1]) {
			inner := s[len(p[0]) : len(s)-len(p[1])]
			if !strings.Contains(inner, p[0]) && !strings.Contains(inner, p[1]) {
				return strings.TrimSpace(inner)
			}
		}
	}
	return s
}

// closestVerb returns the verb within edit distance 2 of w (1 for short
// words), or "".
func closestVerb(w string) string {
	best, bestD := "", 3
	for _, v := range verbs {
		if noSuggest[v] {
			continue
		}
		d := editDistance(w, v)
		limit := 2
		if len(v) <= 4 {
			limit = 1
		}
		if d <= limit && d < bestD {
			best, bestD = v, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
