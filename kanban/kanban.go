// Package kanban is hero's board: per project a board of columns (each of
// a kind: backlog, todo, doing, review, done, with an optional WIP limit)
// holding cards, and every card's append-only history. The database is the
// source of truth; the surfaces (command line, settings page, chat,
// GitHub) are views of it that call this package, which holds the rules
// once: who may read, create, edit and move cards and manage boards, and
// what a WIP limit refuses.
package kanban

import (
	"context"
	"errors"
	"fmt"
	"github.com/hero-dev/hero/refusal"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/hero-dev/hero/bot/fanout"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// DefaultBoard is the name of the board every project gets.
const DefaultBoard = "Board"

// DefaultColumns are a new board's columns, left to right.
func DefaultColumns() []store.KanbanColumn {
	return []store.KanbanColumn{
		{Name: "Backlog", Slug: "backlog", Kind: store.KindBacklog},
		{Name: "To do", Slug: "to-do", Kind: store.KindTodo},
		{Name: "In progress", Slug: "in-progress", Kind: store.KindDoing},
		{Name: "Review", Slug: "review", Kind: store.KindReview},
		{Name: "Done", Slug: "done", Kind: store.KindDone},
	}
}

// Slug is a column name as a label suffix: "In progress" → "in-progress".
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}

// Kind, Error and KindOf are the rules' refusals (package refusal),
// named here so callers keep saying kanban.Forbidden.
type (
	Kind  = refusal.Kind
	Error = refusal.Error
)

// Why the rules refuse a request.
const (
	Invalid   = refusal.Invalid
	Forbidden = refusal.Forbidden
	NotFound  = refusal.NotFound
	WIPLimit  = refusal.Limit
	Conflict  = refusal.Conflict
)

// KindOf returns the Kind of a refusal, or 0 for other errors.
func KindOf(err error) Kind { return refusal.KindOf(err) }

var refuse = refusal.New

// Actor is who asks, as their surface knows them.
type Actor struct {
	// ID is recorded in the card history: "local:ana", an email on the
	// settings page, "slack:T1/U2", "github:octocat".
	ID string
	// Surface is where the change was made ("cli", "web", "slack",
	// "github", "hero" for hero's own moves).
	Surface string
	// Role returns the actor's role in a project ("" when none); it is
	// how the surface derives roles (the operator owns everything, a
	// settings-page user has their membership).
	Role func(ctx context.Context, projectID int64) (store.Role, error)
}

// authorize is the one place deciding what a role may do on a board:
// viewers read; members create, edit, move and start work; admins
// manage boards and columns (need is the least role that may).
func authorize(ctx context.Context, a Actor, p *store.Project, need store.Role, what string) error {
	if a.Role == nil {
		return refuse(Forbidden, "%s in project %s: nobody is signed in", what, p.Name)
	}
	role, err := a.Role(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("%s: look up role: %w", what, err)
	}
	switch {
	case role.AtLeast(need):
		return nil
	case !role.Valid():
		// Not a member: say no more than that the project is not theirs.
		return refuse(Forbidden, "%s: you are not a member of project %s", what, p.Name)
	default:
		return refuse(Forbidden, "%s needs the %s role in project %s; you are %s", what, need, p.Name, role)
	}
}

