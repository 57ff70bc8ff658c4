package discord

import (
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// Text hero did not write shows as typed: no formatting, links, quotes
// or mentions.
func TestEscape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"**bold** _it_ ~~s~~ `c` ||spoiler||": `\*\*bold\*\* \_it\_ \~\~s\~\~ \` + "`" + `c\` + "`" + ` \|\|spoiler\|\|`,
		"@everyone and @here":                 "@\u200beveryone and @\u200bhere",
		"<@123> <#456> <@&789>":               `\<@123\> \<\#456\> \<@&789\>`,
		"[github.com](https://evil.example)":  `\[github.com\]\(https\://evil.example\)`,
		"> quote\n# heading\n- item":          "\\> quote\n\\# heading\n\\- item",
		"a\\*b":                               `a\\\*b`,
		"mail me at lin@example.com":          "mail me at lin@example.com",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
	if got := code("x```\n@everyone"); strings.Count(got, "```") != 2 || strings.Contains(got, "@everyone") {
		t.Errorf("code block can be closed or pings: %q", got)
	}
}

// Messages stay within Discord's 2,000 characters, and the summary keeps
// its facts (pull request, numbers) when the model's text is long.
func TestFinalTextFits(t *testing.T) {
	t.Parallel()
	o := &engine.Outcome{Status: store.StatusSucceeded, Summary: strings.Repeat("word ", 2000), Steps: 7, TokensIn: 10, TokensOut: 5,
		CostKnown: true, CostUSD: 0.0123, PullRequestURL: "https://github.com/acme/web/pull/1", DiffStat: " README.md | 2 +-\n 1 file changed"}
	got := finalText("r1", o)
	if n := len([]rune(got)); n > maxContent {
		t.Fatalf("%d characters", n)
	}
	for _, want := range []string{"https://github.com/acme/web/pull/1", "7 steps", "$0.0123", "README.md | 2"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	c := &store.Confirmation{ID: "c1", Tool: "git_push", Action: "push", Risk: "medium", Status: store.ConfirmPending, ExpiresAt: time.Now().Add(-time.Minute)}
	if text, comps := confirmationMessage(c, time.Now()); len(comps) != 0 || !strings.Contains(text, "Expired") {
		t.Fatalf("an expired confirmation still has buttons: %q %v", text, comps)
	}
}
