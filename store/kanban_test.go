package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

func boardOf(t *testing.T, db *store.DB, name string) (*store.Project, *store.KanbanBoard, []store.KanbanColumn) {
	t.Helper()
	p := storetest.Project(t, db, name, "https://github.com/o/"+name)
	b, cols, err := db.EnsureBoard(t.Context(), p.ID, "Board", []store.KanbanColumn{
		{Name: "To do", Slug: "to-do", Kind: store.KindTodo}, {Name: "Done", Slug: "done", Kind: store.KindDone}})
	if err != nil {
		t.Fatal(err)
	}
	return p, b, cols
}

func addCard(t *testing.T, db *store.DB, p *store.Project, b *store.KanbanBoard, col store.KanbanColumn, title string, issue int) (*store.KanbanCard, error) {
	t.Helper()
	c := &store.KanbanCard{ProjectID: p.ID, BoardID: b.ID, ColumnID: col.ID, Title: title, IssueNumber: issue}
	return c, db.CreateCard(t.Context(), c, "test", "cli", "", nil)
}

// TestOneCardPerIssue: a project has at most one card per GitHub issue;
// any number of cards have none.
func TestOneCardPerIssue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		p, b, cols := boardOf(t, db, fmt.Sprintf("one-card-%d", rand.Int64()))
		for _, title := range []string{"no issue 1", "no issue 2"} {
			if _, err := addCard(t, db, p, b, cols[0], title, 0); err != nil {
				t.Fatalf("a card without an issue: %v", err)
			}
		}
		first, err := addCard(t, db, p, b, cols[0], "issue 7", 7)
		if err != nil {
			t.Fatal(err)
		}
		second, err := addCard(t, db, p, b, cols[1], "issue 7 again", 7)
		if !errors.Is(err, store.ErrIssueHasCard) || !strings.Contains(err.Error(), first.ID) || second.ID != "" {
			t.Fatalf("a second card of issue #7: %v (id %q), want ErrIssueHasCard naming %s", err, second.ID, first.ID)
		}
		// The unique key itself, not only CreateCard's look-up, refuses
		// a second link to the issue.
		other, err := addCard(t, db, p, b, cols[0], "linked later", 0)
		if err != nil {
			t.Fatal(err)
		}
		other.IssueNumber = 7
		if err := db.UpdateCard(ctx, other, "test", "cli", store.CardLinked, ""); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("linking a second card to issue #7: %v, want ErrConflict", err)
		}
		if c, err := db.CardByIssue(ctx, p.ID, 7); err != nil || c.ID != first.ID {
			t.Fatalf("the card of issue #7: %v, %v", c, err)
		}
		// Another project's issue #7 is another issue.
		p2, b2, cols2 := boardOf(t, db, p.Name+"-2")
		if _, err := addCard(t, db, p2, b2, cols2[0], "issue 7 of another repository", 7); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOneCardPerIssueMigration: cards that already share an issue when
// the unique key arrives keep the oldest as the issue's card; the others
// are unlinked, and their history says so.
func TestOneCardPerIssueMigration(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	for _, q := range []string{"DROP INDEX uq_kanban_cards_project_id_issue_key", "ALTER TABLE kanban_cards DROP COLUMN issue_key"} {
		if _, err := db.Bun().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	p, b, cols := boardOf(t, db, "dups")
	oldest, err := addCard(t, db, p, b, cols[0], "first", 9)
	if err != nil {
		t.Fatal(err)
	}
	dup, err := addCard(t, db, p, b, cols[0], "second", 0)
	if err != nil {
		t.Fatal(err)
	}
	dup.IssueNumber, dup.IssueURL = 9, "https://github.com/o/dups/issues/9"
	if err := db.UpdateCard(ctx, dup, "test", "cli", store.CardLinked, ""); err != nil {
		t.Fatalf("the duplicate, before the migration: %v", err)
	}
	if err := store.OneCardPerIssue(db, ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := db.CardByIssue(ctx, p.ID, 9); err != nil || c.ID != oldest.ID {
		t.Fatalf("the card of issue #9 after the migration: %v, %v (want %s)", c, err, oldest.ID)
	}
	got, err := db.Card(ctx, dup.ID)
	if err != nil {
		t.Fatal(err)
	}
	h, err := db.CardHistory(ctx, dup.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.IssueNumber != 0 || got.IssueURL != "" || !strings.Contains(h[len(h)-1].Note, "no longer the card of issue #9: card "+oldest.ID+" is") {
		t.Fatalf("the duplicate after the migration: %+v, last history %+v", got, h[len(h)-1])
	}
	if _, err := addCard(t, db, p, b, cols[0], "third", 9); !errors.Is(err, store.ErrIssueHasCard) {
		t.Fatalf("a third card of issue #9: %v", err)
	}
}
