package bot

import "strings"

// OneLine collapses s onto one line (runs of white space become one
// space) and clips it to n characters with "…": the one clipper every
// surface uses for people's and the model's text in short places.
func OneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