// Store is what the board needs from the database.
type Store interface {
	ProjectByName(ctx context.Context, name string) (*store.Project, error)
	ProjectByID(ctx context.Context, id int64) (*store.Project, error)
	EnsureBoard(ctx context.Context, projectID int64, name string, cols []store.KanbanColumn) (*store.KanbanBoard, []store.KanbanColumn, error)
	UpdateBoard(ctx context.Context, b *store.KanbanBoard) error
	UpdateColumn(ctx context.Context, c *store.KanbanColumn) error
	BoardCards(ctx context.Context, boardID int64) ([]store.KanbanCard, error)
	BoardColumns(ctx context.Context, boardID int64) ([]store.KanbanColumn, error)
	Card(ctx context.Context, id string) (*store.KanbanCard, error)
	CreateCard(ctx context.Context, c *store.KanbanCard, actor, surface, note string, guard store.CardGuard) error
	MoveCard(ctx context.Context, cardID string, toID int64, actor, surface, note string, guard store.CardGuard) (*store.KanbanCard, *store.KanbanColumn, bool, error)
	UpdateCard(ctx context.Context, c *store.KanbanCard, actor, surface, action, note string) error
	AddCardEvent(ctx context.Context, ev *store.KanbanCardEvent) error
	CardHistory(ctx context.Context, cardID string) ([]store.KanbanCardEvent, error)
	CardThreads(ctx context.Context, cardID string) ([]store.KanbanCardThread, error)
	CardRuns(ctx context.Context, cardID string) ([]string, error)
	AddCardRun(ctx context.Context, cardID, executionID string) error
	AddCardThread(ctx context.Context, cardID, surface, threadRef string) error
	CardOfRun(ctx context.Context, executionID string) (*store.KanbanCard, error)
	CardByIssue(ctx context.Context, projectID int64, number int) (*store.KanbanCard, error)
	CardByPullRequest(ctx context.Context, projectID int64, url string) (*store.KanbanCard, error)
}

// Projection shows the board somewhere else: a GitHub issue per card
// with its column as a label, a chat message per card. The board calls it
// after each change it committed; a projection that fails is logged and
// the change stands (the database is the truth; the projection catches
// up with the next change).
type Projection interface {
	// CardCreated shows a new card. It may return links to record on the
	// card: its issue (number and URL) and chat threads.
	CardCreated(ctx context.Context, p *store.Project, c *store.KanbanCard, col *store.KanbanColumn) (Links, error)
	// CardMoved shows a card's new column.
	CardMoved(ctx context.Context, p *store.Project, c *store.KanbanCard, to *store.KanbanColumn) error
}

// Links are where a projection shows a card.
type Links struct {
	IssueNumber int
	IssueURL    string
	Threads     []store.KanbanCardThread // Surface and ThreadRef set
}

// Places finds a surface by name.
type Places interface {
	Surface(name string) (engine.Surface, bool)
}

// Config holds the board's dependencies.
type Config struct {
	Store Store
	Log   *slog.Logger
	// Runs starts a card's run when it moves into a doing column; nil
	// moves cards without starting runs (the command line: runs start
	// where hero serve runs, from the web board or chat).
	Runs Runner
	// RunContext is the server's lifetime: runs are driven until it ends
	// (default: the request's context without its cancellation).
	RunContext context.Context
	// Issues reads a card's issue for its run's task (optional).
	Issues IssueReader
	// Places finds the surfaces a card's run reports to by their name (a
	// card's threads name them); *engine.Engine is one. nil: none.
	Places Places
	// Projections show every change elsewhere.
	Projections []Projection
}

// Service applies the board's rules.
type Service struct {
	cfg   Config
	db    Store
	log   *slog.Logger
	relay *fanout.Surface // a card's run reports to every place the card lives

	mu          sync.Mutex
	projections []Projection
}

// New returns the board service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("kanban: no store")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, db: cfg.Store, log: cfg.Log.With("component", "kanban"), projections: cfg.Projections}
	s.relay = fanout.New(fanout.Config{Name: SurfaceName, Places: cfg.Places, Destinations: s.destinations, Finished: s.runFinished, Log: s.log})
	return s, nil
}

// AddProjection registers a projection made after the board (a chat
// surface that also moves cards with its buttons), as surfaces register
// with the engine.
func (s *Service) AddProjection(p Projection) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projections = append(s.projections, p)
}

func (s *Service) projectionList() []Projection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Projection(nil), s.projections...)
}

