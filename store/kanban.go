package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// schemaKanban is the kanban board (migration 20261202000501): boards per
// project, their columns, cards, the append-only card history, and the
// places a card lives (chat threads) and the runs it started. Card moves
// serialise on their board's row (SELECT … FOR UPDATE), and a unique
// (column, position) key makes "two cards at one position" impossible
// even for a writer that forgot the lock.
var schemaKanban = []table{
	{
		name: "kanban_boards",
		cols: []column{
			col("id", tID), col("project_id", tBigint), col("name", tStr),
			col("github_project", tText), col("github_project_id", tStr), col("github_status_field", tStr),
			col("discord_forum", tStr), col("created_at", tTime),
		},
		uniques: [][]string{{"project_id", "name"}},
		fks:     []foreignKey{{"project_id", "projects", "id"}},
	},
	{
		name: "kanban_columns",
		cols: []column{
			col("id", tID), col("board_id", tBigint), col("name", tStr), col("slug", tStr),
			col("kind", tStr), col("position", tInt), col("wip_limit", tInt), col("github_option", tStr),
		},
		uniques: [][]string{{"board_id", "slug"}},
		fks:     []foreignKey{{"board_id", "kanban_boards", "id"}},
	},
	{
		name: "kanban_cards",
		cols: []column{
			col("id", tStr), col("project_id", tBigint), col("board_id", tBigint), col("column_id", tBigint),
			col("position", tInt), col("title", tText), col("body", tText), col("creator", tStr),
			col("assignee", tStr), col("issue_number", tInt), col("issue_url", tText), col("pr_url", tText),
			col("version", tBigint), col("created_at", tTime), col("updated_at", tTime),
		},
		pk:      []string{"id"},
		uniques: [][]string{{"column_id", "position"}},
		indexes: [][]string{{"board_id"}, {"project_id", "issue_number"}},
		fks:     []foreignKey{{"board_id", "kanban_boards", "id"}, {"column_id", "kanban_columns", "id"}},
	},
	{
		name: "kanban_card_history",
		cols: []column{
			col("id", tID), col("card_id", tStr), col("actor", tStr), col("action", tStr),
			col("from_column", tStr), col("to_column", tStr), col("surface", tStr), col("note", tText),
			col("at", tTime),
		},
		indexes: [][]string{{"card_id", "id"}},
		fks:     []foreignKey{{"card_id", "kanban_cards", "id"}},
	},
	{
		name: "kanban_card_threads",
		cols: []column{
			col("card_id", tStr), col("surface", tStr), col("thread_ref", tStr), col("created_at", tTime),
		},
		pk:      []string{"card_id", "surface", "thread_ref"},
		indexes: [][]string{{"surface", "thread_ref"}},
		fks:     []foreignKey{{"card_id", "kanban_cards", "id"}},
	},
	{
		name: "kanban_card_runs",
		cols: []column{
			col("card_id", tStr), col("execution_id", tStr), col("created_at", tTime),
		},
		pk:      []string{"card_id", "execution_id"},
		indexes: [][]string{{"execution_id"}},
		fks:     []foreignKey{{"card_id", "kanban_cards", "id"}},
	},
}

// Column kinds: what a column means to hero (moving a card into a doing
// column starts a run; review and done are where a run's pull request
// takes it).
const (
	KindBacklog = "backlog"
	KindTodo    = "todo"
	KindDoing   = "doing"
	KindReview  = "review"
	KindDone    = "done"
)

// KanbanBoard is a project's board. GitHubProject is the URL of a linked
// GitHub Project (v2) whose Status field shows the column ("" = labels);
// its node ids are filled in when hero first talks to it.
type KanbanBoard struct {
	bun.BaseModel `bun:"table:kanban_boards"`

	ID                int64     `bun:"id,pk,autoincrement"`
	ProjectID         int64     `bun:"project_id,notnull"`
	Name              string    `bun:"name,notnull"`
	GitHubProject     string    `bun:"github_project,type:text,notnull"`
	GitHubProjectID   string    `bun:"github_project_id,notnull"`
	GitHubStatusField string    `bun:"github_status_field,notnull"`
	DiscordForum      string    `bun:"discord_forum,notnull"`
	CreatedAt         time.Time `bun:"created_at,notnull"`
}

