package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/refusal"
	"github.com/hero-dev/hero/store"
)

// Request is one thing a person asked of hero, decoded from any surface:
// the parsed command, who asked, where, and under which platform
// delivery.
type Request struct {
	Command Command
	Actor   Actor
	Place   Place
	// Delivery is the platform delivery id ("" when there is none): a
	// start handled twice under the same delivery starts one run and
	// says nothing the second time.
	Delivery string
	// Private: the request was made where only hero reads it (a Slack
	// slash command or a direct message), so a link code may be spent.
	// A link code in a public request is burnt.
	Private bool
	// Task, when set, is the run's task as the surface composed it (a
	// GitHub issue quoted around the request); else Command.Task.
	Task string
	// Untrusted: Task quotes text written by people outside the project.
	Untrusted bool
}

// Actor is the person behind a request.
type Actor struct {
	// Surface is the platform ("slack", "github"); with ID it names the
	// person's linked identity.
	Surface string
	// ID is the platform's id for them ("T1/U2", "octocat").
	ID string
	// Permission is the repository permission the platform reports for
	// them (admin, maintain, write, triage, read, none), mapped by
	// GitHubRole; "" where the platform has none.
	Permission string
}

// Identity is how runs and decisions record the actor ("slack:T1/U2").
func (a Actor) Identity() string { return a.Surface + ":" + a.ID }

// Place is where a request was made.
type Place struct {
	// Surface is the platform of the place; runs started here report to
	// the engine surface of this name.
	Surface string
	// Channel is the place's project binding key ("T1/C1"); ignored when
	// Project is set.
	Channel string
	// Project is the project the place belongs to by itself (a GitHub
	// repository); nil means: the project bound to Channel.
	Project *store.Project
	// Thread names the conversation a run belongs to ("T1/C1/171.2",
	// "o/r#7"); "" when the request opened none (a slash command).
	Thread string
	// Ref is where a run started here reports (store.Execution's
	// ThreadRef); "" means Thread.
	Ref string
	// Direct: a direct message with hero. It belongs to no project, so
	// nothing starts or is bound here; links, status, decisions by id,
	// projects and help are answered (privately).
	Direct bool
}

// MessageKind says what a Message is, so each surface can render it its
// own way (an acknowledgement may be a reaction).
type MessageKind int

const (
	// Info answers the request (status, projects, budget, help).
	Info MessageKind = iota
	// Refusal says why nothing was done.
	Refusal
	// Ack confirms that what was asked was done (a decision, a
	// cancellation, steering).
	Ack
	// Started announces a new run (Run is set).
	Started
)

// Message is a neutral answer; surfaces render it. Text is written once,
// here, in the markup every surface shares (`code`, *emphasis*).
type Message struct {
	Kind MessageKind
	Text string
	// Private: only the person should see it, where the surface can.
	Private bool
	Run     *store.Execution
	// Confirmation is the confirmation a decision was about (decided,
	// or found expired), so its message can show the outcome.
	Confirmation *store.Confirmation
}

// Conversation is the port a surface implements for one request.
type Conversation interface {
	// Say answers the person (a reply, an ephemeral message, a
	// reaction). Errors are retried by the inbox.
	Say(ctx context.Context, m Message) error
	// OpenThread starts the conversation a new run will report to when
	// the request came with none, and returns its Place.Thread.
	OpenThread(ctx context.Context, p *store.Project, task string) (thread string, err error)
}

// Directory is the port a surface implements for looking people up.
type Directory interface {
	// HeroUser returns the hero user the actor is linked to, or nil.
	HeroUser(ctx context.Context, a Actor) (*store.User, error)
}

// Engine is what the dispatcher asks of the engine; *engine.Engine is one.
type Engine interface {
	Start(ctx context.Context, req engine.StartRequest) (*store.Execution, error)
	Decide(ctx context.Context, confirmationID string, d engine.Decision) (*store.Confirmation, error)
	Cancel(ctx context.Context, executionID string, by engine.Principal) error
	Steer(ctx context.Context, executionID string, by engine.Principal, body string) error
	Role(ctx context.Context, projectID int64, p engine.Principal) (store.Role, error)
}

