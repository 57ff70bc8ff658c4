package github

import (
	"testing"

	"github.com/hero-dev/hero/store"
)

// TestReplayedDeliveryStartsOneRun is issue 8 #12: the recorded payloads,
// sent again under a new X-GitHub-Delivery, start nothing new; the same
// object changed later (a re-label, another comment) is new work.
func TestReplayedDeliveryStartsOneRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	label := fixture(t, "issues.labeled.json", map[string]any{"label.name": "hero"})
	cmt := fixture(t, "issue_comment.created.json", map[string]any{"comment.body": "@hero fix the typo", "comment.author_association": "OWNER"})
	review := fixture(t, "testdata/pull_request_review.submitted.json", map[string]any{
		"review.state": "changes_requested", "review.body": "@hero please split the function", "review.author_association": "OWNER"})
	steps := []struct {
		event, id string
		body      []byte
		starts    int // total starts after this delivery
	}{
		{"issues", "label-1", label, 1},
		{"issues", "label-replayed", label, 1},
		{"issue_comment", "comment-1", cmt, 2},
		{"issue_comment", "comment-replayed", cmt, 2},
		{"pull_request_review", "review-1", review, 3},
		{"pull_request_review", "review-replayed", review, 3},
		// Unlabelled and labelled again later: updated_at moved on.
		{"issues", "relabel", fixture(t, "issues.labeled.json", map[string]any{"label.name": "hero", "issue.updated_at": "2019-05-16T09:00:00Z"}), 4},
		// Assigning hero at the same moment is another event.
		{"issues", "assigned", fixture(t, "issues.labeled.json", map[string]any{"action": "assigned", "assignee": map[string]any{"login": "hero-bot"}}), 5},
		{"issue_comment", "comment-2", fixture(t, "issue_comment.created.json", map[string]any{"comment.id": 492700401, "comment.body": "@hero fix the typo", "comment.author_association": "OWNER"}), 6},
	}
	for _, s := range steps {
		if code := e.deliver(s.event, s.id, s.body); code != 202 {
			t.Fatalf("%s: status %d", s.id, code)
		}
		if err := e.waitHandled(s.id); err != nil {
			t.Fatalf("%s: %v", s.id, err)
		}
		if got := len(e.rec().Starts()); got != s.starts {
			t.Fatalf("after %s: %d runs started, want %d", s.id, got, s.starts)
		}
	}

	// A delivery retried under its own id (after a crash in its handler)
	// is not its own replay: it still does its work.
	var p eventPayload
	p.Comment = &comment{ID: 5, UpdatedAt: "2020-01-01T00:00:00Z"}
	p.Action = "created"
	d := &store.Delivery{Source: Source, DeliveryID: "retried", Event: "issue_comment"}
	for range 2 {
		if first, err := e.svc.replayed(t.Context(), d, &p); err != nil || first != "" {
			t.Fatalf("retry of the same delivery: replay of %q, %v", first, err)
		}
	}
	d2 := &store.Delivery{Source: Source, DeliveryID: "other", Event: "issue_comment"}
	if first, _ := e.svc.replayed(t.Context(), d2, &p); first != "retried" {
		t.Fatalf("replay under another id: first = %q, want retried", first)
	}
}
