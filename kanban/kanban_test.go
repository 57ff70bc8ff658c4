package kanban_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// fixture is a project with people in every role.
type fixture struct {
	db      *store.DB
	svc     *kanban.Service
	project string
	roles   map[string]store.Role
}

func newFixture(t testing.TB, url string) *fixture {
	t.Helper()
	db := storetest.OpenURL(t, url)
	name := fmt.Sprintf("p%d", rand.Int64())
	if err := db.CreateProject(context.Background(), &store.Project{Name: name, RepoURL: "https://github.com/o/r", DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	svc, err := kanban.New(kanban.Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, svc: svc, project: name, roles: map[string]store.Role{
		"olga": "owner", "adam": "admin", "mia": "member", "vic": "viewer", "ann": "approver",
	}}
}

func (f *fixture) as(who string) kanban.Actor {
	return kanban.Actor{ID: "test:" + who, Surface: "cli", Role: func(context.Context, int64) (store.Role, error) {
		return f.roles[who], nil
	}}
}

func TestBoardRules(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		ctx := t.Context()

		b, err := f.svc.Board(ctx, f.as("vic"), f.project)
		if err != nil {
			t.Fatalf("a viewer reads the board: %v", err)
		}
		var got []string
		for _, c := range b.Columns {
			got = append(got, c.Name+"/"+c.Kind+"/"+c.Slug)
		}
		if want := "Backlog/backlog/backlog To do/todo/to-do In progress/doing/in-progress Review/review/review Done/done/done"; strings.Join(got, " ") != want {
			t.Fatalf("default columns = %v, want %s", got, want)
		}

		// Viewers read, members write, strangers see nothing.
		if _, _, err := f.svc.AddCard(ctx, f.as("vic"), kanban.NewCard{Project: f.project, Title: "x"}); kanban.KindOf(err) != kanban.Forbidden ||
			!strings.Contains(err.Error(), "needs the member role") || !strings.Contains(err.Error(), "you are viewer") {
			t.Fatalf("viewer adds a card: %v", err)
		}
		if _, err := f.svc.Board(ctx, f.as("nobody"), f.project); kanban.KindOf(err) != kanban.Forbidden || !strings.Contains(err.Error(), "not a member") {
			t.Fatalf("stranger reads the board: %v", err)
		}
		card, col, err := f.svc.AddCard(ctx, f.as("mia"), kanban.NewCard{Project: f.project, Title: "  Fix the login  ", Body: "It loops."})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(card.ID, "k") || len(card.ID) != 9 || col.Name != "To do" || card.Title != "Fix the login" || card.Creator != "test:mia" {
			t.Fatalf("card = %+v in %s", card, col.Name)
		}
		if _, err := f.svc.Card(ctx, f.as("nobody"), "", card.ID); kanban.KindOf(err) != kanban.NotFound {
			t.Fatalf("a stranger reads a card: %v (want the same answer as for a missing card)", err)
		}
		if _, err := f.svc.MoveCard(ctx, f.as("vic"), "", card.ID, "Done"); kanban.KindOf(err) != kanban.Forbidden {
			t.Fatalf("viewer moves a card: %v", err)
		}

		// Bad input: a specific message, nothing created.
		for _, tc := range []struct{ title, column, want string }{
			{"", "", "needs a title"},
			{"two\nlines", "", "one line"},
			{strings.Repeat("x", 300), "", "at most 256"},
			{"ok", "Doing-ish", `there is no column "Doing-ish"; the columns are Backlog, To do, In progress, Review, Done`},
		} {
			if _, _, err := f.svc.AddCard(ctx, f.as("mia"), kanban.NewCard{Project: f.project, Title: tc.title, Column: tc.column}); kanban.KindOf(err) != kanban.Invalid || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("add %q in %q: %v, want %q", tc.title, tc.column, err, tc.want)
			}
		}
		if _, _, err := f.svc.AddCard(ctx, f.as("mia"), kanban.NewCard{Project: "nope", Title: "x"}); kanban.KindOf(err) != kanban.NotFound || !strings.Contains(err.Error(), `no project named "nope"`) {
			t.Fatalf("unknown project: %v", err)
		}

		// Columns by name or slug; admins manage WIP limits, members do not.
		if err := f.svc.SetWIPLimit(ctx, f.as("mia"), f.project, "in-progress", 1); kanban.KindOf(err) != kanban.Forbidden || !strings.Contains(err.Error(), "needs the admin role") {
			t.Fatalf("member sets a WIP limit: %v", err)
		}
		if err := f.svc.SetWIPLimit(ctx, f.as("adam"), f.project, "in-progress", 1); err != nil {
			t.Fatal(err)
		}
		// Linking the board elsewhere is managing it: admins only.
		if _, err := f.svc.LinkBoard(ctx, f.as("mia"), f.project, kanban.Link{DiscordForum: "123"}); kanban.KindOf(err) != kanban.Forbidden || !strings.Contains(err.Error(), "needs the admin role") {
			t.Fatalf("member links the board: %v", err)
		}
		if _, err := f.svc.LinkBoard(ctx, f.as("adam"), f.project, kanban.Link{DiscordForum: "#general"}); kanban.KindOf(err) != kanban.Invalid || !strings.Contains(err.Error(), "is not a Discord channel id") {
			t.Fatalf("admin links a forum by name: %v", err)
		}
		if b, err := f.svc.LinkBoard(ctx, f.as("adam"), f.project, kanban.Link{DiscordForum: "123"}); err != nil || b.DiscordForum != "123" {
			t.Fatalf("admin links the board: %+v, %v", b, err)
		}
		m, err := f.svc.MoveCard(ctx, f.as("mia"), f.project, card.ID, "in progress")
		if err != nil || !m.Moved || m.From.Name != "To do" || m.To.Name != "In progress" {
			t.Fatalf("move = %+v, %v", m, err)
		}
		other, _, err := f.svc.AddCard(ctx, f.as("olga"), kanban.NewCard{Project: f.project, Title: "Second", Column: "Backlog"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.MoveCard(ctx, f.as("mia"), "", other.ID, "In progress")
		if kanban.KindOf(err) != kanban.WIPLimit || err.Error() != "In progress is at its WIP limit of 1 card; finish or move one out first" {
			t.Fatalf("move into a full column: %v", err)
		}
		if _, _, err := f.svc.AddCard(ctx, f.as("mia"), kanban.NewCard{Project: f.project, Title: "Third", Column: "In progress"}); kanban.KindOf(err) != kanban.WIPLimit {
			t.Fatalf("create into a full column: %v", err)
		}
		if _, err := f.svc.MoveCard(ctx, f.as("mia"), "other-project", card.ID, "Done"); kanban.KindOf(err) != kanban.NotFound {
			t.Fatalf("move with the wrong project: %v", err)
		}

		d, err := f.svc.Card(ctx, f.as("vic"), "", other.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Column.Name != "Backlog" || len(d.History) != 1 {
			t.Fatalf("the refused move changed the card: in %s, history %+v", d.Column.Name, d.History)
		}
		d, err = f.svc.Card(ctx, f.as("vic"), f.project, card.ID)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, h := range d.History {
			lines = append(lines, fmt.Sprintf("%s %s %s>%s %s", h.Actor, h.Action, h.FromColumn, h.ToColumn, h.Surface))
		}
		if want := "test:mia created >To do cli|test:mia moved To do>In progress cli"; strings.Join(lines, "|") != want {
			t.Fatalf("history = %q, want %q", lines, want)
		}

		// Edits check the version the editor saw.
		title := "Fix the login loop"
		e, err := f.svc.EditCard(ctx, f.as("mia"), "", card.ID, kanban.Edit{Title: &title, Version: d.Card.Version})
		if err != nil || e.Title != title {
			t.Fatalf("edit: %+v %v", e, err)
		}
		stale := "stale"
		if _, err := f.svc.EditCard(ctx, f.as("olga"), f.project, card.ID, kanban.Edit{Title: &stale, Version: d.Card.Version}); kanban.KindOf(err) != kanban.Conflict {
			t.Fatalf("stale edit: %v", err)
		}
	})
}

// TestConcurrentMoves: ten people move twenty cards at random, two
// hundred moves in all, through two database handles (two replicas). No
// move is lost: every card ends where its last history line says, each
// card's history is an unbroken chain, and no two cards share a position.
func TestConcurrentMoves(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		second, err := kanban.New(kanban.Config{Store: storetest.OpenURL(t, url)})
		if err != nil {
			t.Fatal(err)
		}
		checkConcurrentMoves(t, f, []*kanban.Service{f.svc, second}, 20, 10, 200)
	})
}