// Store is the part of the database the dispatcher reads; *store.DB is one.
type Store interface {
	Execution(ctx context.Context, id string) (*store.Execution, error)
	ListExecutions(ctx context.Context, f store.ExecutionFilter) ([]store.Execution, error)
	PendingConfirmations(ctx context.Context, executionID string) ([]store.Confirmation, error)
	Confirmation(ctx context.Context, id string) (*store.Confirmation, error)
	ThreadExecution(ctx context.Context, surface, threadRef string) (string, error)
	LinkThread(ctx context.Context, surface, threadRef, executionID string) error
	ChannelProject(ctx context.Context, surface, channelID string) (*store.Project, error)
	BindChannel(ctx context.Context, surface, channelID string, projectID int64, by string) error
	ProjectByName(ctx context.Context, name string) (*store.Project, error)
	ProjectByID(ctx context.Context, id int64) (*store.Project, error)
	ListProjects(ctx context.Context) ([]store.Project, error)
	ProjectSpendSince(ctx context.Context, projectID int64, since time.Time) (float64, error)
	UseLinkCode(ctx context.Context, code string, at time.Time) (int64, error)
	UseLinkCodeLimited(ctx context.Context, code, subject string, at time.Time) (int64, error)
	UserByID(ctx context.Context, id int64) (*store.User, error)
	LinkIdentity(ctx context.Context, provider, externalID string, userID int64) error
	AuditAccount(ctx context.Context, userID int64, provider, externalID, action, actor string) error
}

// Board is the port /hero card and /hero board go through: the kanban
// board as chat uses it (kanban.Chat makes one of the kanban service).
// The board enforces its own rules; a refusal is a refusal error (package
// refusal) whose message is told to the person, any other error is
// retried.
type Board interface {
	// AddCard adds a card titled title to the board of the named project,
	// in the board's default column, for who; it returns the card and
	// the column's name.
	AddCard(ctx context.Context, who BoardActor, project, title string) (card *store.KanbanCard, column string, err error)
	// Columns returns the board of the named project as who may see it,
	// column by column in order.
	Columns(ctx context.Context, who BoardActor, project string) ([]BoardColumn, error)
}

// BoardActor is the person on the board: their identity and surface (for
// the card's history) and their role in a project as the engine sees it.
type BoardActor struct {
	ID, Surface string
	Role        func(ctx context.Context, projectID int64) (store.Role, error)
}

// BoardColumn is one column of a board with its cards, in order.
type BoardColumn struct {
	Name string
	// WIPLimit is the most cards the column takes (0: no limit).
	WIPLimit int
	Cards    []store.KanbanCard
}

// Dispatcher is the conversation layer every surface shares: it resolves
// the project and the person, authorises through the engine's roles and
// does what was asked, answering through the request's Conversation.
type Dispatcher struct {
	eng   Engine
	db    Store
	board Board // nil: /hero card and /hero board say the board is not here
	// RunContext is the server's lifetime: runs are started with it.
	life func() context.Context
	log  *slog.Logger
	now  func() time.Time
	// schedules answers /hero schedule; nil: not offered here.
	schedules Schedules
}

// Schedules is the port /hero schedule goes through; *schedules.Service
// is one. It answers with the text to show (refusals included) and
// returns errors only for failures worth a retry. place is where the
// command was typed (a thread, a channel, an issue): a schedule made
// there reports there.
type Schedules interface {
	ChatCommand(ctx context.Context, p *store.Project, who engine.Principal, surface, place string, cmd Command) (string, error)
}

// DispatcherOption configures NewDispatcher.
type DispatcherOption func(*Dispatcher)

// WithBoard offers /hero card and /hero board through b (nil: not
// offered).
func WithBoard(b Board) DispatcherOption {
	return func(d *Dispatcher) { d.board = b }
}

// WithSchedules offers /hero schedule through s (nil: not offered).
func WithSchedules(s Schedules) DispatcherOption {
	return func(d *Dispatcher) { d.schedules = s }
}