// projectCreated shows a new card everywhere and records the links the
// projections return.
func (s *Service) projectCreated(ctx context.Context, p *store.Project, c *store.KanbanCard, col *store.KanbanColumn) {
	for _, pr := range s.projectionList() {
		l, err := pr.CardCreated(ctx, p, c, col)
		if err != nil {
			// What it made before failing (an issue) is still recorded.
			s.log.Warn("show a new card", "card", c.ID, "projection", fmt.Sprintf("%T", pr), "err", err)
		}
		if l.IssueNumber > 0 {
			c.IssueNumber, c.IssueURL = l.IssueNumber, l.IssueURL
			if err := s.db.UpdateCard(ctx, c, hero.ID, hero.Surface, store.CardLinked, "issue "+l.IssueURL); err != nil {
				s.log.Error("record a card's issue", "card", c.ID, "err", err)
			}
		}
		for _, t := range l.Threads {
			if err := s.db.AddCardThread(ctx, c.ID, t.Surface, t.ThreadRef); err != nil {
				s.log.Error("record a card's thread", "card", c.ID, "err", err)
			}
		}
	}
}

// projectMoved shows a card's new column everywhere.
func (s *Service) projectMoved(ctx context.Context, c *store.KanbanCard, _ *store.KanbanColumn) {
	prs := s.projectionList()
	if len(prs) == 0 {
		return
	}
	p, err := s.db.ProjectByID(ctx, c.ProjectID)
	if err != nil {
		s.log.Warn("show a card's move", "card", c.ID, "err", err)
		return
	}
	// Concurrent moves project concurrently: each shows the card as the
	// database has it now, and looks again afterwards; a projection that
	// may have written a stale column (the card changed meanwhile) writes
	// again, so every projection ends on the database's state.
	for attempt := 0; attempt < 5; attempt++ {
		full, err := s.db.Card(ctx, c.ID)
		if err != nil {
			s.log.Warn("show a card's move", "card", c.ID, "err", err)
			return
		}
		cols, err := s.db.BoardColumns(ctx, full.BoardID)
		if err != nil {
			s.log.Warn("show a card's move", "card", c.ID, "err", err)
			return
		}
		var at *store.KanbanColumn
		for i := range cols {
			if cols[i].ID == full.ColumnID {
				at = &cols[i]
			}
		}
		if at == nil {
			return
		}
		for _, pr := range prs {
			if err := pr.CardMoved(ctx, p, full, at); err != nil {
				s.log.Warn("show a card's move", "card", c.ID, "projection", fmt.Sprintf("%T", pr), "err", err)
			}
		}
		now, err := s.db.Card(ctx, c.ID)
		if err != nil || now.Version == full.Version {
			return
		}
	}
}

// Board is a board as people see it: its columns left to right, each with
// its cards top to bottom.
type Board struct {
	Project *store.Project
	Board   *store.KanbanBoard
	Columns []Column
}

// Column is a column with its cards.
type Column struct {
	store.KanbanColumn
	Cards []store.KanbanCard
}

// project finds a project by name with a clear error.
func (s *Service) project(ctx context.Context, name string) (*store.Project, error) {
	if strings.TrimSpace(name) == "" {
		return nil, refuse(Invalid, "say which project (--project NAME)")
	}
	p, err := s.db.ProjectByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(NotFound, "there is no project named %q", name)
	}
	return p, err
}

// boardOf returns the project's default board, creating it on first use.
func (s *Service) boardOf(ctx context.Context, p *store.Project) (*store.KanbanBoard, []store.KanbanColumn, error) {
	b, cols, err := s.db.EnsureBoard(ctx, p.ID, DefaultBoard, DefaultColumns())
	if err != nil {
		return nil, nil, fmt.Errorf("board of project %s: %w", p.Name, err)
	}
	return b, cols, nil
}

