package terminal

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// stepLine is a step's line; a model call shows only when the model said
// something.
func stepLine(s *bot.Step) string {
	switch s.Kind {
	case store.StepTool:
		mark := map[bool]string{false: "•", true: "✗"}[s.Failed]
		subject := ""
		if s.Subject != "" {
			subject = " " + Line(s.Subject, 100)
		}
		return fmt.Sprintf("  %s %s%s  (%dms)", mark, s.Tool, subject, s.Elapsed.Milliseconds())
	case store.StepModel:
		if s.Text != "" {
			return "  💭 " + Line(s.Text, 160)
		}
	case store.StepLimit:
		return "  ⏸ " + Line(s.Text, 300)
	case store.StepMessage:
		return "  ✉ " + Line(s.Text, 160)
	case store.StepError:
		return "  ✗ " + Line(s.Text, 200)
	}
	return ""
}

func decisionWords(c *store.Confirmation) string {
	switch c.Status {
	case store.ConfirmApproved:
		if c.Kind == store.ConfirmKindQuestion {
			return "answered"
		}
		return "approved"
	case store.ConfirmDenied:
		return "denied"
	}
	return c.Status
}

// outcome is the closing summary of a run.
func outcome(ex *store.Execution, o *engine.Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n── run %s %s ──\n", ex.ID, o.Status)
	if o.Summary != "" {
		fmt.Fprintf(&b, "%s\n", Text(o.Summary))
	}
	if o.Error != "" {
		fmt.Fprintf(&b, "error: %s\n", Text(o.Error))
	}
	cost := fmt.Sprintf("$%.4f", o.CostUSD)
	if !o.CostKnown {
		cost = fmt.Sprintf("unknown (model %s is not in the price table; counted in tokens only)", ex.Model)
	}
	fmt.Fprintf(&b, "steps %d · tokens %d in / %d out · cost %s\n", o.Steps, o.TokensIn, o.TokensOut, cost)
	if o.PullRequestURL != "" {
		fmt.Fprintf(&b, "pull request: %s\n", o.PullRequestURL)
	}
	if o.DiffStat != "" {
		fmt.Fprintf(&b, "changes:\n%s\n", Text(o.DiffStat))
	}
	return b.String()
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}

// Line is s safe to print (Text) on one line of at most n characters.
func Line(s string, n int) string { return bot.OneLine(Text(s), n-1) }

// Text makes text that hero did not write (the model's words, command
// output, a diff) safe to print on a terminal: control characters that
// would move the cursor, erase or recolour lines (ESC sequences, CR,
// backspace, C1 controls such as CSI), bidi overrides that reorder what is
// shown, and bytes that are not UTF-8 are printed as visible escapes
// (^[, ^M, \u009b, \u202e, \xff). Line feeds and tabs stay; a CR before a
// line feed is dropped.
func Text(s string) string {
	if safe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\r' && i+1 < len(s) && s[i+1] == '\n':
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20:
			b.WriteByte('^')
			b.WriteByte(byte(r) + 0x40)
		case r == 0x7f:
			b.WriteString("^?")
		case r >= 0x80 && r <= 0x9f, isBidiControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// safe reports whether s prints as itself (the common case: no copy).
func safe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return utf8.ValidString(s[i:]) && !strings.ContainsFunc(s[i:], func(r rune) bool { return (r >= 0x80 && r <= 0x9f) || isBidiControl(r) })
		}
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// isBidiControl reports the embedding, override and isolate controls
// (U+202A–U+202E, U+2066–U+2069) that make a terminal show text in
// another order than it is.
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}
