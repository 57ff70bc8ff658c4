package engine

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hero-dev/hero/store"
)

// Policy actions: what happens to a tool call before it runs.
const (
	PolicyAllow   = "allow"   // run it
	PolicyConfirm = "confirm" // ask a person first
	PolicyDeny    = "deny"    // refuse it; the model is told why
)

// Risk levels shown with a confirmation.
const (
	RiskLow    = "low"
	RiskMedium = "medium"
	RiskHigh   = "high"
)

// PolicyDecision is what the confirmation policy says about one tool call.
// (Decision is a person's answer to a confirmation; this is the policy's.)
type PolicyDecision struct {
	Action string // PolicyAllow, PolicyConfirm or PolicyDeny
	Risk   string // RiskLow, RiskMedium or RiskHigh
	Reason string // which rule decided, in words a person understands
}

// Policy decides which tool calls run, wait for a person, or are refused.
// Project rules are checked first, in order, and the first match wins; then
// the defaults (DefaultPolicyRules), which end with a catch-all so an
// unknown tool is always confirmed. A Policy is immutable and safe for
// concurrent use.
//
// For run_command the subject (the command) is matched in three forms: as
// given, with blanks collapsed, and with quotes and backslashes removed (so
// an rm spelled with empty quotes inside it, or quoted, is still a recursive
// delete). A confirm or deny rule matches when any form matches; an allow
// rule only when every form does. The policy is a safety net against
// accidents and obvious mistakes, not the security boundary: the sandbox
// is. A command that hides its intent behind variables or encodings is not
// recognised.
type Policy struct {
	project  []policyRule
	defaults []policyRule
}

type policyRule struct {
	store.PolicyRule
	re     *regexp.Regexp // nil matches every subject
	risk   string
	why    string // defaults: what the rule is about
	source string // "project rule 2" or "default policy"
}

// policyKnownTools are the tool names rules may refer to (besides "*").
var policyKnownTools = []string{
	"read_file", "list_files", "search", "write_file", "edit_file", "delete_file",
	"run_command", "git_commit", "git_push", "create_pull_request", "comment",
	"read_issue", "read_pull_request", "ask_human", "finish",
}

// Pieces of the run_command patterns.
const (
	// git's global options between "git" and its subcommand.
	policyGitOpts = `\bgit(?:\s+(?:-C\s+\S+|-c\s+\S+|--[a-z-]+(?:=\S+)?|-[pP]))*\s+`
	// rest of the current simple command.
	policySeg = `[^;&|\n]*`
	// a shell interpreter, possibly behind sudo or a path.
	policyShell = `(?:sudo\b[^|;&\n]*?[ \t])?(?:\S*/)?(?:(?:ba|z|da|k|fi|c|tc)?sh|python[0-9.]*|perl|ruby|node|php)\b`
	// chmod: recursive flag, and a mode that makes files world-writable.
	policyChmodR = `(?:-[a-zA-Z]*R[a-zA-Z]*|--recursive)`
	policyChmodM = `(?:[^\s;&|]*,)?(?:0?[0-7]?[0-7][0-7][2367]|[ugo]*[ao][ugo]*[+=][rwxXst]*w[rwxXst]*)`
	policyTokEnd = `(?:$|[\s;&|)'",])`
)

// policyReadOnly matches a command made only of commands that print or
// search text (echo, grep, cat, …) joined by pipes or separators, with no
// substitution, subshell, variable or redirection other than to /dev/null.
// Words inside such a command are data, so `grep -rn "DROP TABLE" .` or
// `echo "never rm -rf /"` is not mistaken for the risky command it
// mentions. Tools that can run other programs (sort --compress-program,
// rg --pre, git's pagers, sed's e command, xargs, find -exec) are not in
// the list.
var policyReadOnly = func() string {
	cmd := `(?:echo|printf|grep|egrep|fgrep|cat|head|tail|wc|ls|uniq|true)`
	tok := `(?:[^\s'"|;&$\x60(){}<>\\!#]|'[^'\n]*'|"[^"$\x60\\\n]*")+`
	redir := `(?:[12]?>>?[ \t]*/dev/null|2>&1)`
	seg := cmd + `(?:[ \t]+(?:` + redir + `|` + tok + `))*`
	sep := `[ \t]*(?:\|\||\||&&|;|\n)[ \t\n]*`
	return `^[ \t\n]*` + seg + `(?:` + sep + seg + `)*[ \t]*;?[ \t\n]*$`
}()

type policyDefault struct {
	tool, pattern, action, risk, why string
}

