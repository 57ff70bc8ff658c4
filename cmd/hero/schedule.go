package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hero-dev/hero/bot/terminal"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
)

// scheduleActor is the local operator: the command line runs with the
// machine's full rights, and a schedule made here runs as the operator.
func scheduleActor() schedules.Actor {
	return schedules.Actor{Principal: engine.Operator(operator()), Role: func(context.Context, int64) (store.Role, error) {
		return store.RoleOwner, nil
	}}
}

// withSchedules opens the app and a schedules service for a schedule
// subcommand. It fires nothing: hero serve does.
func withSchedules(do func(ctx context.Context, svc *schedules.Service, pos []string, std stdio) error) action {
	return func(ctx context.Context, cfg config, pos []string, std stdio) error {
		a, err := openApp(ctx, cfg, std)
		if err != nil {
			return err
		}
		defer a.close()
		svc, err := schedules.New(schedules.Config{
			Store: a.db, MinInterval: cfg.ScheduleMinInterval, Log: a.log,
			CreatorRole: func(context.Context, int64, engine.Principal) (store.Role, error) {
				return "", errors.New("the command line fires no schedules")
			},
		})
		if err != nil {
			return err
		}
		err = do(ctx, svc, pos, std)
		if schedules.KindOf(err) == schedules.Invalid {
			return usageError{err.Error()}
		}
		return err
	}
}

// parseChannel reads --channel SURFACE:CHANNEL ("slack:T1/C2").
func parseChannel(s string) (surface, channel string, err error) {
	if s == "" {
		return "", "", nil
	}
	surface, channel, ok := strings.Cut(s, ":")
	if !ok || surface == "" || channel == "" {
		return "", "", usageError{fmt.Sprintf("--channel %q: write it as SURFACE:CHANNEL, like slack:T0123/C0456 (team/channel) or discord:1234567890", s)}
	}
	return surface, channel, nil
}

