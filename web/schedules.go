package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
)

// The Schedules tab (/settings/projects/{project}/schedules): a project's
// schedules with their next fire times and latest slots (what fired, what
// was skipped and why), a form to add one, and pause, resume and remove
// buttons. The rules are the schedules package's: the page only
// translates its refusals.

func (s *Server) mountSchedules(h func(string, http.HandlerFunc)) {
	h("GET /settings/projects/{project}/schedules", s.project(store.RoleViewer, s.schedulesPage))
	h("POST /settings/projects/{project}/schedules", s.project(store.RoleViewer, s.addSchedule))
	h("POST /settings/projects/{project}/schedules/{schedule}/{change}", s.project(store.RoleViewer, s.changeSchedule))
}

// scheduleActor is the signed-in person: a schedule they make runs as
// them, with the role they hold when it fires.
func (s *Server) scheduleActor(r *http.Request) schedules.Actor {
	u := sessionFrom(r).user
	return schedules.Actor{Principal: engine.Principal{ID: u.Email, UserID: u.ID}, Role: func(ctx context.Context, projectID int64) (store.Role, error) {
		return s.effectiveRole(ctx, u, projectID)
	}}
}

type schedulesData struct {
	Schedules []scheduleRow
	CanWrite  bool
	MinGap    string
	// The add form as typed, when adding was refused.
	Expr, TZ, Kind, Task, Channel, Stale string
	// Created is the schedule just made, with its next three fire times.
	Created string
	Next    []string
}

type scheduleRow struct {
	schedules.View
	Reports, Stale string
	Next           []string
	Slots          []slotRow
	// LastRun is the schedule's latest run (nil: none yet): a run that
	// reports only here waits on its page for decisions.
	LastRun *store.Execution
}

type slotRow struct {
	At, Outcome, Run, Note string
}

func (s *Server) schedulesPage(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	s.renderSchedules(w, r, p, role, 0, "", schedulesData{})
}

func (s *Server) renderSchedules(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role, status int, errMsg string, d schedulesData) {
	_, views, err := s.schedules.List(r.Context(), s.scheduleActor(r), p.Name)
	if err != nil {
		if st := refusalStatus(err); st != 0 {
			s.problem(w, r, st, err.Error())
			return
		}
		s.fail(w, r, err)
		return
	}
	for _, v := range views {
		row := scheduleRow{View: v, Reports: "the settings page only", Stale: schedules.FormatStale(time.Duration(v.StaleS) * time.Second)}
		if v.ReportSurface != "" {
			row.Reports = v.ReportSurface + " " + v.ReportTo
		}
		for _, n := range v.Next {
			row.Next = append(row.Next, v.Spec.Format(n))
		}
		if v.LastRunID != "" {
			ex, err := s.cfg.DB.Execution(r.Context(), v.LastRunID)
			switch {
			case err == nil:
				row.LastRun = ex
			case !errors.Is(err, store.ErrNotFound):
				s.fail(w, r, err)
				return
			}
		}
		for _, sl := range v.Slots {
			at := sl.Slot.UTC().Format("2006-01-02 15:04 UTC")
			if v.Spec != nil {
				at = v.Spec.Format(sl.Slot)
			}
			row.Slots = append(row.Slots, slotRow{At: at, Outcome: sl.Outcome, Run: sl.ExecutionID, Note: sl.Note})
		}
		d.Schedules = append(d.Schedules, row)
	}
	d.CanWrite = role.AtLeast(store.RoleMember)
	if d.Kind == "" {
		d.Kind = store.ScheduleRun
	}
	s.render(w, r, status, "schedules", &view{Title: p.Name + " · schedules", Project: p, Role: role, Error: errMsg, Data: d})
}

func (s *Server) addSchedule(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	d := schedulesData{Expr: r.PostFormValue("expr"), TZ: strings.TrimSpace(r.PostFormValue("tz")), Kind: r.PostFormValue("kind"),
		Task: strings.ReplaceAll(r.PostFormValue("task"), "\r\n", "\n"), Channel: strings.TrimSpace(r.PostFormValue("channel")), Stale: strings.TrimSpace(r.PostFormValue("stale"))}
	n := schedules.NewSchedule{Project: p.Name, Kind: d.Kind, Expr: d.Expr, TZ: d.TZ, Task: d.Task}
	if d.Channel != "" {
		surface, channel, ok := strings.Cut(d.Channel, ":")
		if !ok || surface == "" || channel == "" {
			s.renderSchedules(w, r, p, role, http.StatusBadRequest, "Write the channel as SURFACE:CHANNEL, like slack:T0123/C0456.", d)
			return
		}
		n.ReportSurface, n.ReportTo = surface, channel
	}
	if d.Stale != "" {
		v, err := schedules.ParseStale(d.Stale)
		if err != nil {
			s.renderSchedules(w, r, p, role, http.StatusBadRequest, err.Error(), d)
			return
		}
		n.Stale = v
	}
	if n.Kind != "" && n.Kind != store.ScheduleRun {
		n.Task = "" // the form's task box is for runs
	}
	c, err := s.schedules.Add(r.Context(), s.scheduleActor(r), n)
	if err != nil {
		if st := refusalStatus(err); st != 0 {
			s.renderSchedules(w, r, p, role, st, err.Error(), d)
			return
		}
		s.fail(w, r, err)
		return
	}
	// Shown at once rather than after a redirect: the next three fire
	// times are part of the answer.
	done := schedulesData{Created: c.Schedule.ID}
	for _, t := range c.Next {
		done.Next = append(done.Next, c.Spec.Format(t))
	}
	s.renderSchedules(w, r, p, role, http.StatusCreated, "", done)
}

func (s *Server) changeSchedule(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	c := schedules.Change(r.PathValue("change"))
	if _, err := s.schedules.Change(r.Context(), s.scheduleActor(r), p.Name, r.PathValue("schedule"), c); err != nil {
		if st := refusalStatus(err); st != 0 {
			s.renderSchedules(w, r, p, role, st, err.Error(), schedulesData{})
			return
		}
		s.fail(w, r, err)
		return
	}
	redirect(w, r, "/settings/projects/"+p.Name+"/schedules", "schedule-"+string(c))
}

// defaultSchedules is the service the page uses when the server wires
// none: it manages schedules; hero serve's scheduler fires them.
func defaultSchedules(db *store.DB) (*schedules.Service, error) {
	return schedules.New(schedules.Config{Store: db, CreatorRole: func(context.Context, int64, engine.Principal) (store.Role, error) {
		return "", nil
	}, Now: time.Now})
}