func checkConcurrentMoves(t testing.TB, f *fixture, svcs []*kanban.Service, cards, people, moves int) {
	ctx := context.Background()
	var ids []string
	for i := range cards {
		c, _, err := f.svc.AddCard(ctx, f.as("mia"), kanban.NewCard{Project: f.project, Title: fmt.Sprintf("card %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	cols := []string{"Backlog", "To do", "In progress", "Review", "Done"}
	var wg sync.WaitGroup
	errs := make(chan error, moves)
	var mu sync.Mutex
	moved := 0
	for p := range people {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := svcs[p%len(svcs)]
			a := kanban.Actor{ID: fmt.Sprintf("test:person%d", p), Surface: "web", Role: func(context.Context, int64) (store.Role, error) { return store.RoleMember, nil }}
			for range moves / people {
				m, err := svc.MoveCard(ctx, a, "", ids[rand.IntN(len(ids))], cols[rand.IntN(len(cols))])
				if err != nil {
					errs <- err
					return
				}
				if m.Moved {
					mu.Lock()
					moved++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent move: %v", err)
	}
	b, err := f.svc.Board(ctx, f.as("vic"), f.project)
	if err != nil {
		t.Fatal(err)
	}
	historyMoves := 0
	for _, col := range b.Columns {
		seen := map[int]string{}
		for _, c := range col.Cards {
			if prev, ok := seen[c.Position]; ok {
				t.Fatalf("cards %s and %s share position %d in %s", prev, c.ID, c.Position, col.Name)
			}
			seen[c.Position] = c.ID
			if !slices.Contains(ids, c.ID) {
				continue // a card of an earlier round
			}
			h, err := f.db.CardHistory(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			at := h[0].ToColumn
			for _, e := range h[1:] {
				if e.FromColumn != at {
					t.Fatalf("card %s: history says it moved from %s while it was in %s (a lost update)", c.ID, e.FromColumn, at)
				}
				at = e.ToColumn
				historyMoves++
			}
			if at != col.Name {
				t.Fatalf("card %s is in %s but its history ends in %s", c.ID, col.Name, at)
			}
		}
	}
	if historyMoves != moved {
		t.Fatalf("%d moves reported, %d in the history", moved, historyMoves)
	}
}

// screen is a place that shows cards (a chat message per card, an
// issue's label), as a remote system does: each write lands a little
// later than it was sent, and the last write to land wins.
type screen struct {
	mu   sync.Mutex
	cols map[string]string // card id → column shown
}

func (s *screen) CardCreated(_ context.Context, _ *store.Project, c *store.KanbanCard, col *store.KanbanColumn) (kanban.Links, error) {
	return kanban.Links{}, s.CardMoved(context.Background(), nil, c, col)
}

func (s *screen) CardMoved(_ context.Context, _ *store.Project, c *store.KanbanCard, to *store.KanbanColumn) error {
	time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cols[c.ID] = to.Name
	return nil
}

// TestConcurrentMovesConvergeEverywhere: 200 moves across 20 cards by 10
// people through two replicas, each showing the cards on the same two
// remote places with jittered writes: afterwards every place shows every
// card in the column the database has it in.
func TestConcurrentMovesConvergeEverywhere(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		places := []*screen{{cols: map[string]string{}}, {cols: map[string]string{}}}
		var svcs []*kanban.Service
		for range 2 {
			svc, err := kanban.New(kanban.Config{Store: storetest.OpenURL(t, url), Projections: []kanban.Projection{places[0], places[1]}})
			if err != nil {
				t.Fatal(err)
			}
			svcs = append(svcs, svc)
		}
		f.svc = svcs[0]
		checkConcurrentMoves(t, f, svcs, 20, 10, 200)
		b, err := f.svc.Board(t.Context(), f.as("vic"), f.project)
		if err != nil {
			t.Fatal(err)
		}
		for i, pl := range places {
			for _, col := range b.Columns {
				for _, c := range col.Cards {
					pl.mu.Lock()
					shown := pl.cols[c.ID]
					pl.mu.Unlock()
					if shown != col.Name {
						t.Errorf("place %d shows card %s in %q; the database has it in %s", i, c.ID, shown, col.Name)
					}
				}
			}
		}
	})
}