// NewDispatcher returns a dispatcher. runContext gives the context runs
// live in (the server's, not a request's).
func NewDispatcher(eng Engine, db Store, runContext func() context.Context, log *slog.Logger, now func() time.Time, opts ...DispatcherOption) (*Dispatcher, error) {
	if eng == nil || db == nil || runContext == nil {
		return nil, errors.New("bot: the dispatcher needs an engine, a store and the runs' context")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	d := &Dispatcher{eng: eng, db: db, life: runContext, log: log, now: now}
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// deliveryKind keys the chat_threads rows that record which run a
// delivery started, per surface.
func deliveryKind(surface string) string { return surface + ":delivery" }

// Dispatch handles one request. Mistakes of the person are answered
// through conv and return nil; other errors are returned for a retry.
func (d *Dispatcher) Dispatch(ctx context.Context, req *Request, dir Directory, conv Conversation) error {
	h, err := d.handling(ctx, req, dir, conv)
	if err != nil {
		return err
	}
	cmd := req.Command
	switch cmd.Verb {
	case VerbHelp:
		return h.say(ctx, Info, Help(), true)
	case VerbRun:
		return h.start(ctx)
	case VerbStatus:
		return h.status(ctx, cmd.ID)
	case VerbCancel:
		return h.cancel(ctx, cmd.ID)
	case VerbApprove, VerbDeny:
		return h.decide(ctx, cmd.ID, cmd.Verb == VerbApprove, cmd.Reason)
	case VerbLink:
		return h.link(ctx, cmd.Code)
	case VerbUse:
		return h.use(ctx, cmd.Project)
	case VerbProjects:
		return h.projects(ctx)
	case VerbBudget:
		return h.budget(ctx)
	case VerbSchedule:
		return h.schedule(ctx)
	case VerbCard:
		return h.card(ctx, cmd.Task)
	case VerbBoard:
		return h.showBoard(ctx)
	}
	return h.say(ctx, Info, Help(), true)
}

// schedule passes /hero schedule to the schedules port, in the place's
// project; a schedule made here reports here (this thread, else this
// channel).
func (h *handling) schedule(ctx context.Context) error {
	if h.d.schedules == nil {
		return h.say(ctx, Refusal, "Schedules are made where `hero serve` runs them: this hero has none.", true)
	}
	p, err := h.project(ctx)
	if p == nil || err != nil {
		return err
	}
	pl := h.req.Place
	place := pl.Thread
	if place == "" {
		place = pl.Channel
	}
	text, err := h.d.schedules.ChatCommand(ctx, p, h.who, pl.Surface, place, h.req.Command)
	if err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	return h.say(ctx, Info, text, false)
}

// handling resolves the person behind req: their linked hero user, and
// the principal the engine authorises (with the role their platform
// permission grants through the one table, GitHubRole).
func (d *Dispatcher) handling(ctx context.Context, req *Request, dir Directory, conv Conversation) (*handling, error) {
	h := &handling{d: d, req: req, conv: conv}
	u, err := dir.HeroUser(ctx, req.Actor)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", req.Actor.Identity(), err)
	}
	h.user = u
	h.who = engine.Principal{ID: req.Actor.Identity(), Granted: GitHubRole(req.Actor.Permission)}
	if u != nil {
		h.who.UserID = u.ID
	}
	return h, nil
}

// handling is one request being dispatched.
type handling struct {
	d    *Dispatcher
	req  *Request
	conv Conversation
	user *store.User
	who  engine.Principal
}

func (h *handling) say(ctx context.Context, kind MessageKind, text string, private bool) error {
	return h.conv.Say(ctx, Message{Kind: kind, Text: text, Private: private})
}

// Texts written once for every surface.
const (
	unboundText = "This channel is not bound to a project yet. Run `/hero use <project>` here first (`/hero projects` lists them)."
	linkRefused = "That link code is unknown, already used or expired (a code works once, for 15 minutes). " +
		"Make a new one on hero's settings page (Integrations → Chat accounts → Link a chat account), then type `/hero link CODE` to hero privately."
	directText = "This is a direct message with hero, which belongs to no project: start work with `/hero <task>` in a channel bound to a project " +
		"(`/hero use <project>` there binds one). Here I answer `link CODE`, `status [run id]`, `approve`/`deny ID`, `projects` and `help`."
	linkBurnt = "Link codes must stay private: that code was posted where others can read it, so I cancelled it. " +
		"Make a new one on hero's settings page and send `/hero link CODE` to hero privately (a slash command or a direct message)."
)

// notLinked is the refusal for a person hero does not know.
func notLinked(a Actor) string {
	return fmt.Sprintf("hero does not know you yet (%s): sign in on hero's settings page, or link this account there (Integrations → Link a chat account) and send `/hero link CODE` to hero privately.", a.Identity())
}

// project is the place's project: its own, else its binding; nil (and a
// refusal said) when there is none.
func (h *handling) project(ctx context.Context) (*store.Project, error) {
	if p := h.req.Place.Project; p != nil {
		return p, nil
	}
	if h.req.Place.Direct {
		return nil, h.say(ctx, Refusal, directText, true)
	}
	p, err := h.d.db.ChannelProject(ctx, h.req.Place.Surface, h.req.Place.Channel)
	if errors.Is(err, store.ErrNotFound) {
		return nil, h.say(ctx, Refusal, unboundText, true)
	}
	if err != nil {
		return nil, fmt.Errorf("project of %s: %w", h.req.Place.Channel, err)
	}
	return p, nil
}

// role is the person's role in p.
func (h *handling) role(ctx context.Context, p *store.Project) (store.Role, error) {
	return h.d.eng.Role(ctx, p.ID, h.who)
}

// mayWork checks the member role in p, telling the person why not.
func (h *handling) mayWork(ctx context.Context, p *store.Project) (bool, error) {
	role, err := h.role(ctx, p)
	if err != nil {
		return false, err
	}
	if role.AtLeast(store.RoleMember) {
		return true, nil
	}
	switch {
	case h.user != nil:
		return false, h.say(ctx, Refusal, fmt.Sprintf("You need to be a member of project *%s* to start or steer runs (your hero account is %s); ask one of its owners.", p.Name, roleWords(role)), true)
	case h.req.Actor.Permission != "":
		return false, h.say(ctx, Refusal, fmt.Sprintf("You have %s access to this repository: hero starts and steers work for people with write access or above, or whose linked hero account is a member of project *%s*.", h.req.Actor.Permission, p.Name), true)
	}
	return false, h.say(ctx, Refusal, notLinked(h.req.Actor), true)
}

func roleWords(r store.Role) string {
	if r == "" {
		return "not a member"
	}
	return "a " + string(r)
}

// threadRun is the run of the request's thread, or nil.
func (h *handling) threadRun(ctx context.Context) (*store.Execution, error) {
	pl := h.req.Place
	if pl.Thread == "" {
		return nil, nil
	}
	id, err := h.d.db.ThreadExecution(ctx, pl.Surface, pl.Thread)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run of thread %s: %w", pl.Thread, err)
	}
	return h.d.db.Execution(ctx, id)
}

