package store_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// TestLinkCodes covers chat-account link codes and identity listing on
// SQLite and (with HERO_TEST_MYSQL_URL) MariaDB.
func TestLinkCodes(t *testing.T) {
	storetest.EachURL(t, testLinkCodes)
}

func testLinkCodes(t *testing.T, url string) {
	db := storetest.OpenURL(t, url)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u, err := db.EnsureUser(ctx, uniq("linker")+"@example.com", "Linker")
	must(t, err)

	t.Run("codes are short, unambiguous and random", func(t *testing.T) {
		seen := map[string]bool{}
		for range 200 {
			c := store.NewLinkCode()
			if len(c) != 8 || strings.ContainsAny(c, "01OIUL") || strings.ToUpper(c) != c {
				t.Fatalf("NewLinkCode() = %q, want 8 upper-case characters without 0/O/1/I/L/U", c)
			}
			if seen[c] {
				t.Fatalf("NewLinkCode() repeated %q", c)
			}
			seen[c] = true
		}
	})

	t.Run("a code works once, as typed loosely", func(t *testing.T) {
		code := store.NewLinkCode()
		must(t, db.CreateLinkCode(ctx, u.ID, code, now.Add(store.LinkCodeTTL)))
		uid, err := db.UseLinkCode(ctx, " "+strings.ToLower(code[:4])+"-"+code[4:]+" ", now)
		if err != nil || uid != u.ID {
			t.Fatalf("UseLinkCode = %d, %v; want user %d", uid, err, u.ID)
		}
		if _, err := db.UseLinkCode(ctx, code, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second use: %v, want ErrNotFound", err)
		}
	})

	t.Run("expired, unknown and malformed codes are refused without echo", func(t *testing.T) {
		code := store.NewLinkCode()
		must(t, db.CreateLinkCode(ctx, u.ID, code, now.Add(time.Minute)))
		_, err := db.UseLinkCode(ctx, code, now.Add(2*time.Minute))
		if !errors.Is(err, store.ErrNotFound) || strings.Contains(err.Error(), code) {
			t.Fatalf("expired code: %v, want ErrNotFound without the code", err)
		}
		for _, bad := range []string{"", "ABCDEFGH", "TOO-LONG-CODE-123", store.NewLinkCode()} {
			if _, err := db.UseLinkCode(ctx, bad, now); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("UseLinkCode(%q): %v, want ErrNotFound", bad, err)
			}
		}
	})

	t.Run("link codes and login tokens never stand in for each other", func(t *testing.T) {
		code := store.NewLinkCode()
		must(t, db.CreateLinkCode(ctx, u.ID, code, now.Add(store.LinkCodeTTL)))
		// The table also holds admin login tokens, stored as the bare
		// hex SHA-256 of the token; nothing a person can type hashes to
		// a link code's row.
		var hashes []string
		must(t, db.Bun().NewSelect().Table("web_login_tokens").Column("token_hash").Where("user_id = ?", u.ID).Scan(ctx, &hashes))
		for _, h := range hashes {
			if strings.Contains(h, code) {
				t.Fatalf("a stored hash contains the code: %q", h)
			}
			if !strings.HasPrefix(h, "link:") {
				t.Fatalf("link code stored as %q, want the link: domain prefix", h)
			}
		}
		uid, err := db.UseLinkCode(ctx, code, now)
		if err != nil || uid != u.ID {
			t.Fatalf("UseLinkCode = %d, %v", uid, err)
		}
	})

	t.Run("only the newest code works", func(t *testing.T) {
		older, newer := store.NewLinkCode(), store.NewLinkCode()
		must(t, db.CreateLinkCode(ctx, u.ID, older, now.Add(store.LinkCodeTTL)))
		must(t, db.CreateLinkCode(ctx, u.ID, newer, now.Add(store.LinkCodeTTL)))
		if _, err := db.UseLinkCode(ctx, older, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("older code: %v, want ErrNotFound", err)
		}
		n, err := db.Bun().NewSelect().Table("web_login_tokens").Where("user_id = ?", u.ID).Count(ctx)
		must(t, err)
		if n != 1 {
			t.Fatalf("%d link code rows for the user, want 1", n)
		}
		if uid, err := db.UseLinkCode(ctx, newer, now); err != nil || uid != u.ID {
			t.Fatalf("newer code: %d, %v", uid, err)
		}
	})

	t.Run("concurrent uses: exactly one wins", func(t *testing.T) {
		code := store.NewLinkCode()
		must(t, db.CreateLinkCode(ctx, u.ID, code, now.Add(store.LinkCodeTTL)))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 4 {
			wg.Go(func() {
				if _, err := db.UseLinkCode(ctx, code, now); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d uses won, want exactly 1", wins)
		}
	})

	t.Run("identities of a user", func(t *testing.T) {
		other, err := db.EnsureUser(ctx, uniq("other")+"@example.com", "Other")
		must(t, err)
		team := uniq("T")
		must(t, db.LinkIdentity(ctx, "slack", team+"/U2", u.ID))
		must(t, db.LinkIdentity(ctx, "discord", team+"-d", u.ID))
		must(t, db.LinkIdentity(ctx, "slack", team+"/U9", other.ID))
		ids, err := db.IdentitiesOfUser(ctx, u.ID)
		must(t, err)
		var got []string
		for _, id := range ids {
			got = append(got, id.Provider+":"+id.ExternalID)
		}
		want := []string{"discord:" + team + "-d", "slack:" + team + "/U2"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("IdentitiesOfUser = %v, want %v", got, want)
		}
		// Re-linking moves the account to the new user.
		must(t, db.LinkIdentity(ctx, "slack", team+"/U2", other.ID))
		ids, err = db.IdentitiesOfUser(ctx, u.ID)
		must(t, err)
		if len(ids) != 1 || ids[0].Provider != "discord" {
			t.Fatalf("after re-link: %+v, want only the discord identity", ids)
		}
	})
}