// policyDefaults is the built-in policy, in order. The run_command entries
// go from the read-only exception through the risky patterns to the final
// allow.
var policyDefaults = []policyDefault{
	{"read_file", "", PolicyAllow, RiskLow, "reading files is allowed"},
	{"list_files", "", PolicyAllow, RiskLow, "listing files is allowed"},
	{"search", "", PolicyAllow, RiskLow, "searching files is allowed"},
	{"write_file", "", PolicyAllow, RiskLow, "writing files inside the workspace is allowed"},
	{"edit_file", "", PolicyAllow, RiskLow, "editing files inside the workspace is allowed"},
	{"delete_file", "", PolicyConfirm, RiskMedium, "deleting a file needs confirmation"},
	{"git_commit", "", PolicyAllow, RiskLow, "committing in the workspace is allowed"},
	{"git_push", "", PolicyConfirm, RiskMedium, "pushing a branch needs confirmation"},
	{"create_pull_request", "", PolicyConfirm, RiskMedium, "opening a pull request needs confirmation"},
	{"comment", "", PolicyAllow, RiskLow, "commenting is allowed while the run has read nothing untrusted and the project has no secrets"},
	{"read_issue", "", PolicyAllow, RiskLow, "reading issues is allowed"},
	{"read_pull_request", "", PolicyAllow, RiskLow, "reading pull requests is allowed"},
	{"ask_human", "", PolicyAllow, RiskLow, "asking a question is handled by the engine"},
	{"finish", "", PolicyAllow, RiskLow, "finishing is handled by the engine"},

	{"run_command", policyReadOnly, PolicyAllow, RiskLow, "the command only prints or searches text"},

	{"run_command", `(?:^|[\s;&|(){}\x60'"/\\=$])rm(?:\s+[^\s;&|()\x60]+)*?\s+['"]?(?:-[a-zA-Z]*[rR][a-zA-Z]*|--r[a-z]*|--no-preserve-root)['"]?(?:$|[\s;&|()\x60])`,
		PolicyConfirm, RiskHigh, "recursive delete (rm -r, rm -rf)"},
	{"run_command", `\bfind\b` + policySeg + `\s-delete\b`, PolicyConfirm, RiskHigh, "find -delete removes files"},
	{"run_command", `\b(?:curl|wget)\b[^;&\n]*\|[ \t]*` + policyShell, PolicyConfirm, RiskHigh, "a download piped into a shell (curl | sh)"},
	{"run_command", `\b(?:(?:ba|z|da|k)?sh|eval|source)\b[^\n]*(?:\$\(|<\(|\x60)[ \t]*(?:curl|wget)\b|(?:^|[;&|\s])\.[ \t]+<\([ \t]*(?:curl|wget)\b`,
		PolicyConfirm, RiskHigh, "a downloaded script run by a shell"},
	{"run_command", `\|[ \t]*` + policyShell, PolicyConfirm, RiskMedium, "text piped into a shell or interpreter"},
	{"run_command", `\bchmod\b` + policySeg + `?[ \t]['"]?(?:` + policyChmodR + `['"]?[ \t](?:` + policySeg + `?[ \t])?['"]?` + policyChmodM + `|` + policyChmodM + `['"]?[ \t](?:` + policySeg + `?[ \t])?['"]?` + policyChmodR + `)` + policyTokEnd,
		PolicyConfirm, RiskHigh, "recursive chmod making files world-writable (chmod -R 777)"},
	{"run_command", policyGitOpts + `push\b` + policySeg + `\s(?:--force\S*|-[a-zA-Z]*[fd][a-zA-Z]*|--delete|--mirror|--prune|\+\S+|:\S+)(?:$|[\s;&|)])`,
		PolicyConfirm, RiskHigh, "force push or remote branch deletion (git push --force)"},
	{"run_command", policyGitOpts + `push\b`, PolicyConfirm, RiskMedium, "git push from a command bypasses the git_push tool's checks"},
	{"run_command", policyGitOpts + `reset\b` + policySeg + `\s--hard\b`, PolicyConfirm, RiskMedium, "git reset --hard discards work"},
	{"run_command", policyGitOpts + `clean\b` + policySeg + `\s(?:-[a-zA-Z]*f[a-zA-Z]*|--force)\b`, PolicyConfirm, RiskMedium, "git clean -f deletes untracked files"},
	{"run_command", `\b(?:npm|pnpm|yarn|bun)\b` + policySeg + `\spublish\b|\bcargo\b` + policySeg + `\spublish\b|\btwine\b` + policySeg + `\supload\b|\b(?:poetry|flit|hatch|uv)\s+publish\b|\bgem\s+push\b|\bsetup\.py\b` + policySeg + `\supload\b|\bmvn\b` + policySeg + `\sdeploy\b|\bgradlew?\b` + policySeg + `\spublish|\bdotnet\s+nuget\s+push\b`,
		PolicyConfirm, RiskHigh, "publishing a package (npm publish, cargo publish, twine upload, …)"},
	{"run_command", `\b(?:docker|podman|buildah)\b` + policySeg + `\s(?:push|--push)\b|\bhelm\s+push\b`, PolicyConfirm, RiskHigh, "pushing an image (docker push)"},
	{"run_command", `\bgh\s+(?:release\s+(?:create|upload|delete|edit)|repo\s+(?:delete|archive|create|edit|rename)|pr\s+merge|secret\s+(?:set|delete))\b|\bkubectl\b` + policySeg + `\s(?:apply|delete|create|replace|patch|scale|drain|rollout)\b|\bterraform\b` + policySeg + `\s(?:apply|destroy)\b|\bhelm\s+(?:install|upgrade|uninstall|delete|rollback)\b`,
		PolicyConfirm, RiskHigh, "changing something outside the sandbox (gh, kubectl, terraform, helm)"},
	{"run_command", `(?i)\bdrop\s+(?:table|database|schema)\b|\btruncate\b|\bdropdb\b|\bflush(?:all|db)\b|\bdropDatabase\s*\(`,
		PolicyConfirm, RiskHigh, "destroying database data (DROP TABLE, TRUNCATE)"},
	{"run_command", `(?i)\bdelete\s+from\s+[\w.\x60"\[\]]+\s*(?:$|;|["'])`, PolicyConfirm, RiskMedium, "DELETE FROM without WHERE"},
	{"run_command", `\bmkfs(?:\.[a-z0-9]+)?\b|\bdd\b` + policySeg + `\bof=/dev/|>[ \t]*/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|disk)|\b(?:wipefs|shred|fdisk|sfdisk|parted)\b|\bmv\b` + policySeg + `[ \t]/dev/null\b`,
		PolicyConfirm, RiskHigh, "overwriting a disk or destroying files (mkfs, dd of=/dev/…, shred)"},
	{"run_command", `:\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}`, PolicyConfirm, RiskHigh, "a fork bomb"},
	{"run_command", "", PolicyAllow, RiskLow, "commands run inside the sandbox are allowed"},

	{"*", "", PolicyConfirm, RiskMedium, "unknown tools need confirmation"},
}