// start starts a run, or, in the thread of a run still going, steers it
// (answering its open question first).
func (h *handling) start(ctx context.Context) error {
	if h.req.Delivery != "" {
		if id, err := h.d.db.ThreadExecution(ctx, deliveryKind(h.req.Place.Surface), h.req.Delivery); err == nil {
			h.d.log.Info("delivery already started a run", "delivery", h.req.Delivery, "run", id)
			return nil
		}
	}
	p, err := h.project(ctx)
	if p == nil || err != nil {
		return err
	}
	if ok, err := h.mayWork(ctx, p); !ok || err != nil {
		return err
	}
	text := h.req.Command.Task
	if ex, err := h.threadRun(ctx); err != nil {
		return err
	} else if ex != nil && !store.Final(ex.Status) {
		return h.steer(ctx, ex, text)
	}
	task := h.req.Task
	if task == "" {
		task = text
	}
	pl := h.req.Place
	if pl.Thread == "" {
		if pl.Thread, err = h.conv.OpenThread(ctx, p, text); err != nil || pl.Thread == "" {
			return err
		}
	}
	ref := pl.Ref
	if ref == "" {
		ref = pl.Thread
	}
	ex, err := h.d.eng.Start(h.d.life(), engine.StartRequest{Project: p, Task: task, Surface: pl.Surface, ThreadRef: ref, By: h.who, Untrusted: h.req.Untrusted})
	if err != nil {
		return h.refused(ctx, err)
	}
	if err := h.d.db.LinkThread(ctx, pl.Surface, pl.Thread, ex.ID); err != nil {
		h.d.log.Error("link thread to run", "run", ex.ID, "err", err)
	}
	if h.req.Delivery != "" {
		if err := h.d.db.LinkThread(ctx, deliveryKind(pl.Surface), h.req.Delivery, ex.ID); err != nil {
			h.d.log.Error("record the delivery's run", "run", ex.ID, "err", err)
		}
	}
	return h.conv.Say(ctx, Message{Kind: Started, Run: ex,
		Text: fmt.Sprintf("On it: run `%s` in project *%s*. Reply in this thread to steer it; `/hero cancel %s` stops it.", ex.ID, p.Name, ex.ID)})
}

