package engine

import (
	"fmt"
	"strings"

	"github.com/hero-dev/hero/store"
)

// ParsePolicyRules reads confirmation rules written one a line as
// "tool action [pattern]" — the pattern is the rest of the line, so it
// may hold spaces — with blank lines and lines starting with # ignored.
// This is the text of the settings page's rules box and of
// `hero project set --policy-file`. The rules are checked as NewPolicy
// checks them; errors name the line. No rules is an empty, non-nil list.
func ParsePolicyRules(text string) ([]store.PolicyRule, error) {
	rules := []store.PolicyRule{}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return nil, fmt.Errorf("line %d: write a rule as \"tool action [pattern]\", like \"run_command confirm ^npm publish\"; got %q", i+1, line)
		}
		rest := strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
		rest = strings.TrimSpace(strings.TrimPrefix(rest, fields[1]))
		r := store.PolicyRule{Tool: fields[0], Action: fields[1], Pattern: rest}
		if _, err := checkRule(r); err != nil {
			return nil, fmt.Errorf("line %d (%s): %w", i+1, line, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// FormatPolicyRules writes rules the way ParsePolicyRules reads them, one
// a line.
func FormatPolicyRules(rules []store.PolicyRule) string {
	lines := make([]string, 0, len(rules))
	for _, r := range rules {
		s := r.Tool + " " + r.Action
		if r.Pattern != "" {
			s += " " + r.Pattern
		}
		lines = append(lines, s)
	}
	return strings.Join(lines, "\n")
}
