package bot

import (
	"encoding/json"
	"fmt"
	"strings"
)

// OneLine collapses s onto one line (runs of white space become one
// space) and clips it to n characters: what every surface uses for
// people's and the model's text in short places.
func OneLine(s string, n int) string {
	return Clip(strings.Join(strings.Fields(s), " "), n)
}

// Clip keeps the first n characters of s and marks a cut with "…": the
// one clipper of every surface.
func Clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// Tail keeps the last n bytes of s (live command output), never starting
// inside a UTF-8 sequence.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for i := 0; i < len(s) && i < 4; i++ {
		if s[i]&0xC0 != 0x80 {
			return s[i:]
		}
	}
	return s
}

// Head keeps the first n bytes of s, never ending inside a UTF-8
// sequence.
func Head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// subjectKeys are the arguments that say what a tool call does, most
// telling first (ARCHITECTURE's tool table names them).
var subjectKeys = []string{"command", "path", "pattern", "branch", "title", "message", "question", "body", "summary"}

// ToolSubject picks the argument of a tool call that people care about
// (the command, the path, …) from its JSON arguments; "" when none. Every
// surface shows this one summary.
func ToolSubject(args string) string {
	var m map[string]any
	if json.Unmarshal([]byte(args), &m) != nil {
		return ""
	}
	for _, k := range subjectKeys {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	if n, ok := m["number"].(float64); ok && n > 0 {
		return fmt.Sprintf("#%d", int64(n)) // read_issue, read_pull_request
	}
	return ""
}