// Steer hands text to a run going in the request's thread: the answer
// to its open question, else steering. Surfaces call it for replies in a
// run's thread that are not commands.
func (d *Dispatcher) Steer(ctx context.Context, req *Request, dir Directory, conv Conversation, ex *store.Execution, text string) error {
	h, err := d.handling(ctx, req, dir, conv)
	if err != nil {
		return err
	}
	return h.steer(ctx, ex, text)
}

func (h *handling) steer(ctx context.Context, ex *store.Execution, text string) error {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	pending, err := h.d.db.PendingConfirmations(ctx, ex.ID)
	if err != nil {
		return fmt.Errorf("pending confirmations of run %s: %w", ex.ID, err)
	}
	for _, c := range pending {
		if c.Kind == store.ConfirmKindQuestion {
			return h.decideOne(ctx, c.ID, true, text)
		}
	}
	if err := h.d.eng.Steer(ctx, ex.ID, h.who, text); err != nil {
		if errors.Is(err, engine.ErrFinished) {
			return h.say(ctx, Refusal, fmt.Sprintf("Run `%s` has ended; start a new one with `/hero <task>`.", ex.ID), false)
		}
		return h.refused(ctx, err)
	}
	return h.conv.Say(ctx, Message{Kind: Ack, Private: true, Run: ex, Text: fmt.Sprintf("Run `%s` reads that before its next step.", ex.ID)})
}

// pickRun finds the run a status or cancel means: the id given (any run
// the person may see), else the thread's run, else the project's latest
// (running) run.
func (h *handling) pickRun(ctx context.Context, id string, running bool) (*store.Execution, *store.Project, error) {
	if id != "" {
		ex, err := h.d.db.Execution(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, h.say(ctx, Refusal, fmt.Sprintf("There is no run `%s`.", id), true)
		}
		if err != nil {
			return nil, nil, err
		}
		p, err := h.d.db.ProjectByID(ctx, ex.ProjectID)
		if err != nil {
			return nil, nil, fmt.Errorf("project of run %s: %w", ex.ID, err)
		}
		return ex, p, nil
	}
	if ex, err := h.threadRun(ctx); err != nil || ex != nil {
		if ex == nil {
			return nil, nil, err
		}
		p, err := h.d.db.ProjectByID(ctx, ex.ProjectID)
		if err != nil {
			return nil, nil, fmt.Errorf("project of run %s: %w", ex.ID, err)
		}
		return ex, p, nil
	}
	p, err := h.project(ctx)
	if p == nil || err != nil {
		return nil, nil, err
	}
	f := store.ExecutionFilter{ProjectID: p.ID, Limit: 1}
	if running {
		f.Statuses = []string{store.StatusQueued, store.StatusRunning, store.StatusWaiting}
	}
	exs, err := h.d.db.ListExecutions(ctx, f)
	if err != nil {
		return nil, nil, fmt.Errorf("latest run of project %s: %w", p.Name, err)
	}
	if len(exs) == 0 {
		if running {
			return nil, nil, h.say(ctx, Info, fmt.Sprintf("Nothing is running in project *%s*.", p.Name), true)
		}
		return nil, nil, h.say(ctx, Info, fmt.Sprintf("No runs yet in project *%s*.", p.Name), true)
	}
	return &exs[0], p, nil
}

func (h *handling) status(ctx context.Context, id string) error {
	if id == "" && h.req.Place.Direct {
		return h.myRuns(ctx)
	}
	ex, p, err := h.pickRun(ctx, id, false)
	if ex == nil || err != nil {
		return err
	}
	role, err := h.role(ctx, p)
	if err != nil {
		return err
	}
	if !role.Valid() {
		return h.say(ctx, Refusal, fmt.Sprintf("You are not a member of run `%s`'s project.", ex.ID), true)
	}
	return h.conv.Say(ctx, Message{Kind: Info, Private: true, Run: ex, Text: StatusText(ex)})
}

