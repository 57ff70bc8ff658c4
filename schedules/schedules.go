// Package schedules is hero's scheduled work: recurring agent runs, board
// digests and reminders on cards that sat in a column too long. Cron
// expressions are parsed by robfig/cron; the state lives in the database,
// not in the library's in-memory scheduler, so that every `hero serve`
// replica can tick and each slot still fires exactly once (see
// store.ClaimDueSchedules and Fire), and restarts forget nothing.
//
// The rules live here once, for every surface (command line, settings
// page, chat): who may create and change schedules, the minimum interval,
// catch-up after an outage, skipping while the previous run is active,
// pausing after three failures in a row, and stopping a schedule whose
// creator lost their role.
package schedules

import (
	"context"
	"errors"
	"fmt"
	"github.com/hero-dev/hero/refusal"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hero-dev/hero/bot/fanout"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// Defaults.
const (
	DefaultMinInterval = 15 * time.Minute
	DefaultStale       = 3 * 24 * time.Hour
	// DefaultSlotLease is how long a claimed slot is held by the replica
	// that claimed it before another may claim it again: long enough for
	// the slot to wait in the queue and be fired (a chat post and a
	// run's first record), short enough that a replica's death delays a
	// chore by minutes.
	DefaultSlotLease = 2 * time.Minute
	// PauseAfter is how many failures in a row pause a schedule.
	PauseAfter = 3
	// maxRecordedMisses caps the slot rows written for one catch-up; the
	// fired slot's note counts all of them.
	maxRecordedMisses = 100
)

// SurfaceName is the engine surface of scheduled runs. Their ThreadRef is
// "<schedule id>|<surface>|<thread>" (the last two empty when the
// schedule reports only to the settings page).
const SurfaceName = "schedule"

// Kind, Error and KindOf are the rules' refusals (package refusal),
// named here so callers keep saying schedules.Forbidden.
type (
	Kind  = refusal.Kind
	Error = refusal.Error
)

// Why the rules refuse a request.
const (
	Invalid   = refusal.Invalid
	Forbidden = refusal.Forbidden
	NotFound  = refusal.NotFound
)

// KindOf returns the Kind of a refusal, or 0 for other errors.
func KindOf(err error) Kind { return refusal.KindOf(err) }

var refuse = refusal.New

// Actor is who asks, as their surface knows them.
type Actor struct {
	// Principal is the person (a schedule made by them runs as them).
	engine.Principal
	// Role returns the actor's role in a project ("" when none).
	Role func(ctx context.Context, projectID int64) (store.Role, error)
}

// Store is what schedules need from the database.
type Store interface {
	ProjectByName(ctx context.Context, name string) (*store.Project, error)
	ProjectByID(ctx context.Context, id int64) (*store.Project, error)
	CreateSchedule(ctx context.Context, s *store.Schedule) error
	Schedule(ctx context.Context, id string) (*store.Schedule, error)
	ListSchedules(ctx context.Context, projectID int64) ([]store.Schedule, error)
	SetScheduleState(ctx context.Context, id, status, note string, next time.Time) error
	DeleteSchedule(ctx context.Context, id string) error
	SetScheduleCreator(ctx context.Context, id, creator string, userID int64, operator bool) error
	ScheduleSlots(ctx context.Context, id string, limit int) ([]store.ScheduleSlot, error)
	ClaimDueSchedules(ctx context.Context, at time.Time, limit int, owner string, lease time.Duration, plan func(*store.Schedule, bool) store.SlotPlan) ([]store.ClaimedSlot, error)
	HoldSlot(ctx context.Context, scheduleID string, slot time.Time, owner string, until time.Time) (bool, error)
	FinishSlot(ctx context.Context, scheduleID string, slot time.Time, outcome, executionID, note string) error
	Execution(ctx context.Context, id string) (*store.Execution, error)
	ScheduleOutcome(ctx context.Context, id string, failed bool, pauseAfter int, note string) (bool, error)
	ListBindings(ctx context.Context) ([]store.ChannelBinding, error)
	ChannelProject(ctx context.Context, surface, channelID string) (*store.Project, error)
	// for digests and reminders
	EnsureBoard(ctx context.Context, projectID int64, name string, cols []store.KanbanColumn) (*store.KanbanBoard, []store.KanbanColumn, error)
	BoardCards(ctx context.Context, boardID int64) ([]store.KanbanCard, error)
	CardsEnteredColumn(ctx context.Context, boardID int64) (map[string]time.Time, error)
	RecentRuns(ctx context.Context, projectID int64, since time.Time) ([]store.Execution, error)
}

// Runner starts runs; *engine.Engine is one. Scheduled runs go through it
// like any other run, so they count against the project's budgets.
type Runner interface {
	Start(ctx context.Context, req engine.StartRequest) (*store.Execution, error)
}

// Poster is an engine surface that can also write a message to a place
// on it: a channel (a new thread starts) or a thread (a reply). It
// returns the thread the message is in, which a run then reports to.
// Surfaces without it cannot carry schedules.
type Poster interface {
	Post(ctx context.Context, place, text string) (thread string, err error)
}

// Locator is an engine surface that says which channel one of its places
// is in: the channel whose binding gives the place its project. Each
// surface defines its places (a Slack thread "T1/C2/171.2" is in channel
// "T1/C2"; a Discord thread's id is an id like its channel's, and Discord
// names its parent), so the surface answers, not the schedules. A surface
// without it has no channel bindings (GitHub: an issue's project is its
// repository's).
type Locator interface {
	ChannelOf(ctx context.Context, place string) (string, error)
}

// Places finds engine surfaces by name (*engine.Engine is one).
type Places interface {
	Surface(name string) (engine.Surface, bool)
}

// CreatorRole returns the role a schedule's creator holds now ("" when
// none); a schedule whose creator is below member stops.
// (*engine.Engine).Role is one.
type CreatorRole func(ctx context.Context, projectID int64, creator engine.Principal) (store.Role, error)

// Config holds the service's dependencies.
type Config struct {
	Store Store
	// Runs starts scheduled runs (nil: run schedules fail with a message,
	// as on the command line, which drives no runs).
	Runs Runner
	// RunContext is the server's lifetime, which runs are driven in.
	RunContext context.Context
	// Places are the surfaces a scheduled run's events are passed to;
	// those that are Posters also carry digests, reminders and notices,
	// and Locators say which channel a place given with --channel is in.
	// nil (the command line): any surface is accepted when a schedule
	// is made, and the place must be the bound channel itself.
	Places Places
	// CreatorRole checks a creator's role at every fire.
	CreatorRole CreatorRole
	// Now is the clock (tests drive a fake one).
	Now func() time.Time
	// MinInterval is the shortest allowed period (default 15m).
	MinInterval time.Duration
	// SlotLease is how long this process holds a slot it claimed before
	// another replica may claim it again (default DefaultSlotLease).
	SlotLease time.Duration
	// Owner names this process in slot records.
	Owner string
	Log   *slog.Logger
}

// Service applies the schedule rules and fires due slots.
type Service struct {
	cfg   Config
	db    Store
	log   *slog.Logger
	relay *fanout.Surface // a scheduled run reports where its schedule does

	mu    sync.Mutex
	specs map[string]*Spec // parsed expressions by zone + expression
}

// New returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("schedules: no store")
	}
	if cfg.CreatorRole == nil {
		return nil, errors.New("schedules: no creator role lookup")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = DefaultMinInterval
	}
	if cfg.SlotLease <= 0 {
		cfg.SlotLease = DefaultSlotLease
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RunContext == nil {
		cfg.RunContext = context.Background()
	}
	s := &Service{cfg: cfg, db: cfg.Store, log: cfg.Log.With("component", "schedules"), specs: map[string]*Spec{}}
	s.relay = fanout.New(fanout.Config{Name: SurfaceName, Places: cfg.Places, Destinations: s.destinations, Finished: s.runFinished, Log: s.log})
	return s, nil
}