// KanbanColumn is one column of a board. WIPLimit 0 means no limit.
type KanbanColumn struct {
	bun.BaseModel `bun:"table:kanban_columns"`

	ID           int64  `bun:"id,pk,autoincrement"`
	BoardID      int64  `bun:"board_id,notnull"`
	Name         string `bun:"name,notnull"`
	Slug         string `bun:"slug,notnull"`
	Kind         string `bun:"kind,notnull"`
	Position     int    `bun:"position,notnull"`
	WIPLimit     int    `bun:"wip_limit,notnull"`
	GitHubOption string `bun:"github_option,notnull"`
}

// KanbanCard is a work item. Its id ("k…") is unique across projects.
// Version grows with every change, so a projection can tell an old state
// from the current one.
type KanbanCard struct {
	bun.BaseModel `bun:"table:kanban_cards"`

	ID          string    `bun:"id,pk"`
	ProjectID   int64     `bun:"project_id,notnull"`
	BoardID     int64     `bun:"board_id,notnull"`
	ColumnID    int64     `bun:"column_id,notnull"`
	Position    int       `bun:"position,notnull"`
	Title       string    `bun:"title,type:text,notnull"`
	Body        string    `bun:"body,type:text,notnull"`
	Creator     string    `bun:"creator,notnull"`
	Assignee    string    `bun:"assignee,notnull"`
	IssueNumber int       `bun:"issue_number,notnull"`
	IssueURL    string    `bun:"issue_url,type:text,notnull"`
	PRURL       string    `bun:"pr_url,type:text,notnull"`
	Version     int64     `bun:"version,notnull"`
	CreatedAt   time.Time `bun:"created_at,notnull"`
	UpdatedAt   time.Time `bun:"updated_at,notnull"`
}

// Card history actions.
const (
	CardCreated = "created"
	CardMoved   = "moved"
	CardEdited  = "edited"
	CardLinked  = "linked"
	CardRun     = "run"
)

// KanbanCardEvent is one line of a card's append-only history: who did
// what, from which column to which, through which surface.
type KanbanCardEvent struct {
	bun.BaseModel `bun:"table:kanban_card_history"`

	ID         int64     `bun:"id,pk,autoincrement"`
	CardID     string    `bun:"card_id,notnull"`
	Actor      string    `bun:"actor,notnull"`
	Action     string    `bun:"action,notnull"`
	FromColumn string    `bun:"from_column,notnull"`
	ToColumn   string    `bun:"to_column,notnull"`
	Surface    string    `bun:"surface,notnull"`
	Note       string    `bun:"note,type:text,notnull"`
	At         time.Time `bun:"at,notnull"`
}