// myRuns answers `status` where there is no project to look in (a
// direct message): the runs the person started that are still going.
func (h *handling) myRuns(ctx context.Context) error {
	exs, err := h.d.db.ListExecutions(ctx, store.ExecutionFilter{Statuses: []string{store.StatusQueued, store.StatusRunning, store.StatusWaiting}, Limit: 1000})
	if err != nil {
		return fmt.Errorf("runs going: %w", err)
	}
	var lines []string
	for i := range exs {
		ex := &exs[i]
		if ex.Requester != h.who.ID && (h.user == nil || ex.RequesterUserID != h.user.ID) {
			continue
		}
		if len(lines) == 10 {
			lines = append(lines, "… and more; `/hero status ID` shows any of them.")
			break
		}
		lines = append(lines, StatusText(ex))
	}
	if len(lines) == 0 {
		return h.say(ctx, Info, "You have no runs going. `/hero status ID` shows any run of your projects.", true)
	}
	return h.say(ctx, Info, "*Your runs going now:*\n"+strings.Join(lines, "\n"), true)
}

// StatusText is a run's status line.
func StatusText(ex *store.Execution) string {
	cost := "cost unknown"
	if ex.CostKnown {
		cost = fmt.Sprintf("$%.4f", ex.CostUSD)
	}
	s := fmt.Sprintf("Run `%s` is *%s*: %d steps, %d tokens, %s.", ex.ID, ex.Status, ex.Steps, ex.TokensIn+ex.TokensOut, cost)
	if ex.Error != "" {
		s += "\nError: " + ex.Error
	}
	return s
}

func (h *handling) cancel(ctx context.Context, id string) error {
	ex, _, err := h.pickRun(ctx, id, id == "")
	if ex == nil || err != nil {
		return err
	}
	if err := h.d.eng.Cancel(ctx, ex.ID, h.who); err != nil {
		return h.refused(ctx, err)
	}
	return h.conv.Say(ctx, Message{Kind: Ack, Private: true, Run: ex, Text: fmt.Sprintf("Cancelling run `%s`.", ex.ID)})
}

func (h *handling) decide(ctx context.Context, id string, approve bool, reason string) error {
	return h.decideOne(ctx, id, approve, reason)
}

func (h *handling) decideOne(ctx context.Context, id string, approve bool, answer string) error {
	c, err := h.d.eng.Decide(ctx, id, engine.Decision{Approve: approve, By: h.who, Answer: answer})
	switch {
	case err == nil:
		return h.conv.Say(ctx, Message{Kind: Ack, Private: true, Confirmation: c, Text: fmt.Sprintf("Confirmation `%s` %s.", c.ID, c.Status)})
	case errors.Is(err, engine.ErrNotAllowed):
		return h.say(ctx, Refusal, "You may not decide `"+id+"`: only the person who started the run or a project approver can.", true)
	case errors.Is(err, engine.ErrAlreadyDecided) && c != nil && c.Status == store.ConfirmExpired:
		return h.conv.Say(ctx, Message{Kind: Refusal, Private: true, Confirmation: c,
			Text: fmt.Sprintf("Confirmation `%s` expired at %s; nothing was done.", c.ID, c.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))})
	case errors.Is(err, engine.ErrAlreadyDecided) && c != nil:
		return h.say(ctx, Refusal, fmt.Sprintf("Confirmation `%s` was already %s by %s.", c.ID, c.Status, c.DecidedBy), true)
	case errors.Is(err, store.ErrNotFound):
		return h.say(ctx, Refusal, fmt.Sprintf("There is no confirmation `%s`; the id is shown with the request.", id), true)
	}
	return h.refused(ctx, err)
}