// spec returns a schedule's parsed expression, cached: a tick parses each
// distinct expression once.
func (s *Service) spec(expr, tz string) (*Spec, error) {
	key := tz + "\x00" + expr
	s.mu.Lock()
	sp := s.specs[key]
	s.mu.Unlock()
	if sp != nil {
		return sp, nil
	}
	sp, err := Parse(expr, tz)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.specs[key] = sp
	s.mu.Unlock()
	return sp, nil
}

func (s *Service) project(ctx context.Context, name string) (*store.Project, error) {
	if strings.TrimSpace(name) == "" {
		return nil, refuse(Invalid, "name the project (--project NAME)")
	}
	p, err := s.db.ProjectByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(NotFound, "no project named %s", name)
	}
	return p, err
}

// authorize checks that a holds at least need in p and returns a's role.
func authorize(ctx context.Context, a Actor, p *store.Project, need store.Role, what string) (store.Role, error) {
	if a.Role == nil {
		return "", refuse(Forbidden, "%s in project %s: nobody is signed in", what, p.Name)
	}
	role, err := a.Role(ctx, p.ID)
	if err != nil {
		return "", fmt.Errorf("%s: look up role: %w", what, err)
	}
	switch {
	case role.AtLeast(need):
		return role, nil
	case !role.Valid():
		return "", refuse(Forbidden, "%s: you are not a member of project %s", what, p.Name)
	default:
		return role, refuse(Forbidden, "%s needs the %s role in project %s; you are %s", what, need, p.Name, role)
	}
}