func scheduleCommands() []*command {
	add := &command{
		name: "schedule add", args: `--project NAME "EXPR" [TASK…] [--kind run|digest|reminder] [--tz ZONE] [--channel SURFACE:CHANNEL] [--stale 3d]`,
		summary: "schedule recurring work: an agent run, a board digest, or a reminder on stale cards",
		detail: "EXPR is one argument: five cron fields (minute hour day-of-month month day-of-week), or\n" +
			"@hourly, @daily, @weekly, @monthly, @every 2h; prefix CRON_TZ=Europe/Berlin (or give --tz) for a\n" +
			"time zone (default UTC). A schedule may not fire more often than HERO_SCHEDULE_MIN_INTERVAL\n" +
			"(default 15m). It reports to --channel, else to the project's bound channel, else only on the\n" +
			"settings page; digests and reminders need a channel. It prints the schedule's id and its next\n" +
			"three fire times. hero serve fires schedules (every replica; each slot once).",
		example: "hero schedule add --project web \"0 9 * * 1-5\" bump the dependencies and open a pull request\n" +
			"hero schedule add --project web \"CRON_TZ=Europe/Berlin 0 8 * * 1\" --kind digest --channel slack:T01/C02 --stale 3d\n" +
			"hero schedule add --project web @daily --kind reminder --stale 5d",
		flags: func(fs *flag.FlagSet) action {
			project := fs.String("project", "", "the project's `NAME`")
			kind := fs.String("kind", "run", "run, digest or reminder")
			tz := fs.String("tz", "", "the time `ZONE` (IANA name, e.g. Europe/Berlin; default UTC)")
			channel := fs.String("channel", "", "where it reports (`SURFACE:CHANNEL`, e.g. slack:T01/C02)")
			stale := fs.String("stale", "", "digests and reminders: a card is stale after this long in its column (3d, 36h; default 3d)")
			return withSchedules(func(ctx context.Context, svc *schedules.Service, pos []string, std stdio) error {
				if *project == "" || len(pos) == 0 {
					return usagef("schedule add", `usage: hero schedule add --project NAME "EXPR" [TASK…] (quote the expression as one argument)`)
				}
				surface, to, err := parseChannel(*channel)
				if err != nil {
					return err
				}
				var d time.Duration
				if *stale != "" {
					if d, err = schedules.ParseStale(*stale); err != nil {
						return usageError{err.Error()}
					}
				}
				task := strings.Join(pos[1:], " ")
				if *kind != "run" && task != "" {
					return usagef("schedule add", "a %s takes no task (got %q); did you quote the expression as one argument?", *kind, task)
				}
				c, err := svc.Add(ctx, scheduleActor(), schedules.NewSchedule{Project: *project, Kind: *kind, Expr: pos[0], TZ: *tz,
					Task: task, Stale: d, ReportSurface: surface, ReportTo: to})
				if err != nil {
					return err
				}
				fmt.Fprintf(std.out, "schedule %s\n", c.Schedule.ID)
				for _, n := range c.Next {
					fmt.Fprintf(std.out, "next: %s\n", c.Spec.Format(n))
				}
				fmt.Fprintf(std.out, "kind: %s, reports to %s\n", c.Schedule.Kind, reportsTo(c.Schedule))
				return nil
			})
		},
	}
	list := &command{
		name: "schedule list", args: "--project NAME", summary: "list a project's schedules with their next fire times and latest slots",
		example: "hero schedule list --project web",
		flags: func(fs *flag.FlagSet) action {
			project := fs.String("project", "", "the project's `NAME`")
			return withSchedules(func(ctx context.Context, svc *schedules.Service, pos []string, std stdio) error {
				if *project == "" || len(pos) != 0 {
					return usagef("schedule list", "usage: hero schedule list --project NAME")
				}
				_, vs, err := svc.List(ctx, scheduleActor(), *project)
				if err != nil {
					return err
				}
				if len(vs) == 0 {
					fmt.Fprintf(std.out, "project %s has no schedules\n", *project)
					return nil
				}
				for i, v := range vs {
					if i > 0 {
						fmt.Fprintln(std.out)
					}
					fmt.Fprintf(std.out, "%s  %s  %s  %q (%s)\n", v.ID, v.Status, v.Kind, v.Expr, v.TZ)
					switch v.Kind {
					case store.ScheduleRun:
						fmt.Fprintf(std.out, "  task: %s\n", terminal.Line(v.Task, 200))
					default:
						fmt.Fprintf(std.out, "  stale after: %s\n", schedules.FormatStale(time.Duration(v.StaleS)*time.Second))
					}
					fmt.Fprintf(std.out, "  by %s, reports to %s\n", v.Creator, reportsTo(&v.Schedule))
					if v.Note != "" && v.Status != store.ScheduleActive {
						fmt.Fprintf(std.out, "  %s\n", terminal.Text(v.Note))
					}
					for _, n := range v.Next {
						fmt.Fprintf(std.out, "  next: %s\n", v.Spec.Format(n))
					}
					for _, sl := range v.Slots {
						line := fmt.Sprintf("  %s %s", v.Spec.Format(sl.Slot), sl.Outcome)
						if sl.ExecutionID != "" {
							line += " (run " + sl.ExecutionID + ")"
						}
						if sl.Note != "" {
							line += ": " + terminal.Line(sl.Note, 200)
						}
						fmt.Fprintln(std.out, line)
					}
				}
				return nil
			})
		},
	}
	change := func(c schedules.Change, summary, done string) *command {
		name := "schedule " + string(c)
		return &command{
			name: name, args: "--project NAME ID", summary: summary,
			example: "hero " + name + " --project web s3kq7xw2a",
			flags: func(fs *flag.FlagSet) action {
				project := fs.String("project", "", "the schedule's project (`NAME`)")
				return withSchedules(func(ctx context.Context, svc *schedules.Service, pos []string, std stdio) error {
					if *project == "" || len(pos) != 1 {
						return usagef(name, "usage: hero %s --project NAME ID", name)
					}
					sc, err := svc.Change(ctx, scheduleActor(), *project, pos[0], c)
					if err != nil {
						return err
					}
					line := fmt.Sprintf("schedule %s %s", sc.ID, done)
					if c == schedules.Resume {
						if sp, err := schedules.Parse(sc.Expr, sc.TZ); err == nil {
							line += "; next: " + sp.Format(sc.NextAt)
						}
					}
					fmt.Fprintln(std.out, line)
					return nil
				})
			},
		}
	}
	return []*command{add, list,
		change(schedules.Remove, "remove a schedule and its history", "removed"),
		change(schedules.Pause, "pause a schedule (its slots pass without firing)", "paused"),
		change(schedules.Resume, "resume a paused or stopped schedule from its next slot", "resumed"),
	}
}

// reportsTo says where a schedule reports.
func reportsTo(s *store.Schedule) string {
	if s.ReportSurface == "" {
		return "the settings page only (the project has no bound channel)"
	}
	return s.ReportSurface + " " + s.ReportTo
}

// setupSchedules makes hero serve's scheduler (runSchedules starts it):
// every replica ticks every HERO_SCHEDULE_TICK and fires the slots it
// claims (a slot is claimed
// once across replicas). Scheduled runs go through the engine like any
// run, as their creator, and report through the surface named
// "schedule", which passes their events on to the channel or thread the
// schedule reports to.
func setupSchedules(workCtx context.Context, a *app, s *server) error {
	host, _ := os.Hostname()
	svc, err := schedules.New(schedules.Config{
		Store: a.db, Runs: a.engine, RunContext: workCtx, Places: a.engine, CreatorRole: a.engine.Role,
		MinInterval: a.cfg.ScheduleMinInterval, Owner: fmt.Sprintf("%s-%d", host, os.Getpid()), Log: a.log,
	})
	if err != nil {
		return fmt.Errorf("schedules: %w", err)
	}
	a.engine.AddSurface(svc)
	s.schedules = svc
	return nil
}

// runSchedules starts ticking once every surface is set up: a slot fired
// earlier would not find the channel it reports to.
func runSchedules(workCtx context.Context, a *app, s *server) {
	s.loops.start(workCtx, "scheduler", func(ctx context.Context) error { return s.schedules.Run(ctx, a.cfg.ScheduleTick) })
}