// Board returns a project's board with its cards; viewers may read it.
func (s *Service) Board(ctx context.Context, a Actor, project string) (*Board, error) {
	p, err := s.project(ctx, project)
	if err != nil {
		return nil, err
	}
	if err := authorize(ctx, a, p, store.RoleViewer, "reading the board"); err != nil {
		return nil, err
	}
	b, cols, err := s.boardOf(ctx, p)
	if err != nil {
		return nil, err
	}
	cards, err := s.db.BoardCards(ctx, b.ID)
	if err != nil {
		return nil, err
	}
	out := &Board{Project: p, Board: b, Columns: make([]Column, len(cols))}
	idx := map[int64]int{}
	for i, c := range cols {
		out.Columns[i].KanbanColumn = c
		idx[c.ID] = i
	}
	for _, c := range cards {
		if i, ok := idx[c.ColumnID]; ok {
			out.Columns[i].Cards = append(out.Columns[i].Cards, c)
		}
	}
	return out, nil
}

// findColumn matches a column by name or slug, case-insensitively, and
// lists the board's columns when none matches.
func findColumn(cols []store.KanbanColumn, name string) (*store.KanbanColumn, error) {
	want := Slug(name)
	for i := range cols {
		if strings.EqualFold(cols[i].Name, strings.TrimSpace(name)) || cols[i].Slug == want {
			return &cols[i], nil
		}
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return nil, refuse(Invalid, "there is no column %q; the columns are %s", name, strings.Join(names, ", "))
}

// columnOfKind returns the first column of a kind, or nil.
func columnOfKind(cols []store.KanbanColumn, kind string) *store.KanbanColumn {
	for i := range cols {
		if cols[i].Kind == kind {
			return &cols[i]
		}
	}
	return nil
}

// wipGuard refuses a move or create into a full column, naming the limit.
func wipGuard(_ *store.KanbanCard, _, to *store.KanbanColumn, inTo int) error {
	if to.WIPLimit > 0 && inTo >= to.WIPLimit {
		return refuse(WIPLimit, "%s is at its WIP limit of %d %s; finish or move one out first",
			to.Name, to.WIPLimit, plural(to.WIPLimit, "card", "cards"))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// NewCard is what AddCard needs.
type NewCard struct {
	Project string
	Title   string
	Body    string
	// Column by name or slug; "" puts the card into the board's To do.
	Column   string
	Assignee string
}

// Limits on what a card holds, so a board stays readable and a title
// fits an issue title.
const (
	maxTitle = 256
	maxBody  = 60000
)

func checkText(title, body string) error {
	switch {
	case strings.TrimSpace(title) == "":
		return refuse(Invalid, "a card needs a title")
	case len(title) > maxTitle:
		return refuse(Invalid, "the title is %d characters long; at most %d fit", len(title), maxTitle)
	case strings.ContainsAny(title, "\r\n"):
		return refuse(Invalid, "the title must be one line; put the rest into the body")
	case len(body) > maxBody:
		return refuse(Invalid, "the body is %d characters long; at most %d fit", len(body), maxBody)
	}
	return nil
}

// AddCard creates a card at the end of its column. Members and up may.
func (s *Service) AddCard(ctx context.Context, a Actor, n NewCard) (*store.KanbanCard, *store.KanbanColumn, error) {
	p, err := s.project(ctx, n.Project)
	if err != nil {
		return nil, nil, err
	}
	if err := authorize(ctx, a, p, store.RoleMember, "adding a card"); err != nil {
		return nil, nil, err
	}
	n.Title = strings.TrimSpace(n.Title)
	if err := checkText(n.Title, n.Body); err != nil {
		return nil, nil, err
	}
	b, cols, err := s.boardOf(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	col := columnOfKind(cols, store.KindTodo)
	if n.Column != "" || col == nil {
		if col, err = findColumn(cols, n.Column); err != nil {
			return nil, nil, err
		}
	}
	c := &store.KanbanCard{ProjectID: p.ID, BoardID: b.ID, ColumnID: col.ID, Title: n.Title, Body: n.Body,
		Creator: a.ID, Assignee: n.Assignee}
	if err := s.db.CreateCard(ctx, c, a.ID, a.Surface, "", wipGuard); err != nil {
		if KindOf(err) != 0 {
			return nil, nil, unwrapRefusal(err)
		}
		return nil, nil, err
	}
	s.log.Info("card created", "card", c.ID, "project", p.Name, "column", col.Name, "by", a.ID, "via", a.Surface)
	s.projectCreated(ctx, p, c, col)
	return c, col, nil
}

// unwrapRefusal returns the refusal inside a store error, without the
// store's "create card …:" prefix, for the person who asked.
func unwrapRefusal(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return err
}

// cardIn loads a card and its project; when project is not "", the card
// must belong to it. Someone who may not read the project learns nothing
// about the card (the same answer as for a missing card).
func (s *Service) cardIn(ctx context.Context, a Actor, id, project string, need store.Role, what string) (*store.KanbanCard, *store.Project, error) {
	id = strings.TrimSpace(id)
	c, err := s.db.Card(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, refuse(NotFound, "there is no card %s", id)
	}
	if err != nil {
		return nil, nil, err
	}
	p, err := s.db.ProjectByID(ctx, c.ProjectID)
	if err != nil {
		return nil, nil, fmt.Errorf("project of card %s: %w", id, err)
	}
	if project != "" && p.Name != project {
		return nil, nil, refuse(NotFound, "there is no card %s in project %s", id, project)
	}
	if err := authorize(ctx, a, p, store.RoleViewer, what); err != nil {
		if KindOf(err) == Forbidden {
			return nil, nil, refuse(NotFound, "there is no card %s", id)
		}
		return nil, nil, err
	}
	if need != store.RoleViewer {
		if err := authorize(ctx, a, p, need, what); err != nil {
			return nil, nil, err
		}
	}
	return c, p, nil
}

// Move is the result of a move.
type Move struct {
	Card    *store.KanbanCard
	Project *store.Project
	From    *store.KanbanColumn
	To      *store.KanbanColumn
	// Moved is false when the card already was in To.
	Moved bool
	// Run is the run the move started (into a doing column), or nil;
	// RunErr says why a run that should have started did not (the move
	// stands, and the card's history says so too).
	Run    *store.Execution
	RunErr error
}

// MoveCard moves a card (by id, in project when not "") to the end of a
// column (by name or slug). Members and up may; a full column refuses.
func (s *Service) MoveCard(ctx context.Context, a Actor, project, id, column string) (*Move, error) {
	return s.move(ctx, a, project, id, column, "", wipGuard)
}

// move is a person's move through the board's rules; guard is the WIP
// limit's check (nil where the board cannot refuse the work).
func (s *Service) move(ctx context.Context, a Actor, project, id, column, note string, guard store.CardGuard) (*Move, error) {
	c, p, err := s.cardIn(ctx, a, id, project, store.RoleMember, "moving a card")
	if err != nil {
		return nil, err
	}
	cols, err := s.db.BoardColumns(ctx, c.BoardID)
	if err != nil {
		return nil, err
	}
	to, err := findColumn(cols, column)
	if err != nil {
		return nil, err
	}
	card, from, moved, err := s.db.MoveCard(ctx, c.ID, to.ID, a.ID, a.Surface, note, guard)
	if err != nil {
		return nil, unwrapRefusal(err)
	}
	m := &Move{Card: card, Project: p, From: from, To: to, Moved: moved}
	if !moved {
		return m, nil
	}
	s.log.Info("card moved", "card", card.ID, "project", p.Name, "from", from.Name, "to", to.Name, "by", a.ID, "via", a.Surface)
	s.projectMoved(ctx, card, to)
	if to.Kind == store.KindDoing && s.cfg.Runs != nil {
		m.Run, m.RunErr = s.startRun(ctx, a, m)
	}
	return m, nil
}

// Edit is a change to a card's text; nil fields stay as they are.
type Edit struct {
	Title, Body, Assignee *string
	// Version is the card's version the editor saw (0: don't check). A
	// card changed since is refused, so nobody overwrites what they
	// never saw.
	Version int64
}

// EditCard changes a card's title, body or assignee. Members and up may.
// project, when not "", must be the card's.
func (s *Service) EditCard(ctx context.Context, a Actor, project, id string, e Edit) (*store.KanbanCard, error) {
	c, _, err := s.cardIn(ctx, a, id, project, store.RoleMember, "editing a card")
	if err != nil {
		return nil, err
	}
	if e.Version != 0 && e.Version != c.Version {
		return nil, refuse(Conflict, "card %s was changed by someone else since you opened it; reload and edit again", c.ID)
	}
	var what []string
	if e.Title != nil && strings.TrimSpace(*e.Title) != c.Title {
		c.Title = strings.TrimSpace(*e.Title)
		what = append(what, "title")
	}
	if e.Body != nil && *e.Body != c.Body {
		c.Body = *e.Body
		what = append(what, "body")
	}
	if e.Assignee != nil && strings.TrimSpace(*e.Assignee) != c.Assignee {
		c.Assignee = strings.TrimSpace(*e.Assignee)
		what = append(what, "assignee")
	}
	if err := checkText(c.Title, c.Body); err != nil {
		return nil, err
	}
	if len(what) == 0 {
		return c, nil
	}
	if err := s.db.UpdateCard(ctx, c, a.ID, a.Surface, store.CardEdited, strings.Join(what, ", ")); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, refuse(Conflict, "card %s was changed by someone else meanwhile; reload and edit again", c.ID)
		}
		return nil, err
	}
	return c, nil
}

// Detail is a card with everything about it.
type Detail struct {
	Card    *store.KanbanCard
	Project *store.Project
	Column  *store.KanbanColumn
	History []store.KanbanCardEvent
	Threads []store.KanbanCardThread
	Runs    []string
}

// Card returns a card with its history, threads and runs; viewers may.
func (s *Service) Card(ctx context.Context, a Actor, project, id string) (*Detail, error) {
	c, p, err := s.cardIn(ctx, a, id, project, store.RoleViewer, "reading a card")
	if err != nil {
		return nil, err
	}
	d := &Detail{Card: c, Project: p}
	cols, err := s.db.BoardColumns(ctx, c.BoardID)
	if err != nil {
		return nil, err
	}
	for i := range cols {
		if cols[i].ID == c.ColumnID {
			d.Column = &cols[i]
		}
	}
	if d.History, err = s.db.CardHistory(ctx, c.ID); err != nil {
		return nil, err
	}
	if d.Threads, err = s.db.CardThreads(ctx, c.ID); err != nil {
		return nil, err
	}
	if d.Runs, err = s.db.CardRuns(ctx, c.ID); err != nil {
		return nil, err
	}
	return d, nil
}

// SetWIPLimit sets a column's WIP limit (0 removes it). Admins and up may.
func (s *Service) SetWIPLimit(ctx context.Context, a Actor, project, column string, limit int) error {
	p, err := s.project(ctx, project)
	if err != nil {
		return err
	}
	if err := authorize(ctx, a, p, store.RoleAdmin, "changing a column"); err != nil {
		return err
	}
	if limit < 0 {
		return refuse(Invalid, "a WIP limit is a number of cards, 0 for none; got %d", limit)
	}
	_, cols, err := s.boardOf(ctx, p)
	if err != nil {
		return err
	}
	col, err := findColumn(cols, column)
	if err != nil {
		return err
	}
	col.WIPLimit = limit
	return s.db.UpdateColumn(ctx, col)
}

// GitHubProject is a GitHub Project (v2) as its URL names it:
// https://HOST/orgs/ORG/projects/N or https://HOST/users/USER/projects/N.
type GitHubProject struct {
	Host   string // github.com or a GitHub Enterprise host
	Owner  string
	Org    bool // an organisation's project (else a user's)
	Number int
}

// ParseGitHubProject reads a project's URL as GitHub shows it.
func ParseGitHubProject(raw string) (GitHubProject, error) {
	bad := func() (GitHubProject, error) {
		return GitHubProject{}, refuse(Invalid, "%q is not a GitHub Project URL; want https://github.com/orgs/ORG/projects/N (or /users/USER/projects/N)", raw)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return bad()
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 4 || (parts[0] != "orgs" && parts[0] != "users") || parts[1] == "" || parts[2] != "projects" {
		return bad()
	}
	n, err := strconv.Atoi(parts[3])
	if err != nil || n <= 0 {
		return bad()
	}
	return GitHubProject{Host: u.Host, Owner: parts[1], Org: parts[0] == "orgs", Number: n}, nil
}

// Link is what a board is linked to; empty fields stay as they are.
type Link struct {
	GitHubProject string // a GitHub Project (v2) URL; "none" unlinks
	DiscordForum  string // a Discord forum channel id; "none" unlinks
}

// LinkBoard links a project's board to a GitHub Project (its Status field
// then shows the column, instead of hero: labels) or a Discord forum.
// Admins and up may.
func (s *Service) LinkBoard(ctx context.Context, a Actor, project string, l Link) (*store.KanbanBoard, error) {
	p, err := s.project(ctx, project)
	if err != nil {
		return nil, err
	}
	if err := authorize(ctx, a, p, store.RoleAdmin, "linking the board"); err != nil {
		return nil, err
	}
	if l.GitHubProject == "" && l.DiscordForum == "" {
		return nil, refuse(Invalid, "say what to link: --github-project URL or --discord-forum ID")
	}
	b, _, err := s.boardOf(ctx, p)
	if err != nil {
		return nil, err
	}
	switch l.GitHubProject {
	case "":
	case "none":
		b.GitHubProject, b.GitHubProjectID, b.GitHubStatusField = "", "", ""
	default:
		if _, err := ParseGitHubProject(l.GitHubProject); err != nil {
			return nil, err
		}
		if b.GitHubProject != l.GitHubProject {
			// The node ids are looked up again for the new project.
			b.GitHubProject, b.GitHubProjectID, b.GitHubStatusField = l.GitHubProject, "", ""
		}
	}
	switch l.DiscordForum {
	case "":
	case "none":
		b.DiscordForum = ""
	default:
		if strings.Trim(l.DiscordForum, "0123456789") != "" || len(l.DiscordForum) > 20 {
			return nil, refuse(Invalid, "%q is not a Discord channel id (a number, as Discord's \"Copy Channel ID\" gives it)", l.DiscordForum)
		}
		b.DiscordForum = l.DiscordForum
	}
	if err := s.db.UpdateBoard(ctx, b); err != nil {
		return nil, err
	}
	s.log.Info("board linked", "project", p.Name, "github_project", b.GitHubProject, "discord_forum", b.DiscordForum, "by", a.ID)
	return b, nil
}

// Describe is a history line as people read it, the same on every
// surface: "local:ana moved it from To do to In progress (cli)".
func Describe(h store.KanbanCardEvent) string {
	var s string
	switch h.Action {
	case store.CardCreated:
		s = fmt.Sprintf("%s created it in %s", h.Actor, h.ToColumn)
	case store.CardMoved:
		s = fmt.Sprintf("%s moved it from %s to %s", h.Actor, h.FromColumn, h.ToColumn)
	case store.CardEdited:
		s = fmt.Sprintf("%s edited the %s", h.Actor, h.Note)
	default:
		s = fmt.Sprintf("%s: %s", h.Actor, h.Action)
	}
	if h.Note != "" && h.Action != store.CardEdited {
		s += " — " + h.Note
	}
	if h.Surface != "" {
		s += " (" + h.Surface + ")"
	}
	return s
}
