package github

import (
	"context"
	"fmt"
	"strings"

	"github.com/hero-dev/hero/store"
)

// A delivery replayed with a new X-GitHub-Delivery (GitHub's "Redeliver"
// button, a proxy or an attacker resending a signed body) passes the
// inbox's delivery-id dedupe. What it is does not change, though: the
// event, the action, the object it is about, what changed (the label or
// assignee) and the object's updated_at. hero acts on that once; a later
// change of the same object (a re-label after an unlabel) has a new
// updated_at and is new work.

// replayKey names what a trigger delivery is, or "" when the payload
// lacks what would identify it (then only the delivery id dedupes).
func replayKey(event string, p *eventPayload) string {
	var parts []string
	switch {
	case event == "issue_comment" && p.Comment != nil:
		parts = []string{fmt.Sprint(p.Comment.ID), p.Comment.UpdatedAt}
	case event == "pull_request_review_comment" && p.Comment != nil:
		parts = []string{fmt.Sprint(p.Comment.ID), p.Comment.UpdatedAt}
	case event == "pull_request_review" && p.Review != nil:
		parts = []string{fmt.Sprint(p.Review.ID), p.Review.SubmittedAt}
	case event == "issues" && p.Issue != nil:
		what := ""
		switch {
		case p.Action == "labeled" && p.Label != nil:
			what = "label:" + p.Label.Name
		case p.Action == "assigned" && p.Assignee != nil:
			what = "assignee:" + strings.ToLower(p.Assignee.Login)
		}
		parts = []string{fmt.Sprint(p.Issue.ID), what, p.Issue.UpdatedAt}
	default:
		return ""
	}
	if parts[0] == "0" || parts[len(parts)-1] == "" {
		return ""
	}
	repo := ""
	if p.Repository != nil {
		repo = strings.ToLower(p.Repository.FullName)
	}
	return hashKey(strings.Join(append([]string{event, p.Action, repo}, parts...), "\x00"))
}

// replayed claims d's replay key for d. It returns the id of the delivery
// that claimed it first when that was another one (d is a replay), else
// "" — also when d itself claimed it on an earlier attempt, so a retried
// delivery still does its work.
func (s *Service) replayed(ctx context.Context, d *store.Delivery, p *eventPayload) (string, error) {
	key := replayKey(d.Event, p)
	if key == "" {
		return "", nil
	}
	first, err := s.cfg.Store.ClaimOnce(ctx, onceReplay, key, d.DeliveryID, s.cfg.Now())
	if err != nil {
		return "", fmt.Errorf("check for a replayed delivery: %w", err)
	}
	if first == d.DeliveryID {
		return "", nil
	}
	return first, nil
}