// DefaultPolicyRules returns the built-in rules, in the order they are
// checked after a project's own rules. Projects can show them, and copy one
// to change it: an earlier project rule for the same tool overrides it.
func DefaultPolicyRules() []store.PolicyRule {
	out := make([]store.PolicyRule, len(policyDefaults))
	for i, d := range policyDefaults {
		out[i] = store.PolicyRule{Tool: d.tool, Pattern: d.pattern, Action: d.action}
	}
	return out
}

// NewPolicy builds the policy of a project from its rules (nil means
// defaults only). A rule with an unknown tool or action, or a pattern that
// is not a valid regular expression (Go RE2 syntax), is an error naming the
// rule by its 1-based position.
func NewPolicy(projectRules []store.PolicyRule) (*Policy, error) {
	p := &Policy{}
	for i, r := range projectRules {
		pr, err := checkRule(r)
		if err != nil {
			return nil, fmt.Errorf("policy rule %d (tool %q, pattern %q, action %q): %w", i+1, r.Tool, r.Pattern, r.Action, err)
		}
		pr.source = fmt.Sprintf("project rule %d", i+1)
		p.project = append(p.project, pr)
	}
	for _, d := range policyDefaults {
		pr := policyRule{
			PolicyRule: store.PolicyRule{Tool: d.tool, Pattern: d.pattern, Action: d.action},
			risk:       d.risk, why: d.why, source: "default policy",
		}
		if d.pattern != "" {
			pr.re = regexp.MustCompile(d.pattern)
		}
		p.defaults = append(p.defaults, pr)
	}
	return p, nil
}

// checkRule validates one project rule and compiles its pattern.
func checkRule(r store.PolicyRule) (policyRule, error) {
	if r.Tool == "" {
		return policyRule{}, fmt.Errorf("tool is empty; name a tool (%s) or \"*\" for all", strings.Join(policyKnownTools, ", "))
	}
	if r.Tool != "*" && !slices.Contains(policyKnownTools, r.Tool) {
		return policyRule{}, fmt.Errorf("unknown tool %q; use one of %s, or \"*\" for all", r.Tool, strings.Join(policyKnownTools, ", "))
	}
	risk, ok := policyActionRisk(r.Action)
	if !ok {
		return policyRule{}, fmt.Errorf("unknown action %q; use allow, confirm or deny", r.Action)
	}
	pr := policyRule{PolicyRule: r, risk: risk}
	if r.Pattern != "" {
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			return policyRule{}, fmt.Errorf("pattern is not a valid regular expression: %w", err)
		}
		pr.re = re
	}
	return pr, nil
}

