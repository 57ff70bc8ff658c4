package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// TestGitHubTables covers the GitHub surface's tables (OAuth tokens,
// progress comments, requested redeliveries) on SQLite and, with
// HERO_TEST_MYSQL_URL, MariaDB.
func TestGitHubTables(t *testing.T) {
	storetest.EachURL(t, testGitHubTables)
}

func testGitHubTables(t *testing.T, url string) {
	db := storetest.OpenURL(t, url)
	ctx := t.Context()

	// OAuth tokens: encrypted at rest, replaced on refresh.
	account := uniq("octo")
	if _, err := db.GitHubToken(ctx, account); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing token: %v", err)
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	must(t, db.SaveGitHubToken(ctx, account, store.OAuthToken{AccessToken: "gho_access1", RefreshToken: "ghr_refresh1", Expiry: exp}))
	must(t, db.SaveGitHubToken(ctx, account, store.OAuthToken{AccessToken: "gho_access2", RefreshToken: "ghr_refresh2", Expiry: exp}))
	tok, err := db.GitHubToken(ctx, account)
	must(t, err)
	if tok.AccessToken != "gho_access2" || tok.RefreshToken != "ghr_refresh2" || !tok.Expiry.Equal(exp) {
		t.Fatalf("token %+v", tok)
	}
	var raw store.GitHubOAuthToken
	must(t, db.Bun().NewSelect().Model(&raw).Where("account = ?", account).Scan(ctx))
	if string(raw.AccessToken) == "gho_access2" || string(raw.RefreshToken) == "ghr_refresh2" {
		t.Fatal("token stored in clear")
	}

	// Progress comments.
	p := newProject(t, db)
	e := newExecution(t, db, p.ID)
	if _, err := db.GitHubProgressComment(ctx, e.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing progress: %v", err)
	}
	must(t, db.SetGitHubProgress(ctx, e.ID, 41))
	must(t, db.SetGitHubProgress(ctx, e.ID, 42))
	if id, err := db.GitHubProgressComment(ctx, e.ID); err != nil || id != 42 {
		t.Fatalf("progress comment %d %v", id, err)
	}

	// Redeliveries are asked once.
	guid := uniq("guid")
	if first, err := db.MarkRedelivery(ctx, guid); err != nil || !first {
		t.Fatalf("first mark %v %v", first, err)
	}
	if again, err := db.MarkRedelivery(ctx, guid); err != nil || again {
		t.Fatalf("second mark %v %v", again, err)
	}

	// Redelivery requests: queued once, claimed once per due time, retried
	// until GitHub accepts them.
	rguid := uniq("rguid")
	req := &store.GitHubRedeliveryRequest{GUID: rguid, Hook: "repo:o/r:7", DeliveryID: 99, Event: "issue_comment"}
	if first, err := db.QueueRedelivery(ctx, req); err != nil || !first {
		t.Fatalf("queue %v %v", first, err)
	}
	if again, err := db.QueueRedelivery(ctx, &store.GitHubRedeliveryRequest{GUID: rguid, Hook: "app"}); err != nil || again {
		t.Fatalf("queue again %v %v", again, err)
	}
	t0 := time.Now()
	retryAt := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	claimed, err := db.ClaimRedeliveries(ctx, t0.Add(time.Second), 10, retryAt)
	must(t, err)
	var mine *store.GitHubRedeliveryRequest
	for i := range claimed {
		if claimed[i].GUID == rguid {
			mine = &claimed[i]
		}
	}
	if mine == nil || mine.Attempts != 1 || mine.Hook != "repo:o/r:7" || mine.DeliveryID != 99 {
		t.Fatalf("claimed %+v", claimed)
	}
	// Not due again until its retry time, even for another replica.
	if again, err := db.ClaimRedeliveries(ctx, t0.Add(30*time.Second), 10, retryAt); err != nil || slicesHasGUID(again, rguid) {
		t.Fatalf("claimed twice: %+v %v", again, err)
	}
	must(t, db.SetRedeliveryStatus(ctx, rguid, store.RedeliveryPending, "502 Bad Gateway"))
	later, err := db.ClaimRedeliveries(ctx, t0.Add(2*time.Minute), 10, retryAt)
	must(t, err)
	if !slicesHasGUID(later, rguid) {
		t.Fatalf("a failed request was not retried: %+v", later)
	}
	must(t, db.SetRedeliveryStatus(ctx, rguid, store.RedeliveryRequested, ""))
	if r, err := db.RedeliveryRequest(ctx, rguid); err != nil || r.Status != store.RedeliveryRequested || r.Attempts != 2 {
		t.Fatalf("request %+v %v", r, err)
	}
	if done, err := db.ClaimRedeliveries(ctx, t0.Add(time.Hour), 10, retryAt); err != nil || slicesHasGUID(done, rguid) {
		t.Fatalf("requested one claimed again: %v", err)
	}
	// The redelivery failed too: an attempt older than the request does
	// not re-arm it, a newer one does, once.
	if ok, err := db.RearmRedelivery(ctx, rguid, 100, time.Now().Add(-time.Hour)); err != nil || ok {
		t.Fatalf("re-armed by an older attempt: %v %v", ok, err)
	}
	if ok, err := db.RearmRedelivery(ctx, rguid, 100, time.Now().Add(time.Minute)); err != nil || !ok {
		t.Fatalf("not re-armed: %v %v", ok, err)
	}
	if ok, err := db.RearmRedelivery(ctx, rguid, 100, time.Now().Add(time.Minute)); err != nil || ok {
		t.Fatalf("re-armed twice: %v %v", ok, err)
	}
	if r, err := db.RedeliveryRequest(ctx, rguid); err != nil || r.Status != store.RedeliveryPending || r.DeliveryID != 100 || r.Attempts != 2 {
		t.Fatalf("re-armed request %+v %v", r, err)
	}

	// DeliveryReceived sees the inbox.
	id := uniq("delivery")
	if ok, err := db.DeliveryReceived(ctx, "github", id); err != nil || ok {
		t.Fatalf("before enqueue %v %v", ok, err)
	}
	_, err = db.Enqueue(ctx, "github", id, "ping", []byte("{}"))
	must(t, err)
	if ok, err := db.DeliveryReceived(ctx, "github", id); err != nil || !ok {
		t.Fatalf("after enqueue %v %v", ok, err)
	}
}

func slicesHasGUID(rs []store.GitHubRedeliveryRequest, guid string) bool {
	for _, r := range rs {
		if r.GUID == guid {
			return true
		}
	}
	return false
}
