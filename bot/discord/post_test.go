package discord

import (
	"strings"
	"testing"
)

// TestPost: scheduled work posts in a channel and reports in a thread
// opened on that message, mentioning nobody.
func TestPost(t *testing.T) {
	e := newEnv(t, nil)
	thread, err := e.a.Post(t.Context(), "C77", "Board digest for project web\n  • k1 \"@everyone look\": in To do for 4 days")
	if err != nil {
		t.Fatal(err)
	}
	if parent := e.discord.Threads()[thread]; parent != "C77" {
		t.Fatalf("thread %q has parent %q, want C77 (threads %v)", thread, parent, e.discord.Threads())
	}
	msgs := e.discord.Messages("C77")
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Content, "Board digest for project web") || strings.Contains(msgs[0].Content, "@everyone") && !strings.Contains(msgs[0].Content, "@\u200beveryone") {
		t.Fatalf("messages in C77: %+v", msgs)
	}
	var sawNoMentions bool
	for _, c := range e.discord.Calls() {
		if am, ok := c.Body["allowed_mentions"].(map[string]any); ok && c.Content() == msgs[0].Content {
			if parse, ok := am["parse"].([]any); ok && len(parse) == 0 {
				sawNoMentions = true
			}
		}
	}
	if !sawNoMentions {
		t.Fatal("the post did not set allowed_mentions to parse nothing")
	}
	// In a thread, the post is a reply there.
	again, err := e.a.Post(t.Context(), thread, "Schedule s1 is paused after 3 failures in a row")
	if err != nil || again != thread {
		t.Fatalf("post in a thread: %q %v", again, err)
	}
}
