package kanban

import (
	"context"
	"fmt"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/store"
)

// ChatSource is what chat needs of a board: adding a card and reading
// the columns. *Service is one.
type ChatSource interface {
	AddCard(ctx context.Context, a Actor, n NewCard) (*store.KanbanCard, *store.KanbanColumn, error)
	Board(ctx context.Context, a Actor, project string) (*Board, error)
}

// ChatBoard is what a chat surface asks of the board: what Chat needs
// for /hero card and /hero board, and moving a card from the surface's
// own controls (Slack's Move ▸ and Start, Discord's forum tags). The
// Slack and Discord adapters both take one; *Service is one.
type ChatBoard interface {
	ChatSource
	MoveCard(ctx context.Context, a Actor, project, id, column string) (*Move, error)
}

var _ ChatBoard = (*Service)(nil)

// Chat is b as the dispatcher's /hero card and /hero board use it
// (bot.Board); nil when b is nil. The board's rules, and their refusals,
// are b's.
func Chat(b ChatSource) bot.Board {
	if b == nil {
		return nil
	}
	return chat{b}
}

type chat struct{ b ChatSource }

func actor(who bot.BoardActor) Actor {
	return Actor{ID: who.ID, Surface: who.Surface, Role: who.Role}
}

func (c chat) AddCard(ctx context.Context, who bot.BoardActor, project, title string) (*store.KanbanCard, string, error) {
	card, col, err := c.b.AddCard(ctx, actor(who), NewCard{Project: project, Title: title})
	if err != nil {
		return nil, "", err
	}
	return card, col.Name, nil
}

func (c chat) Columns(ctx context.Context, who bot.BoardActor, project string) ([]bot.BoardColumn, error) {
	b, err := c.b.Board(ctx, actor(who), project)
	if err != nil {
		return nil, err
	}
	out := make([]bot.BoardColumn, 0, len(b.Columns))
	for _, col := range b.Columns {
		out = append(out, bot.BoardColumn{Name: col.Name, WIPLimit: col.WIPLimit, Cards: col.Cards})
	}
	return out, nil
}

// ThreadCards is what CardThreadRun reads (*store.DB).
type ThreadCards interface {
	CardByThread(ctx context.Context, surface, threadRef string) (*store.KanbanCard, error)
	CardRuns(ctx context.Context, cardID string) ([]string, error)
}

// CardThreadRun is the id of the latest run of the card whose chat thread
// on surface ref is (a reply there steers it); store.ErrNotFound when ref
// is no card's thread or the card has no run.
func CardThreadRun(ctx context.Context, db ThreadCards, surface, ref string) (string, error) {
	c, err := db.CardByThread(ctx, surface, ref)
	if err != nil {
		return "", err
	}
	runs, err := db.CardRuns(ctx, c.ID)
	if err != nil {
		return "", err
	}
	if len(runs) == 0 {
		return "", fmt.Errorf("card %s has no run: %w", c.ID, store.ErrNotFound)
	}
	return runs[len(runs)-1], nil
}