// NewSchedule is a schedule to create.
type NewSchedule struct {
	Project string
	Kind    string // run (default), digest, reminder
	Expr    string // 5 fields or a descriptor, optionally CRON_TZ=Zone prefixed
	TZ      string // IANA zone ("" UTC, or the prefix's)
	Task    string // what a run does
	Stale   time.Duration
	// ReportSurface and ReportTo are where it reports: the place it was
	// made in (a chat thread, an issue) or a channel given with
	// --channel. Empty: the project's bound channel, else only the
	// settings page.
	ReportSurface, ReportTo string
	// MadeThere: the schedule was made in the place it reports to (a
	// chat thread, an issue), whose project the surface resolved; no
	// channel binding is needed then.
	MadeThere bool
}

// Created is a new schedule with its next three fire times.
type Created struct {
	Schedule *store.Schedule
	Next     []time.Time
	Spec     *Spec
}

// Add creates a schedule. Only members (and up) may; the expression must
// parse and fire no more often than the minimum interval.
func (s *Service) Add(ctx context.Context, a Actor, n NewSchedule) (*Created, error) {
	p, err := s.project(ctx, n.Project)
	if err != nil {
		return nil, err
	}
	if _, err := authorize(ctx, a, p, store.RoleMember, "create a schedule"); err != nil {
		return nil, err
	}
	if !a.Operator && a.UserID == 0 {
		// A schedule runs later, as its creator: hero must be able to
		// check their role then, which it can for hero users only.
		return nil, refuse(Forbidden, "create a schedule: link your chat account to a hero user first (settings page: Link a chat account); a schedule runs as you later, and hero checks your role in project %s then", p.Name)
	}
	kind := n.Kind
	if kind == "" {
		kind = store.ScheduleRun
	}
	switch kind {
	case store.ScheduleRun:
		if strings.TrimSpace(n.Task) == "" {
			return nil, refuse(Invalid, "say what the scheduled run should do (the task after the expression)")
		}
		if len(n.Task) > 10000 {
			return nil, refuse(Invalid, "the task is %d characters; the limit is 10000", len(n.Task))
		}
	case store.ScheduleDigest, store.ScheduleReminder:
	default:
		return nil, refuse(Invalid, "unknown kind %q: want run, digest or reminder", n.Kind)
	}
	sp, err := Parse(n.Expr, n.TZ)
	if err != nil {
		return nil, refuse(Invalid, "%v", err)
	}
	now := s.cfg.Now()
	if err := sp.CheckInterval(now, s.cfg.MinInterval); err != nil {
		return nil, refuse(Invalid, "%v", err)
	}
	stale := n.Stale
	if stale < 0 {
		return nil, refuse(Invalid, "the stale threshold must be positive")
	}
	if stale == 0 && kind != store.ScheduleRun {
		stale = DefaultStale
	}
	surface, to := n.ReportSurface, n.ReportTo
	if (surface == "") != (to == "") {
		return nil, refuse(Invalid, "a channel needs its surface: write it as slack:T1/C2 or discord:123")
	}
	switch {
	case surface != "" && n.MadeThere:
	case surface != "":
		channel, err := s.channelOf(ctx, surface, to)
		if err != nil {
			return nil, err
		}
		if bound, err := s.db.ChannelProject(ctx, surface, channel); err != nil || bound.ID != p.ID {
			// Posting a private project's board into another project's
			// channel would show it to people outside the project.
			where := surface + " channel " + channel
			if channel != to {
				where = surface + " place " + to + " is in channel " + channel + ", which"
			}
			return nil, refuse(Invalid, "%s is not bound to project %s; bind it first (/hero use %s in that channel)", where, p.Name, p.Name)
		}
	default:
		surface, to, err = s.boundChannel(ctx, p.ID)
		if err != nil {
			return nil, err
		}
	}
	if surface == "" && kind != store.ScheduleRun {
		return nil, refuse(Invalid, "a %s is posted to a channel, and project %s has none bound: give --channel slack:TEAM/CHANNEL", kind, p.Name)
	}
	if surface != "" && s.cfg.Places != nil {
		if _, err := s.poster(surface); err != nil {
			return nil, refuse(Invalid, "%v", err)
		}
	}
	sc := &store.Schedule{
		ProjectID: p.ID, Kind: kind, Expr: sp.Expr, TZ: sp.Loc.String(), Task: strings.TrimSpace(n.Task),
		StaleS: int64(stale / time.Second), ReportSurface: surface, ReportTo: to,
		Creator: a.ID, CreatorUserID: a.UserID, CreatorOperator: a.Operator, Status: store.ScheduleActive, NextAt: sp.Next(now),
	}
	if err := s.db.CreateSchedule(ctx, sc); err != nil {
		return nil, fmt.Errorf("create schedule: %w", err)
	}
	s.log.Info("schedule created", "schedule", sc.ID, "project", p.Name, "kind", kind, "expr", sc.Expr, "tz", sc.TZ, "by", a.ID)
	return &Created{Schedule: sc, Next: sp.Upcoming(now, 3), Spec: sp}, nil
}

