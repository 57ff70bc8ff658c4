package schedules

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// ChatRequest is a /hero schedule command from a chat surface or GitHub,
// after the surface resolved the project and the person.
type ChatRequest struct {
	Project *store.Project
	Actor   Actor
	// Surface and Place are where it was typed (a channel or thread,
	// an issue): a schedule made there reports there.
	Surface, Place string
	// What: "add" (Expr, Task), "list", or "rm", "pause", "resume" (ID).
	What, Expr, Task, ID string
}

// Chat does a /hero schedule command and returns the answer to show;
// refusals by the rules are answers too (err is for failures worth a
// retry).
func (s *Service) Chat(ctx context.Context, r ChatRequest) (string, error) {
	p := r.Project
	switch r.What {
	case "add":
		c, err := s.Add(ctx, r.Actor, NewSchedule{Project: p.Name, Expr: r.Expr, Task: r.Task,
			ReportSurface: r.Surface, ReportTo: r.Place, MadeThere: true})
		if err != nil {
			return answerRefusal(err)
		}
		var next []string
		for _, n := range c.Next {
			next = append(next, c.Spec.Format(n))
		}
		return fmt.Sprintf("Schedule `%s` made in project *%s*: `%s` (%s) runs “%s” and reports here. Next: %s. `/hero schedule pause %s` pauses it.",
			c.Schedule.ID, p.Name, c.Schedule.Expr, c.Schedule.TZ, oneLine(c.Schedule.Task, 200), strings.Join(next, ", "), c.Schedule.ID), nil
	case "list":
		_, views, err := s.List(ctx, r.Actor, p.Name)
		if err != nil {
			return answerRefusal(err)
		}
		if len(views) == 0 {
			return fmt.Sprintf("Project *%s* has no schedules. Make one with `/hero schedule \"0 9 * * 1-5\" <task>`.", p.Name), nil
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Schedules of project *%s*:", p.Name)
		for _, v := range views {
			what := "“" + oneLine(v.Task, 80) + "”"
			if v.Kind != store.ScheduleRun {
				what = v.Kind
			}
			fmt.Fprintf(&b, "\n• `%s` %s `%s` (%s) %s, by %s", v.ID, v.Status, v.Expr, v.TZ, what, v.Creator)
			if len(v.Next) > 0 {
				fmt.Fprintf(&b, "; next %s", v.Spec.Format(v.Next[0]))
			}
			if v.Status != store.ScheduleActive && v.Note != "" {
				fmt.Fprintf(&b, " (%s)", oneLine(v.Note, 160))
			}
		}
		return b.String(), nil
	case string(Remove), string(Pause), string(Resume):
		sc, err := s.Change(ctx, r.Actor, p.Name, r.ID, Change(r.What))
		if err != nil {
			return answerRefusal(err)
		}
		switch Change(r.What) {
		case Remove:
			return fmt.Sprintf("Schedule `%s` removed.", sc.ID), nil
		case Pause:
			return fmt.Sprintf("Schedule `%s` paused; `/hero schedule resume %s` resumes it.", sc.ID, sc.ID), nil
		}
		next := ""
		if sp, err := s.spec(sc.Expr, sc.TZ); err == nil {
			next = " Next: " + sp.Format(sc.NextAt) + "."
		}
		return fmt.Sprintf("Schedule `%s` resumed from its next slot.%s", sc.ID, next), nil
	}
	return "", fmt.Errorf("schedule: unknown request %q", r.What)
}

// answerRefusal turns a refusal by the rules into the answer; other errors stay
// errors.
func answerRefusal(err error) (string, error) {
	var e *Error
	if errors.As(err, &e) {
		if strings.HasSuffix(e.Msg, ".") {
			return e.Msg, nil
		}
		return e.Msg + ".", nil
	}
	return "", err
}

// ChatCommand answers a parsed /hero schedule command (bot.VerbSchedule)
// typed by who at place on surface, in project p: the port the chat
// dispatcher calls. The person's role is the engine's, through
// CreatorRole.
func (s *Service) ChatCommand(ctx context.Context, p *store.Project, who engine.Principal, surface, place string, cmd bot.Command) (string, error) {
	a := Actor{Principal: who, Role: func(ctx context.Context, projectID int64) (store.Role, error) {
		return s.cfg.CreatorRole(ctx, projectID, who)
	}}
	return s.Chat(ctx, ChatRequest{Project: p, Actor: a, Surface: surface, Place: place, What: cmd.Schedule, Expr: cmd.Expr, Task: cmd.Task, ID: cmd.ID})
}