// refused tells the person what they can fix (not allowed, finished,
// restarting) and returns other errors for a retry.
func (h *handling) refused(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, engine.ErrDraining):
		return h.say(ctx, Refusal, "hero is restarting; try again in a minute.", true)
	case errors.Is(err, engine.ErrNotAllowed), errors.Is(err, engine.ErrFinished), errors.Is(err, engine.ErrAlreadyDecided), errors.Is(err, store.ErrNotFound):
		return h.say(ctx, Refusal, capitalize(err.Error())+".", true)
	}
	return err
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// link spends a one-time code from the settings page and links the
// actor's account to the hero user who made it. In public the code is
// burnt instead: anyone could read it.
func (h *handling) link(ctx context.Context, code string) error {
	a := h.req.Actor
	if !h.req.Private {
		if _, err := h.d.db.UseLinkCode(ctx, code, h.d.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("cancel a link code posted in public: %w", err)
		}
		h.d.log.Info("link code posted in public; cancelled", "user", a.Identity())
		return h.say(ctx, Refusal, linkBurnt, false)
	}
	uid, err := h.d.db.UseLinkCodeLimited(ctx, code, a.Identity(), h.d.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.d.log.Info("link code refused", "user", a.Identity())
		return h.say(ctx, Refusal, linkRefused, true)
	case errors.Is(err, store.ErrLinkAccountLimit):
		h.d.log.Warn("link refused: too many wrong codes from this account", "user", a.Identity())
		return h.say(ctx, Refusal, fmt.Sprintf("Too many wrong link codes from this account: try again in %d minutes, with a new code from hero's settings page.", int(store.LinkFailWindow.Minutes())), true)
	case errors.Is(err, store.ErrLinkGlobalLimit):
		h.d.log.Warn("link refused: too many wrong codes from everyone in the last hour", "user", a.Identity())
		return h.say(ctx, Refusal, "Too many wrong link codes were typed to hero in the last hour, so linking is paused for everyone; try again within the hour, or sign in on hero's settings page.", true)
	case err != nil:
		return fmt.Errorf("link %s: %w", a.Identity(), err)
	}
	u, err := h.d.db.UserByID(ctx, uid)
	if err != nil {
		return fmt.Errorf("link %s: %w", a.Identity(), err)
	}
	if err := h.d.db.LinkIdentity(ctx, a.Surface, a.ID, u.ID); err != nil {
		return fmt.Errorf("link %s: %w", a.Identity(), err)
	}
	if err := h.d.db.AuditAccount(ctx, u.ID, a.Surface, a.ID, store.AccountLinked, a.Identity()); err != nil {
		return fmt.Errorf("link %s: %w", a.Identity(), err)
	}
	msg := fmt.Sprintf("Linked: this account now acts as %s in hero.", u.Email)
	if h.user != nil && h.user.ID != u.ID {
		msg += fmt.Sprintf(" (It acted as %s before.)", h.user.Email)
	}
	h.d.log.Info("chat account linked", "user", a.Identity(), "hero_user", u.Email)
	return h.say(ctx, Ack, msg, true)
}

func (h *handling) use(ctx context.Context, name string) error {
	if h.req.Place.Direct {
		return h.say(ctx, Refusal, directText, true)
	}
	if h.req.Place.Project != nil {
		return h.say(ctx, Info, fmt.Sprintf("Here the project is fixed: this place belongs to project *%s*.", h.req.Place.Project.Name), true)
	}
	p, err := h.d.db.ProjectByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return h.say(ctx, Refusal, fmt.Sprintf("There is no project named `%s`; `/hero projects` lists them.", name), true)
	}
	if err != nil {
		return err
	}
	role, err := h.role(ctx, p)
	if err != nil {
		return err
	}
	if !role.AtLeast(store.RoleAdmin) {
		if h.user == nil {
			return h.say(ctx, Refusal, notLinked(h.req.Actor), true)
		}
		return h.say(ctx, Refusal, fmt.Sprintf("Only an owner or admin of project *%s* can bind a channel to it.", p.Name), true)
	}
	if err := h.d.db.BindChannel(ctx, h.req.Place.Surface, h.req.Place.Channel, p.ID, h.req.Actor.Identity()); err != nil {
		return err
	}
	return h.say(ctx, Ack, fmt.Sprintf("This channel is now bound to project *%s*: `/hero <task>` here starts a run in it.", p.Name), false)
}

func (h *handling) projects(ctx context.Context) error {
	ps, err := h.d.db.ListProjects(ctx)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return h.say(ctx, Info, "No projects yet: add one with `hero project add NAME --repo URL` or on the settings page.", true)
	}
	here := h.req.Place.Project
	if here == nil {
		here, _ = h.d.db.ChannelProject(ctx, h.req.Place.Surface, h.req.Place.Channel)
	}
	var b strings.Builder
	b.WriteString("*Your projects:*\n")
	shown := 0
	for _, p := range ps {
		role, err := h.role(ctx, &p)
		if err != nil {
			return err
		}
		if !role.Valid() {
			continue
		}
		shown++
		fmt.Fprintf(&b, "• `%s` %s", p.Name, p.RepoURL)
		if here != nil && here.ID == p.ID {
			b.WriteString(" ← here")
		}
		b.WriteByte('\n')
	}
	if shown == 0 {
		if h.user == nil && h.req.Actor.Permission == "" {
			return h.say(ctx, Refusal, notLinked(h.req.Actor), true)
		}
		return h.say(ctx, Info, "You are not a member of any project yet; ask a project owner to add you.", true)
	}
	return h.say(ctx, Info, b.String(), true)
}

