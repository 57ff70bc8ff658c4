package bot_test

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/refusal"
	"github.com/hero-dev/hero/store"
)

// fakeBoard is a bot.Board that records what chat asked of it.
type fakeBoard struct {
	mu    sync.Mutex
	added []string // "who surface project: title (role)"
	fail  error
}

var _ bot.Board = (*fakeBoard)(nil)

func (b *fakeBoard) AddCard(ctx context.Context, who bot.BoardActor, project, title string) (*store.KanbanCard, string, error) {
	if b.fail != nil {
		return nil, "", b.fail
	}
	role, err := who.Role(ctx, 1)
	if err != nil {
		return nil, "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.added = append(b.added, who.ID+" "+who.Surface+" "+project+": "+title+" ("+string(role)+")")
	return &store.KanbanCard{ID: "k" + strconv.Itoa(len(b.added)), Title: title, IssueURL: "https://github.com/o/web/issues/9"}, "To do", nil
}

func (b *fakeBoard) Columns(context.Context, bot.BoardActor, string) ([]bot.BoardColumn, error) {
	if b.fail != nil {
		return nil, b.fail
	}
	return []bot.BoardColumn{
		{Name: "To do", WIPLimit: 3, Cards: []store.KanbanCard{{ID: "k1", Title: "Ping <!channel> @ana"}}},
		{Name: "Done"},
	}, nil
}

// /hero card and /hero board go through the Board port the dispatcher was
// built with: the card is added for the person with their engine role,
// the board is listed column by column with titles made inert, a refusal
// of the board's rules is told in its own words and any other failure is
// returned for a retry.
func TestDispatchBoardPort(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	board := &fakeBoard{}
	d, err := bot.NewDispatcher(f.eng, f.db, context.Background, nil, nil, bot.WithBoard(board))
	if err != nil {
		t.Fatal(err)
	}
	rita := bot.Actor{Surface: "github", ID: "rita", Permission: "write"}
	place := bot.Place{Surface: "github", Project: f.project, Thread: "o/web#3"}
	ask := func(text string) (*fakeConv, error) {
		conv := &fakeConv{}
		return conv, d.Dispatch(t.Context(), &bot.Request{Command: parse(t, text), Actor: rita, Place: place}, directory{f.db}, conv)
	}

	conv, err := ask("card Write the release notes")
	if err != nil {
		t.Fatal(err)
	}
	if len(board.added) != 1 || board.added[0] != "github:rita github web: Write the release notes (member)" {
		t.Fatalf("board was asked %q", board.added)
	}
	if got := conv.texts(); len(got) != 1 || got[0] != "Card `k1` created in To do on the board of *web*. Its issue: https://github.com/o/web/issues/9" {
		t.Fatalf("card: said %q", got)
	}

	conv, err = ask("board")
	if err != nil {
		t.Fatal(err)
	}
	want := "Board of *web*:\n*To do* (1 of 3)\n  • Ping ‹!channel› @\u200bana `k1`\n*Done* (0)"
	if got := conv.texts(); len(got) != 1 || got[0] != want {
		t.Fatalf("board: said %q, want %q", got, want)
	}

	board.fail = refusal.New(refusal.Forbidden, "viewers cannot add cards to the board of web")
	conv, err = ask("card Sneak one in")
	if err != nil {
		t.Fatal(err)
	}
	if got := conv.texts(); len(got) != 1 || got[0] != "Viewers cannot add cards to the board of web." || conv.said[0].Kind != bot.Refusal {
		t.Fatalf("refusal: said %q", got)
	}

	board.fail = errors.New("database is locked")
	conv, err = ask("board")
	if err == nil || !strings.Contains(err.Error(), "database is locked") || len(conv.texts()) != 0 {
		t.Fatalf("a failure was not returned for a retry: %v, said %q", err, conv.texts())
	}
}

// bot is the conversation layer under the board, not over it: kanban
// depends on bot (ARCHITECTURE's package table), so no file of package
// bot imports kanban; the board comes in through the Board port.
func TestBotDoesNotImportKanban(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("list bot's files: %v", err)
	}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/hero-dev/hero/kanban" || strings.HasPrefix(p, "github.com/hero-dev/hero/kanban/") {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
