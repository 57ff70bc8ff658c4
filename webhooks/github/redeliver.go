package github

import (
	"context"
	"errors"
	"fmt"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// RedeliverFailed asks GitHub to send again the App's recent deliveries
// that failed (hero was down, or answered an error) and that hero has
// neither received since nor asked for before: GitHub never redelivers
// by itself. It looks back window (GitHub keeps deliveries three days) and
// returns how many redeliveries it requested. It needs App credentials
// (GET /app/hook/deliveries takes the App's JWT).
func (s *Service) RedeliverFailed(ctx context.Context, app *AppCredentials, window time.Duration) (int, error) {
	if app == nil {
		return 0, errors.New("redeliver: needs GitHub App credentials")
	}
	c, err := newClient(s.cfg.APIURL, s.rl, func(context.Context) (string, error) { return app.JWT() })
	if err != nil {
		return 0, err
	}
	since := s.cfg.Now().Add(-window)
	var failed []*gh.HookDelivery
	ok := map[string]bool{}
	opts := &gh.ListCursorOptions{PerPage: 100}
	for page := 0; page < 10; page++ {
		ds, resp, err := c.Apps.ListHookDeliveries(ctx, opts)
		if err != nil {
			return 0, fmt.Errorf("list app hook deliveries: %w", err)
		}
		old := false
		for _, d := range ds {
			if d.DeliveredAt != nil && d.DeliveredAt.Before(since) {
				old = true
				continue
			}
			if code := d.GetStatusCode(); code >= 200 && code < 300 {
				ok[d.GetGUID()] = true
			} else {
				failed = append(failed, d)
			}
		}
		if old || resp.Cursor == "" {
			break
		}
		opts.Cursor = resp.Cursor
	}
	n := 0
	for _, d := range failed {
		guid := d.GetGUID()
		if guid == "" || ok[guid] {
			continue // a later attempt got through
		}
		if got, err := s.cfg.Store.DeliveryReceived(ctx, Source, guid); err != nil {
			return n, err
		} else if got {
			continue
		}
		first, err := s.cfg.Store.MarkRedelivery(ctx, guid)
		if err != nil {
			return n, err
		}
		if !first {
			continue
		}
		if _, _, err := c.Apps.RedeliverHookDelivery(ctx, d.GetID()); err != nil {
			var accepted *gh.AcceptedError
			if !errors.As(err, &accepted) {
				return n, fmt.Errorf("redeliver %s: %w", guid, err)
			}
		}
		s.log.Info("asked github to redeliver a failed delivery", "delivery", guid, "event", d.GetEvent())
		ok[guid] = true
		n++
	}
	return n, nil
}
