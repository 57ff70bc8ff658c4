package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// TestWebStore covers the settings page's tables on SQLite and (with
// HERO_TEST_MYSQL_URL) MariaDB.
func TestWebStore(t *testing.T) {
	storetest.EachURL(t, testWebStore)
}

func testWebStore(t *testing.T, url string) {
	db := storetest.OpenURL(t, url)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)

	u, err := db.EnsureUser(ctx, uniq("Person")+"@Example.com", "Person")
	must(t, err)
	again, err := db.EnsureUser(ctx, u.Email, "Another Name")
	must(t, err)
	if again.ID != u.ID || again.Name != "Person" {
		t.Fatalf("EnsureUser of an existing email: %+v, want the same user with its name kept", again)
	}

	t.Run("sessions", func(t *testing.T) {
		h1, h2 := uniq("s1"), uniq("s2")
		must(t, db.CreateSession(ctx, &store.WebSession{IDHash: h1, UserID: u.ID, CSRFToken: "c1", CreatedAt: now.Add(-2 * time.Hour), LastSeenAt: now.Add(-2 * time.Hour)}))
		must(t, db.CreateSession(ctx, &store.WebSession{IDHash: h2, UserID: u.ID, CSRFToken: "c2", CreatedAt: now, LastSeenAt: now}))
		s, err := db.SessionByHash(ctx, h1)
		must(t, err)
		if s.UserID != u.ID || s.CSRFToken != "c1" || !s.LastSeenAt.Equal(now.Add(-2*time.Hour)) {
			t.Fatalf("session: %+v", s)
		}
		must(t, db.TouchSession(ctx, h1, now))
		if s, _ := db.SessionByHash(ctx, h1); !s.LastSeenAt.Equal(now) {
			t.Fatalf("touched session: %+v", s)
		}
		// Created long ago: removed by the absolute limit even though active.
		n, err := db.DeleteExpiredSessions(ctx, now.Add(-time.Hour), now.Add(-time.Hour))
		must(t, err)
		if _, err := db.SessionByHash(ctx, h1); !errors.Is(err, store.ErrNotFound) || n < 1 {
			t.Fatalf("expired session still there (%d removed): %v", n, err)
		}
		must(t, db.DeleteSession(ctx, "no-such"))
		n, err = db.DeleteUserSessions(ctx, u.ID)
		must(t, err)
		if _, err := db.SessionByHash(ctx, h2); n != 1 || !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("logout everywhere removed %d: %v", n, err)
		}
	})

	t.Run("login token is spent once", func(t *testing.T) {
		h := uniq("tok")
		must(t, db.CreateLoginToken(ctx, &store.LoginToken{TokenHash: h, UserID: u.ID, ExpiresAt: now.Add(time.Hour)}))
		var wg sync.WaitGroup
		wins := make(chan int64, 8)
		for range 8 {
			wg.Go(func() {
				if id, err := db.UseLoginToken(ctx, h, now); err == nil {
					wins <- id
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		close(wins)
		if len(wins) != 1 || <-wins != u.ID {
			t.Fatal("a login token was spent other than exactly once")
		}
		old := uniq("old")
		must(t, db.CreateLoginToken(ctx, &store.LoginToken{TokenHash: old, UserID: u.ID, ExpiresAt: now.Add(-time.Second), Issuer: "replica-a"}))
		if _, err := db.UseLoginToken(ctx, old, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired token: %v", err)
		}
		pending := uniq("pending")
		must(t, db.CreateLoginToken(ctx, &store.LoginToken{TokenHash: pending, UserID: u.ID, ExpiresAt: now.Add(time.Hour), Issuer: "replica-a"}))
		// Another replica's link and the user's chat link code share the
		// table and the user: a start of replica-a leaves them alone.
		other := uniq("other")
		must(t, db.CreateLoginToken(ctx, &store.LoginToken{TokenHash: other, UserID: u.ID, ExpiresAt: now.Add(time.Hour), Issuer: "replica-b"}))
		must(t, db.CreateLinkCode(ctx, u.ID, "K7M2XQ9D", now.Add(time.Hour)))
		if n, err := db.RevokeAdminLinks(ctx, u.ID, "replica-a", now); err != nil || n != 2 { // the expired one and the pending one
			t.Fatalf("revoke: %d %v", n, err)
		}
		if _, err := db.UseLoginToken(ctx, pending, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked token still works: %v", err)
		}
		if id, err := db.UseLoginToken(ctx, other, now); err != nil || id != u.ID {
			t.Fatalf("another replica's admin link was revoked: %d %v", id, err)
		}
		if id, err := db.UseLinkCode(ctx, "K7M2XQ9D", now); err != nil || id != u.ID {
			t.Fatalf("the user's chat link code was revoked: %d %v", id, err)
		}
		if _, err := db.RevokeAdminLinks(ctx, u.ID, "", now); err == nil {
			t.Fatal("revoking without an issuer revoked everything")
		}
	})

	t.Run("oauth state is taken once", func(t *testing.T) {
		h := uniq("state")
		must(t, db.SaveOAuthState(ctx, &store.OAuthState{StateHash: h, Provider: "google", BindingHash: "b", Verifier: "v", Nonce: "n", Next: "/settings/runs", ExpiresAt: now.Add(time.Minute)}))
		s, err := db.TakeOAuthState(ctx, h, now)
		must(t, err)
		if s.Verifier != "v" || s.Next != "/settings/runs" || s.Provider != "google" {
			t.Fatalf("state: %+v", s)
		}
		if _, err := db.TakeOAuthState(ctx, h, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("state taken twice: %v", err)
		}
		late := uniq("late")
		must(t, db.SaveOAuthState(ctx, &store.OAuthState{StateHash: late, Provider: "github", BindingHash: "b", ExpiresAt: now.Add(-time.Second)}))
		if _, err := db.TakeOAuthState(ctx, late, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired state: %v", err)
		}
	})

	t.Run("secrets are audited", func(t *testing.T) {
		p := newProject(t, db)
		a, err := db.SetSecretAudited(ctx, p.ID, "TOKEN", []byte("v1"), "a@example.com")
		must(t, err)
		b, err := db.SetSecretAudited(ctx, p.ID, "TOKEN", []byte("v2"), "b@example.com")
		must(t, err)
		must(t, db.DeleteSecretAudited(ctx, p.ID, "TOKEN", "c@example.com"))
		if err := db.DeleteSecretAudited(ctx, p.ID, "TOKEN", "c@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleting a missing secret: %v", err)
		}
		if _, err := db.SetSecretAudited(ctx, p.ID, "bad name", []byte("v"), "x"); err == nil {
			t.Fatal("invalid name accepted")
		}
		log, err := db.ListSecretAudit(ctx, p.ID, 0)
		must(t, err)
		if a != store.SecretAdded || b != store.SecretReplaced || len(log) != 3 ||
			log[0].Action != store.SecretDeleted || log[0].Actor != "c@example.com" || log[2].Actor != "a@example.com" {
			t.Fatalf("audit %s %s: %+v", a, b, log)
		}
	})

	t.Run("projects of a user and admin flag", func(t *testing.T) {
		p1, p2 := newProject(t, db), newProject(t, db)
		newProject(t, db)
		must(t, db.SetMember(ctx, p1.ID, u.ID, store.RoleViewer))
		must(t, db.SetMember(ctx, p2.ID, u.ID, store.RoleAdmin))
		prs, err := db.ProjectsOfUser(ctx, u.ID)
		must(t, err)
		roles := map[string]store.Role{}
		for _, pr := range prs {
			roles[pr.Project.Name] = pr.Role
		}
		if len(roles) != 2 || roles[p1.Name] != store.RoleViewer || roles[p2.Name] != store.RoleAdmin {
			t.Fatalf("projects of user: %v", roles)
		}
		must(t, db.SetUserAdmin(ctx, u.ID, true))
		if got, _ := db.UserByID(ctx, u.ID); !got.IsAdmin {
			t.Fatal("admin flag not set")
		}
		if err := db.SetUserAdmin(ctx, 1<<40, true); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
	})

	t.Run("confirmations of a run", func(t *testing.T) {
		p := newProject(t, db)
		ex := newExecution(t, db, p.ID)
		for _, id := range []string{uniq("c"), uniq("c")} {
			must(t, db.CreateConfirmation(ctx, &store.Confirmation{ID: id, ExecutionID: ex.ID, ProjectID: p.ID, Kind: store.ConfirmKindTool,
				Tool: "git_push", Action: "push", Status: store.ConfirmPending, ExpiresAt: now.Add(time.Hour)}))
		}
		cs, err := db.ConfirmationsOf(ctx, ex.ID)
		must(t, err)
		if len(cs) != 2 {
			t.Fatalf("confirmations: %+v", cs)
		}
	})
}