// Exposure is what a run has been exposed to that makes text it posts
// outside hero riskier: a prompt-injected model that read a secret (in
// whatever encoding slips past the redactor) posts it in a comment.
type Exposure struct {
	// UntrustedText: the run has read text written by people outside the
	// project (an issue quoted in its task, read_issue's output).
	UntrustedText bool
	// Secrets: the project has secrets the run's commands can read.
	Secrets bool
}

// why describes the exposure for a confirmation, "" when there is none.
func (x Exposure) why() string {
	switch {
	case x.UntrustedText && x.Secrets:
		return "the run has read text written outside the project, and the project has secrets"
	case x.UntrustedText:
		return "the run has read text written outside the project"
	case x.Secrets:
		return "the project has secrets"
	}
	return ""
}

// policyPublishing are the tools that post model-written text where people
// outside hero read it; the defaults let them run only while the run is
// unexposed (create_pull_request confirms anyway).
var policyPublishing = []string{"comment", "create_pull_request"}

// Decide says what to do with a call of tool whose Tool.Subject is subject
// (the command, path or branch), for a run exposed to nothing. See
// DecideFor.
func (p *Policy) Decide(tool, subject string) PolicyDecision {
	return p.DecideFor(tool, subject, Exposure{})
}

// DecideFor says what to do with a call of tool whose Tool.Subject is
// subject, in a run with exposure x. A project rule decides the action;
// its risk is never lower than what the defaults would say about the same
// call, so an approver still sees "high" for an rm -rf a project chose to
// confirm. Without a project rule, a publishing tool (comment) that the
// defaults allow is confirmed once the run is exposed.
func (p *Policy) DecideFor(tool, subject string, x Exposure) PolicyDecision {
	forms := policyForms(tool, subject)
	def := policyFirst(p.defaults, tool, forms)
	d := PolicyDecision{Action: PolicyConfirm, Risk: RiskMedium, Reason: "default policy: unknown tools need confirmation"}
	if def != nil {
		d = PolicyDecision{Action: def.Action, Risk: def.risk, Reason: "default policy: " + def.why}
	}
	if why := x.why(); why != "" && d.Action == PolicyAllow && slices.Contains(policyPublishing, tool) {
		d = PolicyDecision{Action: PolicyConfirm, Risk: RiskMedium,
			Reason: "default policy: " + tool + " posts text outside hero and " + why + " (a project rule can allow it)"}
	}
	if r := policyFirst(p.project, tool, forms); r != nil {
		risk := r.risk
		if policyRiskRank(d.Risk) > policyRiskRank(risk) {
			risk = d.Risk
		}
		desc := "any " + r.Tool + " call"
		if r.Tool == "*" {
			desc = "any tool call"
		}
		if r.Pattern != "" {
			desc = fmt.Sprintf("%s matching %q", r.Tool, r.Pattern)
		}
		return PolicyDecision{Action: r.Action, Risk: risk, Reason: fmt.Sprintf("%s: %s → %s", r.source, desc, r.Action)}
	}
	return d
}

func policyFirst(rules []policyRule, tool string, forms []string) *policyRule {
	for i := range rules {
		r := &rules[i]
		if r.Tool != "*" && r.Tool != tool {
			continue
		}
		if r.re == nil {
			return r
		}
		// An allow must hold for every form of the subject; a confirm
		// or deny for any.
		all := r.Action == PolicyAllow
		matched := all
		for _, f := range forms {
			m := r.re.MatchString(f)
			if all && !m {
				matched = false
				break
			}
			if !all && m {
				matched = true
				break
			}
		}
		if matched {
			return r
		}
	}
	return nil
}

var (
	policyBlanks   = regexp.MustCompile(`[ \t]+`)
	policyNewlines = regexp.MustCompile(`[ \t]*\n[ \t\n]*`)
)

// policyForms returns the forms of subject that rules are matched against.
func policyForms(tool, subject string) []string {
	forms := []string{subject}
	if tool != "run_command" {
		return forms
	}
	norm := strings.ReplaceAll(subject, "\\\n", "")
	norm = policyNewlines.ReplaceAllString(norm, "\n")
	norm = strings.TrimSpace(policyBlanks.ReplaceAllString(norm, " "))
	bare := strings.NewReplacer(`'`, "", `"`, "", `\`, "").Replace(norm)
	for _, f := range []string{norm, bare} {
		if !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	return forms
}

func policyActionRisk(action string) (string, bool) {
	switch action {
	case PolicyAllow:
		return RiskLow, true
	case PolicyConfirm:
		return RiskMedium, true
	case PolicyDeny:
		return RiskHigh, true
	}
	return "", false
}

func policyRiskRank(risk string) int {
	switch risk {
	case RiskHigh:
		return 2
	case RiskMedium:
		return 1
	}
	return 0
}
