package github

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/hero-dev/hero/store"
)

// Redelivery says which webhook delivery logs the periodic redelivery job
// reads. GitHub never redelivers by itself, so a delivery that failed
// while hero was down is lost unless hero asks for it.
type Redelivery struct {
	// App reads the GitHub App's delivery log (GET /app/hook/deliveries,
	// authenticated with the App's JWT).
	App *AppCredentials
	// RepoHooks reads the delivery logs of repository webhooks in every
	// project repository on GitHub.
	RepoHooks bool
	// HookID is the repository webhook to read (GITHUB_HOOK_ID). 0
	// discovers them: the repository's hooks whose URL is HookURL, or,
	// when HookURL is "", whose URL path ends in /github/webhook.
	HookID  int64
	HookURL string
	// Window is how far back to look (GitHub keeps deliveries 3 days).
	Window time.Duration
}

// Limits of the redelivery job.
const (
	redeliveryMaxAttempts = 10
	redeliveryBatch       = 100
)

// redeliveryBackoff is the wait before asking again after the n-th
// failed request: 1, 2, 4 … minutes, at most an hour.
func redeliveryBackoff(n int) time.Duration {
	return min(time.Minute<<min(n-1, 6), time.Hour)
}

// RedeliverFailed reads the delivery logs r names, queues every failed
// delivery hero has neither received since nor queued before (and
// re-queues one whose redelivery failed as well), then asks
// GitHub to redeliver the queued ones that are due. A request is recorded
// before it is made and marked done only once GitHub accepted it: a
// failed request (or a crash) is retried later with backoff, and given up
// after redeliveryMaxAttempts. It returns how many redeliveries GitHub
// accepted; errors of one log or one request do not stop the others.
func (s *Service) RedeliverFailed(ctx context.Context, r Redelivery) (int, error) {
	if r.Window <= 0 {
		r.Window = 24 * time.Hour
	}
	var errs []error
	if r.App != nil {
		c, err := newClient(s.pub.apiURL, s.pub.rl, func(context.Context) (string, error) { return r.App.JWT() })
		if err != nil {
			return 0, err
		}
		list := func(ctx context.Context, opts *gh.ListCursorOptions) ([]*gh.HookDelivery, *gh.Response, error) {
			return c.Apps.ListHookDeliveries(ctx, opts)
		}
		if err := s.queueFailed(ctx, "app", list, r.Window); err != nil {
			errs = append(errs, fmt.Errorf("app hook: %w", err))
		}
	}
	if r.RepoHooks {
		if err := s.scanRepoHooks(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	n, err := s.requestRedeliveries(ctx, r.App)
	if err != nil {
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// scanRepoHooks queues the failed deliveries of hero's hook in each
// project repository.
func (s *Service) scanRepoHooks(ctx context.Context, r Redelivery) error {
	ps, err := s.cfg.Store.ListProjects(ctx)
	if err != nil {
		return fmt.Errorf("list projects: %w", err)
	}
	seen := map[string]bool{}
	var errs []error
	for _, p := range ps {
		host, repo, ok := parseRepoURL(p.RepoURL)
		key := strings.ToLower(repo.String())
		if !ok || seen[key] || !containsFold(s.hosts, host) {
			continue
		}
		seen[key] = true
		c := s.client(repo)
		ids := []int64{r.HookID}
		if r.HookID == 0 {
			if ids, err = s.heroHooks(ctx, c, repo, r.HookURL); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		for _, id := range ids {
			list := func(ctx context.Context, opts *gh.ListCursorOptions) ([]*gh.HookDelivery, *gh.Response, error) {
				return c.Repositories.ListHookDeliveries(ctx, repo.Owner, repo.Name, id, opts)
			}
			if err := s.queueFailed(ctx, fmt.Sprintf("repo:%s:%d", repo, id), list, r.Window); err != nil {
				errs = append(errs, fmt.Errorf("hook %d of %s: %w", id, repo, err))
			}
		}
	}
	return errors.Join(errs...)
}

// heroHooks lists repo's webhooks that point at hero.
func (s *Service) heroHooks(ctx context.Context, c *gh.Client, repo Repo, hookURL string) ([]int64, error) {
	hooks, _, err := c.Repositories.ListHooks(ctx, repo.Owner, repo.Name, &gh.ListOptions{PerPage: 100})
	if err != nil {
		return nil, fmt.Errorf("list the webhooks of %s (set GITHUB_HOOK_ID if the token may not read them): %w", repo, err)
	}
	want := strings.TrimRight(hookURL, "/")
	var ids []int64
	for _, h := range hooks {
		raw := h.GetConfig().GetURL()
		if raw == "" || !h.GetActive() {
			continue
		}
		if want != "" {
			if strings.EqualFold(strings.TrimRight(raw, "/"), want) {
				ids = append(ids, h.GetID())
			}
			continue
		}
		if u, err := url.Parse(raw); err == nil && strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/github/webhook") {
			ids = append(ids, h.GetID())
		}
	}
	return ids, nil
}

type deliveryLister func(ctx context.Context, opts *gh.ListCursorOptions) ([]*gh.HookDelivery, *gh.Response, error)

// queueFailed reads one delivery log (newest first) back to window and
// queues the deliveries whose every attempt failed and that hero never
// received.
func (s *Service) queueFailed(ctx context.Context, hook string, list deliveryLister, window time.Duration) error {
	since := s.cfg.Now().Add(-window)
	var failed []*gh.HookDelivery
	ok := map[string]bool{}
	opts := &gh.ListCursorOptions{PerPage: 100}
	for page := 0; page < 10; page++ {
		ds, resp, err := list(ctx, opts)
		if err != nil {
			return fmt.Errorf("list deliveries: %w", err)
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
	for _, d := range failed {
		guid := d.GetGUID()
		if guid == "" || ok[guid] {
			continue // a later attempt got through
		}
		if got, err := s.cfg.Store.DeliveryReceived(ctx, Source, guid); err != nil {
			return err
		} else if got {
			continue
		}
		ok[guid] = true // the newest failed attempt is the one to redeliver
		queued, err := s.cfg.Store.QueueRedelivery(ctx, &store.GitHubRedeliveryRequest{GUID: guid, Hook: hook, DeliveryID: d.GetID(), Event: d.GetEvent(), NextAttemptAt: s.cfg.Now()})
		if err != nil {
			return err
		}
		if !queued && d.DeliveredAt != nil {
			// Asked before: if GitHub's redelivery failed as well, ask again.
			if _, err := s.cfg.Store.RearmRedelivery(ctx, guid, d.GetID(), d.DeliveredAt.Time); err != nil {
				return err
			}
		}
	}
	return nil
}

// requestRedeliveries asks GitHub for the queued redeliveries that are
// due, each claimed first so replicas never ask for the same one at once.
func (s *Service) requestRedeliveries(ctx context.Context, app *AppCredentials) (int, error) {
	now := s.cfg.Now()
	due, err := s.cfg.Store.ClaimRedeliveries(ctx, now, redeliveryBatch, func(n int) time.Time { return now.Add(redeliveryBackoff(n)) })
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, r := range due {
		if got, err := s.cfg.Store.DeliveryReceived(ctx, Source, r.GUID); err != nil {
			errs = append(errs, err)
			continue
		} else if got {
			errs = append(errs, s.cfg.Store.SetRedeliveryStatus(ctx, r.GUID, store.RedeliveryRequested, "arrived before hero asked"))
			continue
		}
		if r.Attempts > redeliveryMaxAttempts {
			s.log.Error("github redelivery given up: GitHub's redeliveries kept failing", "delivery", r.GUID, "attempts", r.Attempts-1)
			errs = append(errs, s.cfg.Store.SetRedeliveryStatus(ctx, r.GUID, store.RedeliveryGaveUp, fmt.Sprintf("asked %d times; every redelivery failed", r.Attempts-1)))
			continue
		}
		err := s.redeliver(ctx, app, r)
		if err == nil {
			s.log.Info("asked github to redeliver a failed delivery", "delivery", r.GUID, "event", r.Event, "hook", r.Hook)
			errs = append(errs, s.cfg.Store.SetRedeliveryStatus(ctx, r.GUID, store.RedeliveryRequested, ""))
			n++
			continue
		}
		status := store.RedeliveryPending
		if r.Attempts >= redeliveryMaxAttempts {
			status = store.RedeliveryGaveUp
			s.log.Error("github redelivery given up", "delivery", r.GUID, "attempts", r.Attempts, "err", err)
		} else {
			s.log.Warn("github redelivery request failed; it will be asked again", "delivery", r.GUID, "attempt", r.Attempts, "retry_at", r.NextAttemptAt, "err", err)
		}
		errs = append(errs, fmt.Errorf("redeliver %s: %w", r.GUID, err))
		if serr := s.cfg.Store.SetRedeliveryStatus(ctx, r.GUID, status, err.Error()); serr != nil {
			errs = append(errs, serr)
		}
	}
	return n, errors.Join(errs...)
}

// redeliver makes one request to GitHub. 202 Accepted (go-github's
// AcceptedError) is success.
func (s *Service) redeliver(ctx context.Context, app *AppCredentials, r store.GitHubRedeliveryRequest) error {
	var err error
	switch {
	case r.Hook == "app":
		if app == nil {
			return errors.New("queued for the GitHub App's hook, but hero has no App credentials now")
		}
		var c *gh.Client
		if c, err = newClient(s.pub.apiURL, s.pub.rl, func(context.Context) (string, error) { return app.JWT() }); err != nil {
			return err
		}
		_, _, err = c.Apps.RedeliverHookDelivery(ctx, r.DeliveryID)
	case strings.HasPrefix(r.Hook, "repo:"):
		spec := strings.TrimPrefix(r.Hook, "repo:")
		i := strings.LastIndex(spec, ":")
		owner, name, found := strings.Cut(spec[:max(i, 0)], "/")
		hookID, perr := strconv.ParseInt(spec[i+1:], 10, 64)
		if i < 0 || !found || perr != nil {
			return fmt.Errorf("unreadable hook %q", r.Hook)
		}
		repo := Repo{Owner: owner, Name: name}
		_, _, err = s.client(repo).Repositories.RedeliverHookDelivery(ctx, owner, name, hookID, r.DeliveryID)
	default:
		return fmt.Errorf("unknown hook %q", r.Hook)
	}
	var accepted *gh.AcceptedError
	if err != nil && !errors.As(err, &accepted) {
		return err
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
