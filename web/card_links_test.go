package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// TestCardPageShowsLinksAndRuns: the card page shows where the card
// lives (its issue, its pull request, its chat threads) and its runs,
// each linked, to anyone who may read the board.
func TestCardPageShowsLinksAndRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.project("shop", map[string]store.Role{"vic@example.com": store.RoleViewer})
	vic := e.browser()
	vic.login("google", "vic@example.com")
	ctx := t.Context()
	svc, owner := boardOwner(t, e.db, "test")
	c, _, err := svc.AddCard(ctx, owner, kanban.NewCard{Project: "shop", Title: "Speed up checkout"})
	if err != nil {
		t.Fatal(err)
	}
	c, err = e.db.Card(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.IssueNumber, c.IssueURL, c.PRURL = 12, "https://github.com/acme/shop/issues/12", "https://github.com/acme/shop/pull/13"
	if err := e.db.UpdateCard(ctx, c, "hero", "hero", store.CardLinked, "issue and pull request"); err != nil {
		t.Fatal(err)
	}
	if err := e.db.AddCardThread(ctx, c.ID, "slack", "T1/C1/171.2"); err != nil {
		t.Fatal(err)
	}
	if err := e.db.AddCardRun(ctx, c.ID, "r7x2kq9pa"); err != nil {
		t.Fatal(err)
	}
	st, page := vic.get("/settings/projects/shop/board/cards/" + c.ID)
	if st != 200 {
		t.Fatalf("card page: %d", st)
	}
	for _, want := range []string{`href="https://github.com/acme/shop/issues/12"`, `href="https://github.com/acme/shop/pull/13"`,
		`href="/settings/runs/r7x2kq9pa"`} {
		if !strings.Contains(page, want) {
			t.Errorf("card page lacks %s", want)
		}
	}
	for _, want := range []string{"Issue #12", "Pull request https://github.com/acme/shop/pull/13", "Thread slack T1/C1/171.2", "Run r7x2kq9pa"} {
		if !strings.Contains(text(page), want) {
			t.Errorf("card page lacks %q: %s", want, text(page))
		}
	}
}

// TestBoardSettingsDiscordForum: an admin links the board to a Discord
// forum on the page (DECISIONS: the page as well as hero board link); a
// forum given by name is refused with what to give instead, and nothing
// is saved.
func TestBoardSettingsDiscordForum(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.project("shop", map[string]store.Role{"ada@example.com": store.RoleAdmin})
	ada := e.browser()
	ada.login("google", "ada@example.com")
	base := "/settings/projects/shop/board"
	if st, _, body := ada.post(base+"/settings", url.Values{"discord_forum": {"#board"}}); st != http.StatusBadRequest || !strings.Contains(text(body), `"#board" is not a Discord channel id`) {
		t.Fatalf("a forum by name: %d %s", st, text(body))
	}
	if _, page := ada.get(base); !strings.Contains(page, `name="discord_forum" value=""`) {
		t.Fatal("a refused forum was saved")
	}
	if st, loc, _ := ada.post(base+"/settings", url.Values{"discord_forum": {"123456789012345678"}}); st != http.StatusSeeOther || loc != base+"?ok=board-saved" {
		t.Fatalf("save: %d %s", st, loc)
	}
	if _, page := ada.get(base); !strings.Contains(page, `name="discord_forum" value="123456789012345678"`) {
		t.Fatal("the forum is not shown after saving")
	}
}