func (h *handling) budget(ctx context.Context) error {
	p, err := h.project(ctx)
	if p == nil || err != nil {
		return err
	}
	role, err := h.role(ctx, p)
	if err != nil {
		return err
	}
	if !role.Valid() {
		return h.say(ctx, Refusal, fmt.Sprintf("You are not a member of project *%s*.", p.Name), true)
	}
	d := engine.DefaultLimits()
	g := p.Governance
	pick := func(v, def float64) float64 {
		if v > 0 {
			return v
		}
		return def
	}
	steps := g.MaxSteps
	if steps <= 0 {
		steps = d.MaxSteps
	}
	day := pick(g.BudgetPerDayUSD, d.BudgetPerDayUSD)
	now := h.d.now().UTC()
	spent, err := h.d.db.ProjectSpendSince(ctx, p.ID, time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	return h.say(ctx, Info, fmt.Sprintf("*%s*: $%.2f per run, $%.2f per day (spent today: $%.4f, left: $%.4f), at most %d steps per run.",
		p.Name, pick(g.BudgetPerRunUSD, d.BudgetPerRunUSD), day, spent, max(day-spent, 0), steps), true)
}

// boardActor is the person on the board, with the engine's role for them.
func (h *handling) boardActor() BoardActor {
	return BoardActor{ID: h.who.ID, Surface: h.req.Actor.Surface, Role: func(ctx context.Context, projectID int64) (store.Role, error) {
		return h.d.eng.Role(ctx, projectID, h.who)
	}}
}

// boardRefused answers a refusal of the board's rules; other errors are
// returned for a retry.
func (h *handling) boardRefused(ctx context.Context, err error) error {
	if refusal.KindOf(err) != 0 {
		return h.say(ctx, Refusal, capitalize(err.Error())+".", true)
	}
	return err
}

// card adds a card to the bound project's board (/hero card TITLE).
func (h *handling) card(ctx context.Context, title string) error {
	if h.d.board == nil {
		return h.say(ctx, Refusal, "The board is not available here.", true)
	}
	p, err := h.project(ctx)
	if p == nil {
		return err
	}
	c, col, err := h.d.board.AddCard(ctx, h.boardActor(), p.Name, title)
	if err != nil {
		return h.boardRefused(ctx, err)
	}
	text := fmt.Sprintf("Card `%s` created in %s on the board of *%s*.", c.ID, col, p.Name)
	if c.IssueURL != "" {
		text += " Its issue: " + c.IssueURL
	}
	return h.say(ctx, Info, text, false)
}

// showBoard shows the bound project's board (/hero board): each column
// with its cards, the first ten of each.
func (h *handling) showBoard(ctx context.Context) error {
	if h.d.board == nil {
		return h.say(ctx, Refusal, "The board is not available here.", true)
	}
	p, err := h.project(ctx)
	if p == nil {
		return err
	}
	cols, err := h.d.board.Columns(ctx, h.boardActor(), p.Name)
	if err != nil {
		return h.boardRefused(ctx, err)
	}
	var lines []string
	lines = append(lines, fmt.Sprintf("Board of *%s*:", p.Name))
	for _, col := range cols {
		head := fmt.Sprintf("*%s* (%d", col.Name, len(col.Cards))
		if col.WIPLimit > 0 {
			head += fmt.Sprintf(" of %d", col.WIPLimit)
		}
		lines = append(lines, head+")")
		for i, c := range col.Cards {
			if i == 10 {
				lines = append(lines, fmt.Sprintf("  … and %d more", len(col.Cards)-10))
				break
			}
			lines = append(lines, fmt.Sprintf("  • %s `%s`", inert(c.Title), c.ID))
		}
	}
	return h.say(ctx, Info, strings.Join(lines, "\n"), false)
}

// inert keeps a title people wrote from acting as markup in chat (Slack's
// <!channel> and links, HTML on GitHub): angle brackets become look-alikes
// and @ cannot mention.
func inert(s string) string {
	return strings.NewReplacer("<", "‹", ">", "›", "@", "@\u200b").Replace(s)
}
