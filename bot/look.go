package bot

import "github.com/hero-dev/hero/store"

// Look is how a chat surface (Slack, Discord) draws a run's progress: its
// icons, how it shows code (a tool, its argument) and how it makes text
// hero did not write inert. What is shown is decided here, once; the
// surface only chooses how it looks.
type Look struct {
	// Icons of the steps listed: a tool call done or failed, a
	// confirmation asked or decided, a message from a person, a limit or
	// an error.
	Done, Failed, Asked, Message, Warning string
	// Icons of a run's status.
	Working, Waiting, Succeeded, Failure, Cancelled string
	// Code shows a tool's name or argument as code; Text makes the
	// model's and people's words inert.
	Code, Text func(string) string
}

// Line is step s in a chat's step list; "" for the steps chats do not
// list (model calls: what the model chose shows as Progress.Doing).
func (l Look) Line(s *Step) string {
	switch s.Kind {
	case store.StepTool:
		mark := l.Done
		if s.Failed {
			mark = l.Failed
		}
		line := mark + " " + l.Code(s.Tool)
		if s.Subject != "" {
			line += " " + l.Code(OneLine(s.Subject, 80))
		}
		return line
	case store.StepConfirmation:
		return l.Asked + " " + l.Text(OneLine(s.Text, 100))
	case store.StepMessage:
		return l.Message + " " + l.Text(OneLine(s.Text, 100))
	case store.StepLimit, store.StepError:
		return l.Warning + " " + l.Text(OneLine(s.Text, 100))
	}
	return ""
}

// Status is the icon of a run status.
func (l Look) Status(status string) string {
	switch status {
	case store.StatusSucceeded:
		return l.Succeeded
	case store.StatusFailed, store.StatusInterrupted:
		return l.Failure
	case store.StatusCancelled:
		return l.Cancelled
	case store.StatusWaiting:
		return l.Waiting
	}
	return l.Working
}