// channelOf is the channel place is in, as its surface says. Without
// surfaces (the command line) the place is taken as the channel itself:
// a thread there is refused as not bound, never let in.
func (s *Service) channelOf(ctx context.Context, surface, place string) (string, error) {
	if s.cfg.Places == nil {
		return place, nil
	}
	sf, ok := s.cfg.Places.Surface(surface)
	if !ok {
		return "", refuse(Invalid, "cannot report to %s: that surface is not configured", surface)
	}
	l, ok := sf.(Locator)
	if !ok {
		return "", refuse(Invalid, "%s has no channels to bind a schedule to; make the schedule where it should report (/hero schedule … there)", surface)
	}
	ch, err := l.ChannelOf(ctx, place)
	if err != nil {
		return "", refuse(Invalid, "find the channel of %s place %s: %v", surface, place, err)
	}
	return ch, nil
}

// boundChannel is the project's first bound channel ("" when none).
func (s *Service) boundChannel(ctx context.Context, projectID int64) (string, string, error) {
	bs, err := s.db.ListBindings(ctx)
	if err != nil {
		return "", "", fmt.Errorf("find the project's channel: %w", err)
	}
	for _, b := range bs {
		if b.ProjectID == projectID {
			return b.Surface, b.ChannelID, nil
		}
	}
	return "", "", nil
}