// KanbanCardThread is a chat thread that is (part of) a card's discussion.
type KanbanCardThread struct {
	bun.BaseModel `bun:"table:kanban_card_threads"`

	CardID    string    `bun:"card_id,pk"`
	Surface   string    `bun:"surface,pk"`
	ThreadRef string    `bun:"thread_ref,pk"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// KanbanCardRun links a run to the card that started it.
type KanbanCardRun struct {
	bun.BaseModel `bun:"table:kanban_card_runs"`

	CardID      string    `bun:"card_id,pk"`
	ExecutionID string    `bun:"execution_id,pk"`
	CreatedAt   time.Time `bun:"created_at,notnull"`
}

// EnsureBoard returns the project's board named name with its columns,
// creating it with cols when it does not exist yet (projects made before
// the board existed get theirs on first use). Replicas racing to create it
// end with the same board. ErrNotFound if the project does not exist.
func (db *DB) EnsureBoard(ctx context.Context, projectID int64, name string, cols []KanbanColumn) (*KanbanBoard, []KanbanColumn, error) {
	for attempt := 0; ; attempt++ {
		b := new(KanbanBoard)
		err := db.bun.NewSelect().Model(b).Where("project_id = ? AND name = ?", projectID, name).Scan(ctx)
		if err == nil {
			cs, err := db.BoardColumns(ctx, b.ID)
			return b, cs, err
		}
		if err = wrap(err, "board of project %d", projectID); !errors.Is(err, ErrNotFound) {
			return nil, nil, err
		}
		if _, err := db.ProjectByID(ctx, projectID); err != nil {
			return nil, nil, fmt.Errorf("create board: %w", err)
		}
		err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			b = &KanbanBoard{ProjectID: projectID, Name: name, CreatedAt: now()}
			if _, err := tx.NewInsert().Model(b).Exec(ctx); err != nil {
				return err
			}
			for i := range cols {
				c := cols[i]
				c.ID, c.BoardID, c.Position = 0, b.ID, i
				if _, err := tx.NewInsert().Model(&c).Exec(ctx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && (!isUniqueViolation(err) || attempt == 2) {
			return nil, nil, wrap(err, "create board of project %d", projectID)
		}
	}
}

// ProjectBoards returns a project's boards, oldest first.
func (db *DB) ProjectBoards(ctx context.Context, projectID int64) ([]KanbanBoard, error) {
	var bs []KanbanBoard
	if err := db.bun.NewSelect().Model(&bs).Where("project_id = ?", projectID).Order("id").Scan(ctx); err != nil {
		return nil, wrap(err, "boards of project %d", projectID)
	}
	return bs, nil
}

// BoardByID returns a board; ErrNotFound if there is none.
func (db *DB) BoardByID(ctx context.Context, id int64) (*KanbanBoard, error) {
	b := new(KanbanBoard)
	if err := db.bun.NewSelect().Model(b).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, wrap(err, "board %d", id)
	}
	return b, nil
}

// UpdateBoard saves a board's links (GitHub Project, Discord forum).
func (db *DB) UpdateBoard(ctx context.Context, b *KanbanBoard) error {
	_, err := db.bun.NewUpdate().Model(b).WherePK().
		Column("name", "github_project", "github_project_id", "github_status_field", "discord_forum").Exec(ctx)
	return wrap(err, "update board %d", b.ID)
}

// BoardColumns returns a board's columns, left to right.
func (db *DB) BoardColumns(ctx context.Context, boardID int64) ([]KanbanColumn, error) {
	var cs []KanbanColumn
	if err := db.bun.NewSelect().Model(&cs).Where("board_id = ?", boardID).Order("position", "id").Scan(ctx); err != nil {
		return nil, wrap(err, "columns of board %d", boardID)
	}
	return cs, nil
}

// UpdateColumn saves a column's name, WIP limit and GitHub option id.
func (db *DB) UpdateColumn(ctx context.Context, c *KanbanColumn) error {
	res, err := db.bun.NewUpdate().Model(c).WherePK().Column("name", "wip_limit", "github_option").Exec(ctx)
	if err != nil {
		return wrap(err, "update column %d", c.ID)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(ErrNotFound, "update column %d", c.ID)
	}
	return nil
}

// BoardCards returns a board's cards by column and position, as a board
// shows them: without their bodies and times (a board of 1,000 cards
// reads in half the time).
func (db *DB) BoardCards(ctx context.Context, boardID int64) ([]KanbanCard, error) {
	var cs []KanbanCard
	if err := db.bun.NewSelect().Model(&cs).
		Column("id", "project_id", "board_id", "column_id", "position", "title", "creator", "assignee", "issue_number", "issue_url", "pr_url", "version").
		Where("board_id = ?", boardID).Order("column_id", "position").Scan(ctx); err != nil {
		return nil, wrap(err, "cards of board %d", boardID)
	}
	return cs, nil
}

// Card returns a card by id; ErrNotFound if there is none.
func (db *DB) Card(ctx context.Context, id string) (*KanbanCard, error) {
	c := new(KanbanCard)
	if err := db.bun.NewSelect().Model(c).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, wrap(err, "card %s", id)
	}
	return c, nil
}

// CardByIssue returns the project's card linked to an issue number;
// ErrNotFound if none is.
func (db *DB) CardByIssue(ctx context.Context, projectID int64, number int) (*KanbanCard, error) {
	c := new(KanbanCard)
	if err := db.bun.NewSelect().Model(c).Where("project_id = ? AND issue_number = ?", projectID, number).Limit(1).Scan(ctx); err != nil {
		return nil, wrap(err, "card of issue #%d", number)
	}
	return c, nil
}

// CardGuard is a rule checked inside the move or create transaction,
// while the board is locked: card is the card (its column the old one),
// to the target column and inTo the number of cards already there. An
// error refuses the change and is returned as is.
type CardGuard func(card *KanbanCard, from, to *KanbanColumn, inTo int) error

// lockBoard takes the board's row lock: every change to its cards'
// columns and positions holds it, so they apply one after another on
// every replica. It must be the transaction's first read, so MySQL's
// snapshot for later plain reads is taken after the lock is held.
func (db *DB) lockBoard(ctx context.Context, tx bun.Tx, boardID int64) error {
	var id int64
	return db.forUpdate(tx.NewSelect().Model((*KanbanBoard)(nil)).Column("id").Where("id = ?", boardID)).Scan(ctx, &id)
}

func (db *DB) columnIn(ctx context.Context, tx bun.Tx, boardID, columnID int64) (*KanbanColumn, error) {
	c := new(KanbanColumn)
	if err := tx.NewSelect().Model(c).Where("id = ? AND board_id = ?", columnID, boardID).Scan(ctx); err != nil {
		return nil, wrap(err, "column %d of board %d", columnID, boardID)
	}
	return c, nil
}

// nextPosition counts a column's cards and returns the position after
// its last one.
func nextPosition(ctx context.Context, tx bun.Tx, columnID int64) (count, next int, err error) {
	var row struct {
		N   int `bun:"n"`
		Max int `bun:"m"`
	}
	err = tx.NewSelect().Model((*KanbanCard)(nil)).ColumnExpr("COUNT(*) AS n, COALESCE(MAX(position), -1) AS m").
		Where("column_id = ?", columnID).Scan(ctx, &row)
	return row.N, row.Max + 1, err
}

// CreateCard inserts c at the end of its column with a new id ("k…"),
// and its "created" history line by actor through surface. guard (may be
// nil) sees the column while the board is locked. A card of an issue
// (IssueNumber > 0) that already has one in the project is refused with
// ErrIssueHasCard: deliveries about one issue handled at the same moment
// make one card.
func (db *DB) CreateCard(ctx context.Context, c *KanbanCard, actor, surface, note string, guard CardGuard) error {
	if strings.TrimSpace(c.Title) == "" {
		return errors.New("create card: the title is empty")
	}
	issueHasCard := func(other string) error {
		return fmt.Errorf("create card %q: issue #%d is card %s: %w", c.Title, c.IssueNumber, other, ErrIssueHasCard)
	}
	var last error
	for range 5 {
		c.ID = newID("k", 8)
		err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			if err := db.lockBoard(ctx, tx, c.BoardID); err != nil {
				return err
			}
			if c.IssueNumber > 0 {
				// Seen here under the board's lock; the unique key
				// catches a card made meanwhile on another board.
				var other string
				err := tx.NewSelect().Model((*KanbanCard)(nil)).Column("id").
					Where("project_id = ? AND issue_number = ?", c.ProjectID, c.IssueNumber).Limit(1).Scan(ctx, &other)
				switch {
				case err == nil:
					return issueHasCard(other)
				case !errors.Is(err, sql.ErrNoRows):
					return err
				}
			}
			to, err := db.columnIn(ctx, tx, c.BoardID, c.ColumnID)
			if err != nil {
				return err
			}
			n, pos, err := nextPosition(ctx, tx, c.ColumnID)
			if err != nil {
				return err
			}
			if guard != nil {
				if err := guard(c, nil, to, n); err != nil {
					return err
				}
			}
			t := now()
			c.Position, c.Version, c.CreatedAt, c.UpdatedAt = pos, 1, t, t
			if _, err := tx.NewInsert().Model(c).Exec(ctx); err != nil {
				return err
			}
			_, err = tx.NewInsert().Model(&KanbanCardEvent{CardID: c.ID, Actor: actor, Action: CardCreated,
				ToColumn: to.Name, Surface: surface, Note: note, At: t}).Exec(ctx)
			return err
		})
		if err == nil {
			return nil
		}
		last = err
		if errors.Is(err, ErrIssueHasCard) {
			c.ID = ""
			return err
		}
		if c.IssueNumber > 0 && isUniqueViolation(err) {
			// A card of the issue made meanwhile on another board (or
			// only the new id taken: then the loop tries another).
			other, e := db.CardByIssue(ctx, c.ProjectID, c.IssueNumber)
			switch {
			case e == nil:
				c.ID = ""
				return issueHasCard(other.ID)
			case !errors.Is(e, ErrNotFound):
				c.ID = ""
				return e
			}
		}
		if !isUniqueViolation(err) {
			break
		}
	}
	c.ID = ""
	return wrap(last, "create card %q", c.Title)
}

// MoveCard moves a card to the end of column toID of its board and records
// it in the history (from and to by name, with note). Moving a card to the
// column it is in changes nothing and returns moved=false. guard (may be
// nil) runs while the board is locked. Returns the card as it is now and
// the column it came from.
func (db *DB) MoveCard(ctx context.Context, cardID string, toID int64, actor, surface, note string, guard CardGuard) (card *KanbanCard, from *KanbanColumn, moved bool, err error) {
	pre, err := db.Card(ctx, cardID)
	if err != nil {
		return nil, nil, false, fmt.Errorf("move card: %w", err)
	}
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		moved = false
		if err := db.lockBoard(ctx, tx, pre.BoardID); err != nil {
			return err
		}
		card = new(KanbanCard)
		if err := tx.NewSelect().Model(card).Where("id = ?", cardID).Scan(ctx); err != nil {
			return err
		}
		if from, err = db.columnIn(ctx, tx, card.BoardID, card.ColumnID); err != nil {
			return err
		}
		to, err := db.columnIn(ctx, tx, card.BoardID, toID)
		if err != nil {
			return err
		}
		if to.ID == from.ID {
			return nil
		}
		n, pos, err := nextPosition(ctx, tx, to.ID)
		if err != nil {
			return err
		}
		if guard != nil {
			if err := guard(card, from, to, n); err != nil {
				return err
			}
		}
		t := now()
		res, err := tx.NewUpdate().Model((*KanbanCard)(nil)).
			Set("column_id = ?", to.ID).Set("position = ?", pos).Set("version = version + 1").Set("updated_at = ?", t).
			Where("id = ? AND version = ?", card.ID, card.Version).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("card %s changed during the move (version %d)", card.ID, card.Version)
		}
		card.ColumnID, card.Position, card.Version, card.UpdatedAt = to.ID, pos, card.Version+1, t
		moved = true
		_, err = tx.NewInsert().Model(&KanbanCardEvent{CardID: card.ID, Actor: actor, Action: CardMoved,
			FromColumn: from.Name, ToColumn: to.Name, Surface: surface, Note: note, At: t}).Exec(ctx)
		return err
	})
	if err != nil {
		return nil, nil, false, wrap(err, "move card %s", cardID)
	}
	return card, from, moved, nil
}

// UpdateCard saves a card's title, body, assignee and links, bumps its
// version and adds a history line (action, note). The caller read c; the
// write is refused with ErrConflict if the card changed since (c.Version).
func (db *DB) UpdateCard(ctx context.Context, c *KanbanCard, actor, surface, action, note string) error {
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		t := now()
		res, err := tx.NewUpdate().Model(c).WherePK().Where("version = ?", c.Version).
			Column("title", "body", "assignee", "issue_number", "issue_url", "pr_url").
			Set("version = version + 1").Set("updated_at = ?", t).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("card %s was changed by someone else meanwhile: %w", c.ID, ErrConflict)
		}
		c.Version, c.UpdatedAt = c.Version+1, t
		_, err = tx.NewInsert().Model(&KanbanCardEvent{CardID: c.ID, Actor: actor, Action: action,
			Surface: surface, Note: note, At: t}).Exec(ctx)
		return err
	})
	return wrap(err, "update card %s", c.ID)
}

// AddCardEvent appends a history line that changes nothing else (a run
// started, a note from a projection).
func (db *DB) AddCardEvent(ctx context.Context, ev *KanbanCardEvent) error {
	if ev.At.IsZero() {
		ev.At = now()
	}
	_, err := db.bun.NewInsert().Model(ev).Exec(ctx)
	return wrap(err, "add history of card %s", ev.CardID)
}

// CardHistory returns a card's history, oldest first.
func (db *DB) CardHistory(ctx context.Context, cardID string) ([]KanbanCardEvent, error) {
	var evs []KanbanCardEvent
	if err := db.bun.NewSelect().Model(&evs).Where("card_id = ?", cardID).Order("id").Scan(ctx); err != nil {
		return nil, wrap(err, "history of card %s", cardID)
	}
	return evs, nil
}

// AddCardThread records a chat thread of a card (idempotent).
func (db *DB) AddCardThread(ctx context.Context, cardID, surface, threadRef string) error {
	t := &KanbanCardThread{CardID: cardID, Surface: surface, ThreadRef: threadRef, CreatedAt: now()}
	err := db.upsert(ctx, db.bun, t, []string{"card_id", "surface", "thread_ref"}, []string{"surface"})
	return wrap(err, "add thread %s:%s to card %s", surface, threadRef, cardID)
}

// CardThreads returns the chat threads of a card, oldest first.
func (db *DB) CardThreads(ctx context.Context, cardID string) ([]KanbanCardThread, error) {
	var ts []KanbanCardThread
	if err := db.bun.NewSelect().Model(&ts).Where("card_id = ?", cardID).Order("created_at").Scan(ctx); err != nil {
		return nil, wrap(err, "threads of card %s", cardID)
	}
	return ts, nil
}

// CardByThread returns the card whose discussion is a chat thread;
// ErrNotFound if none.
func (db *DB) CardByThread(ctx context.Context, surface, threadRef string) (*KanbanCard, error) {
	c := new(KanbanCard)
	err := db.bun.NewSelect().Model(c).
		Join("JOIN kanban_card_threads AS t ON t.card_id = ?TableAlias.id").
		Where("t.surface = ? AND t.thread_ref = ?", surface, threadRef).Limit(1).Scan(ctx)
	return c, wrap(err, "card of thread %s:%s", surface, threadRef)
}

// AddCardRun links a run to its card.
func (db *DB) AddCardRun(ctx context.Context, cardID, executionID string) error {
	_, err := db.bun.NewInsert().Model(&KanbanCardRun{CardID: cardID, ExecutionID: executionID, CreatedAt: now()}).Exec(ctx)
	return wrap(err, "link run %s to card %s", executionID, cardID)
}

// CardRuns returns the ids of a card's runs, oldest first.
func (db *DB) CardRuns(ctx context.Context, cardID string) ([]string, error) {
	var ids []string
	err := db.bun.NewSelect().Model((*KanbanCardRun)(nil)).Column("execution_id").
		Where("card_id = ?", cardID).Order("created_at", "execution_id").Scan(ctx, &ids)
	return ids, wrap(err, "runs of card %s", cardID)
}

// CardOfRun returns the card that started a run; ErrNotFound if the run
// was not started by a card.
func (db *DB) CardOfRun(ctx context.Context, executionID string) (*KanbanCard, error) {
	c := new(KanbanCard)
	err := db.bun.NewSelect().Model(c).
		Join("JOIN kanban_card_runs AS r ON r.card_id = ?TableAlias.id").
		Where("r.execution_id = ?", executionID).Limit(1).Scan(ctx)
	return c, wrap(err, "card of run %s", executionID)
}

// CardByPullRequest returns the project's card whose run opened the pull
// request at url; ErrNotFound if none did.
func (db *DB) CardByPullRequest(ctx context.Context, projectID int64, url string) (*KanbanCard, error) {
	c := new(KanbanCard)
	if err := db.bun.NewSelect().Model(c).Where("project_id = ? AND pr_url = ?", projectID, url).Limit(1).Scan(ctx); err != nil {
		return nil, wrap(err, "card of pull request %s", url)
	}
	return c, nil
}

// BoardsOfGitHubProject returns the boards linked to a GitHub Project by
// its node id.
func (db *DB) BoardsOfGitHubProject(ctx context.Context, nodeID string) ([]KanbanBoard, error) {
	var bs []KanbanBoard
	if nodeID == "" {
		return nil, nil
	}
	err := db.bun.NewSelect().Model(&bs).Where("github_project_id = ?", nodeID).Order("id").Scan(ctx)
	return bs, wrap(err, "boards of GitHub project %s", nodeID)
}

// CardsCreatedSince returns a project's cards created at or after since,
// oldest first.
func (db *DB) CardsCreatedSince(ctx context.Context, projectID int64, since time.Time) ([]KanbanCard, error) {
	var cs []KanbanCard
	err := db.bun.NewSelect().Model(&cs).Where("project_id = ? AND created_at >= ?", projectID, since.UTC()).Order("created_at", "id").Scan(ctx)
	return cs, wrap(err, "cards of project %d since %s", projectID, since.Format(time.RFC3339))
}

// ErrIssueHasCard is returned (wrapped) by CreateCard for a card of an
// issue that already has one: the caller uses that card instead.
var ErrIssueHasCard = errors.New("store: the issue already has a card")

// oneCardPerIssue is migration 20261205000101: at most one card per
// project links to a GitHub issue. The key is a generated column, NULL
// for cards without an issue (issue_number 0), so those never collide;
// a unique index over it works alike on SQLite and MySQL. Cards that
// already share an issue (made by the race this closes) keep the oldest
// as the issue's card; the others lose the link, and their history says
// so.
func (db *DB) oneCardPerIssue(ctx context.Context) error {
	var dups []struct {
		ProjectID   int64 `bun:"project_id"`
		IssueNumber int   `bun:"issue_number"`
	}
	if err := db.bun.NewSelect().Model((*KanbanCard)(nil)).Column("project_id", "issue_number").
		Where("issue_number > 0").Group("project_id", "issue_number").Having("COUNT(*) > 1").Scan(ctx, &dups); err != nil {
		return fmt.Errorf("find issues with several cards: %w", err)
	}
	for _, d := range dups {
		var cs []KanbanCard
		if err := db.bun.NewSelect().Model(&cs).Where("project_id = ? AND issue_number = ?", d.ProjectID, d.IssueNumber).
			Order("created_at", "id").Scan(ctx); err != nil {
			return fmt.Errorf("cards of issue #%d: %w", d.IssueNumber, err)
		}
		for _, c := range cs[1:] {
			note := fmt.Sprintf("no longer the card of issue #%d: card %s is", d.IssueNumber, cs[0].ID)
			if _, err := db.bun.NewUpdate().Model((*KanbanCard)(nil)).Set("issue_number = 0").Set("issue_url = ''").
				Set("version = version + 1").Where("id = ?", c.ID).Exec(ctx); err != nil {
				return fmt.Errorf("unlink card %s from issue #%d: %w", c.ID, d.IssueNumber, err)
			}
			if err := db.AddCardEvent(ctx, &KanbanCardEvent{CardID: c.ID, Actor: "hero", Action: CardLinked, Surface: "hero", Note: note}); err != nil {
				return err
			}
		}
	}
	// MySQL: one statement, so an interrupted migration leaves no half.
	qs := []string{"ALTER TABLE " + ident(db.dialect, "kanban_cards") + " ADD COLUMN " + ident(db.dialect, "issue_key") +
		" INT GENERATED ALWAYS AS (NULLIF(issue_number, 0)) VIRTUAL, ADD CONSTRAINT " + ident(db.dialect, "uq_kanban_cards_project_id_issue_key") +
		" UNIQUE (project_id, issue_key)"}
	if db.dialect == DialectSQLite {
		qs = []string{
			"ALTER TABLE " + ident(db.dialect, "kanban_cards") + " ADD COLUMN " + ident(db.dialect, "issue_key") +
				" INTEGER GENERATED ALWAYS AS (NULLIF(issue_number, 0)) VIRTUAL",
			"CREATE UNIQUE INDEX " + ident(db.dialect, "uq_kanban_cards_project_id_issue_key") + " ON " + ident(db.dialect, "kanban_cards") + " (project_id, issue_key)",
		}
	}
	for _, q := range qs {
		if _, err := db.bun.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("unique issue per card: %w", err)
		}
	}
	return nil
}