// View is a schedule as listed, with its next fire times and latest slots.
type View struct {
	store.Schedule
	Spec  *Spec
	Next  []time.Time
	Slots []store.ScheduleSlot
}

// List returns a project's schedules; viewers and up may read them.
func (s *Service) List(ctx context.Context, a Actor, project string) (*store.Project, []View, error) {
	p, err := s.project(ctx, project)
	if err != nil {
		return nil, nil, err
	}
	if _, err := authorize(ctx, a, p, store.RoleViewer, "list schedules"); err != nil {
		return nil, nil, err
	}
	scs, err := s.db.ListSchedules(ctx, p.ID)
	if err != nil {
		return nil, nil, err
	}
	out := make([]View, 0, len(scs))
	for _, sc := range scs {
		v := View{Schedule: sc}
		if sp, err := s.spec(sc.Expr, sc.TZ); err == nil {
			v.Spec = sp
			if sc.Status == store.ScheduleActive {
				v.Next = append([]time.Time{sc.NextAt}, sp.Upcoming(sc.NextAt, 2)...)
			}
		}
		if v.Slots, err = s.db.ScheduleSlots(ctx, sc.ID, 5); err != nil {
			return nil, nil, err
		}
		out = append(out, v)
	}
	return p, out, nil
}

// Change is what a person does to an existing schedule.
type Change string

// Changes.
const (
	Remove Change = "rm"
	Pause  Change = "pause"
	Resume Change = "resume"
)

// Change removes, pauses or resumes a schedule. Its creator (a member)
// may change it; admins may change anyone's. Resuming by someone else
// makes them the schedule's creator: it then runs with their rights. A
// resumed schedule fires next at its next slot from now (slots while it
// was paused are not caught up). project "" skips checking the
// schedule's project.
func (s *Service) Change(ctx context.Context, a Actor, project, id string, c Change) (*store.Schedule, error) {
	sc, err := s.db.Schedule(ctx, strings.TrimSpace(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(NotFound, "no schedule %s", id)
	}
	if err != nil {
		return nil, err
	}
	p, err := s.db.ProjectByID(ctx, sc.ProjectID)
	if err != nil {
		return nil, err
	}
	if project != "" && p.Name != project {
		return nil, refuse(NotFound, "no schedule %s in project %s", id, project)
	}
	what := map[Change]string{Remove: "remove", Pause: "pause", Resume: "resume"}[c]
	if what == "" {
		return nil, refuse(Invalid, "unknown change %q: want rm, pause or resume", c)
	}
	r, err := authorize(ctx, a, p, store.RoleMember, what+" a schedule")
	if err != nil {
		return nil, err
	}
	own := a.ID == sc.Creator || (a.UserID != 0 && a.UserID == sc.CreatorUserID)
	if !own && !r.AtLeast(store.RoleAdmin) {
		return nil, refuse(Forbidden, "schedule %s is %s's; only they or an admin of project %s may %s it", sc.ID, sc.Creator, p.Name, what)
	}
	switch c {
	case Remove:
		err = s.db.DeleteSchedule(ctx, sc.ID)
	case Pause:
		err = s.db.SetScheduleState(ctx, sc.ID, store.SchedulePaused, "paused by "+a.ID, time.Time{})
		sc.Status = store.SchedulePaused
	case Resume:
		sp, perr := s.spec(sc.Expr, sc.TZ)
		if perr != nil {
			return nil, perr
		}
		if !own {
			// The schedule now runs with the resumer's rights.
			if err := s.db.SetScheduleCreator(ctx, sc.ID, a.ID, a.UserID, a.Operator); err != nil {
				return nil, err
			}
		}
		sc.NextAt = sp.Next(s.cfg.Now())
		err = s.db.SetScheduleState(ctx, sc.ID, store.ScheduleActive, "resumed by "+a.ID, sc.NextAt)
		sc.Status = store.ScheduleActive
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("schedule changed", "schedule", sc.ID, "change", string(c), "by", a.ID)
	return sc, nil
}
