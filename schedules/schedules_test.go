package schedules_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

var start = time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC) // a Tuesday

func TestRules(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		ctx := t.Context()
		add := func(who, expr, task string) (*schedules.Created, error) {
			return f.svc.Add(ctx, f.as(who), schedules.NewSchedule{Project: f.project.Name, Expr: expr, Task: task})
		}

		// Only members create schedules.
		if _, err := add("vic", "0 9 * * 1-5", "bump deps"); schedules.KindOf(err) != schedules.Forbidden || !strings.Contains(err.Error(), "needs the member role") || !strings.Contains(err.Error(), "you are viewer") {
			t.Fatalf("a viewer creates a schedule: %v", err)
		}
		if _, err := add("nobody", "0 9 * * 1-5", "bump deps"); schedules.KindOf(err) != schedules.Forbidden || !strings.Contains(err.Error(), "not a member") {
			t.Fatalf("a stranger creates a schedule: %v", err)
		}
		// Bad input: a clear error, nothing stored.
		for _, tc := range []struct{ expr, task, want string }{
			{"*/5 * * * *", "x", "the minimum interval is 15m"},
			{"0 9 * *", "x", "has 4 fields; want 5"},
			{"0 9 * * *", "  ", "say what the scheduled run should do"},
		} {
			if _, err := add("mia", tc.expr, tc.task); schedules.KindOf(err) != schedules.Invalid || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("add %q %q: %v, want %q", tc.expr, tc.task, err, tc.want)
			}
		}
		if _, err := f.svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Kind: "digest", Expr: "@daily"}); schedules.KindOf(err) != schedules.Invalid ||
			!strings.Contains(err.Error(), "a digest is posted to a channel, and project "+f.project.Name+" has none bound") {
			t.Fatalf("a digest without a channel: %v", err)
		}
		if _, err := f.svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Kind: "digest", Expr: "@daily", ReportSurface: "slack", ReportTo: "T1/COTHER"}); schedules.KindOf(err) != schedules.Invalid ||
			!strings.Contains(err.Error(), "slack channel T1/COTHER is not bound to project "+f.project.Name) {
			t.Fatalf("a digest into another project's channel: %v", err)
		}
		if _, err := f.svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Kind: "weekly", Expr: "@daily"}); schedules.KindOf(err) != schedules.Invalid || !strings.Contains(err.Error(), `unknown kind "weekly"`) {
			t.Fatalf("unknown kind: %v", err)
		}
		// A person hero cannot check later (an unlinked chat account).
		unlinked := f.as("mia")
		unlinked.UserID = 0
		if _, err := f.svc.Add(ctx, unlinked, schedules.NewSchedule{Project: f.project.Name, Expr: "@daily", Task: "x"}); schedules.KindOf(err) != schedules.Forbidden ||
			!strings.Contains(err.Error(), "link your chat account to a hero user first") {
			t.Fatalf("an unlinked person creates a schedule: %v", err)
		}
		if _, v, err := f.svc.List(ctx, f.as("vic"), f.project.Name); err != nil || len(v) != 0 {
			t.Fatalf("after refusals: %d schedules, %v", len(v), err)
		}

		c, err := add("mia", "CRON_TZ=Europe/Berlin 0 9 * * 1-5", "bump the dependencies")
		if err != nil {
			t.Fatal(err)
		}
		var next []string
		for _, n := range c.Next {
			next = append(next, c.Spec.Format(n))
		}
		if s := c.Schedule; !strings.HasPrefix(s.ID, "s") || s.TZ != "Europe/Berlin" || s.Expr != "0 9 * * 1-5" || s.ReportSurface != "" ||
			strings.Join(next, ", ") != "2026-12-02 09:00 CET, 2026-12-03 09:00 CET, 2026-12-04 09:00 CET" {
			t.Fatalf("created %+v, next %v", s, next)
		}
		// Viewers read; others' schedules are changed only by admins.
		_, views, err := f.svc.List(ctx, f.as("vic"), f.project.Name)
		if err != nil || len(views) != 1 || len(views[0].Next) != 3 {
			t.Fatalf("a viewer lists: %+v, %v", views, err)
		}
		if _, err := f.svc.Change(ctx, f.as("max"), f.project.Name, c.Schedule.ID, schedules.Pause); schedules.KindOf(err) != schedules.Forbidden ||
			!strings.Contains(err.Error(), "is test:mia's; only they or an admin") {
			t.Fatalf("another member pauses it: %v", err)
		}
		if _, err := f.svc.Change(ctx, f.as("vic"), f.project.Name, c.Schedule.ID, schedules.Remove); schedules.KindOf(err) != schedules.Forbidden {
			t.Fatalf("a viewer removes it: %v", err)
		}
		if _, err := f.svc.Change(ctx, f.as("mia"), "other", c.Schedule.ID, schedules.Pause); schedules.KindOf(err) != schedules.NotFound {
			t.Fatalf("pause through another project: %v", err)
		}
		if _, err := f.svc.Change(ctx, f.as("mia"), f.project.Name, c.Schedule.ID, schedules.Pause); err != nil {
			t.Fatalf("its creator pauses it: %v", err)
		}
		// A paused schedule does not fire.
		f.clock.Set(time.Date(2026, 12, 2, 8, 0, 1, 0, time.UTC))
		if cs := f.tick(t, f.svc); len(cs) != 0 || f.runs.count() != 0 {
			t.Fatalf("a paused schedule fired: %+v", cs)
		}
		// An admin resumes another's: it is theirs from now on, and
		// fires from the next slot on (the paused one is not caught up).
		if _, err := f.svc.Change(ctx, f.as("adam"), f.project.Name, c.Schedule.ID, schedules.Resume); err != nil {
			t.Fatalf("an admin resumes it: %v", err)
		}
		s := f.schedule(t, c.Schedule.ID)
		if s.Status != store.ScheduleActive || s.Creator != "test:adam" || !s.NextAt.Equal(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)) {
			t.Fatalf("resumed: %+v", s)
		}
		if _, err := f.svc.Change(ctx, f.as("adam"), f.project.Name, c.Schedule.ID, schedules.Remove); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Change(ctx, f.as("adam"), f.project.Name, c.Schedule.ID, schedules.Remove); schedules.KindOf(err) != schedules.NotFound ||
			!strings.Contains(err.Error(), "no schedule "+c.Schedule.ID) {
			t.Fatalf("removed twice: %v", err)
		}
	})
}

// TestRunsReportAndPause: a scheduled run reports in a thread of the
// project's channel; a run still active skips the slot; three failures in
// a row pause the schedule and say so there.
func TestRunsReportAndPause(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		ctx := t.Context()
		f.bindChannel(t, "T1/C9")
		c, err := f.svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Expr: "@hourly", Task: "hunt flaky tests"})
		if err != nil {
			t.Fatal(err)
		}
		id := c.Schedule.ID
		if c.Schedule.ReportSurface != "slack" || c.Schedule.ReportTo != "T1/C9" {
			t.Fatalf("a CLI schedule reports to the project's bound channel; got %q %q", c.Schedule.ReportSurface, c.Schedule.ReportTo)
		}

		// Nothing is due before its slot.
		f.clock.Set(time.Date(2026, 12, 1, 8, 59, 59, 0, time.UTC))
		if cs := f.tick(t, f.svc); len(cs) != 0 {
			t.Fatalf("fired early: %+v", cs)
		}
		f.runs.status = store.StatusRunning
		f.clock.Set(time.Date(2026, 12, 1, 9, 0, 5, 0, time.UTC))
		f.tick(t, f.svc)
		if n := f.runs.count(); n != 1 {
			t.Fatalf("%d runs at 09:00, want 1", n)
		}
		req := f.runs.starts[0]
		if req.Surface != schedules.SurfaceName || req.ThreadRef != id+"|slack|T1/C9/1" || req.By.ID != "test:mia" || req.Task != "hunt flaky tests" {
			t.Fatalf("run started with %+v", req)
		}
		if got := f.chat.all(); len(got) != 1 || !strings.HasPrefix(got[0], "T1/C9: Scheduled run (schedule "+id+", @hourly) in project "+f.project.Name+":\nhunt flaky tests") {
			t.Fatalf("posted %q", got)
		}
		// The run is still active at 10:00: the slot is skipped, and why.
		f.clock.Set(time.Date(2026, 12, 1, 10, 0, 5, 0, time.UTC))
		f.tick(t, f.svc)
		sl := f.slots(t, id)
		if f.runs.count() != 1 || len(sl) != 2 || sl[0].Outcome != store.SlotSkipped || !strings.Contains(sl[0].Note, "the previous run r") || !strings.Contains(sl[0].Note, "is still active") {
			t.Fatalf("10:00 with the run active: %d runs, slots %+v", f.runs.count(), sl)
		}

		// Three failures in a row pause it: a run that fails, and two
		// that cannot start (the project's budget is used up).
		ex, err := f.db.Execution(ctx, sl[1].ExecutionID)
		if err != nil {
			t.Fatal(err)
		}
		ex.Status = store.StatusFailed
		if err := f.db.UpdateExecution(ctx, ex, "status"); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Update(ctx, ex, engine.Event{Kind: engine.EventFinished, Outcome: &engine.Outcome{Status: store.StatusFailed, Error: "tests did not build"}}); err != nil {
			t.Fatal(err)
		}
		// The run's events and questions were shown in its thread.
		// The reference maps the place to its own message (for editing it
		// once decided).
		if ref, err := f.svc.Ask(ctx, ex, &store.Confirmation{ID: "c1", Tool: "git_push"}); err != nil || ref != `{"slack T1/C9/1":"msg-c1"}` {
			t.Fatalf("ask: %q %v", ref, err)
		}
		f.chat.mu.Lock()
		events := strings.Join(f.chat.events, "; ")
		f.chat.mu.Unlock()
		if events != "T1/C9/1 finished; T1/C9/1 ask git_push" {
			t.Fatalf("the channel's thread was shown %q", events)
		}
		f.runs.fail = fmt.Errorf("start run: %w", errBudget)
		for h := 11; h <= 12; h++ {
			f.clock.Set(time.Date(2026, 12, 1, h, 0, 5, 0, time.UTC))
			f.tick(t, f.svc)
		}
		s := f.schedule(t, id)
		if s.Status != store.SchedulePaused || s.Failures != 3 || !strings.Contains(s.Note, "paused after 3 failures in a row; the last: the run did not start: start run: the project's daily budget of $5.00 is used up") {
			t.Fatalf("after three failures: %+v", s)
		}
		posts := f.chat.all()
		if last := posts[len(posts)-1]; !strings.HasPrefix(last, "T1/C9: Schedule "+id+" (@hourly) in project "+f.project.Name+" is paused after 3 failures in a row") {
			t.Fatalf("the pause was not said where it reports: %q", posts)
		}
		f.clock.Set(time.Date(2026, 12, 1, 13, 0, 5, 0, time.UTC))
		if cs := f.tick(t, f.svc); len(cs) != 0 {
			t.Fatalf("a paused schedule was claimed: %+v", cs)
		}
		// A success between failures resets the count.
		f.runs.fail = nil
		f.runs.status = store.StatusSucceeded
		if _, err := f.svc.Change(ctx, f.as("mia"), "", id, schedules.Resume); err != nil {
			t.Fatal(err)
		}
		if s := f.schedule(t, id); s.Failures != 0 || s.Status != store.ScheduleActive {
			t.Fatalf("resumed: %+v", s)
		}
	})
}

// TestCatchUp: after an outage the missed slots fire once, and the
// skipped ones are recorded.
func TestCatchUp(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		c, err := f.svc.Add(t.Context(), f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Expr: "0 * * * *", Task: "nightly chores"})
		if err != nil {
			t.Fatal(err)
		}
		id := c.Schedule.ID
		// hero is down from 08:30 to 13:20: slots 09:00 … 13:00 pass.
		f.clock.Set(time.Date(2026, 12, 1, 13, 20, 0, 0, time.UTC))
		f.tick(t, f.svc)
		f.tick(t, f.svc) // a second tick at the same time finds nothing
		if n := f.runs.count(); n != 1 {
			t.Fatalf("%d runs after the outage, want 1", n)
		}
		sl := f.slots(t, id)
		var got []string
		for _, s := range sl {
			got = append(got, s.Slot.Format("15:04")+" "+s.Outcome)
		}
		if strings.Join(got, ", ") != "13:00 fired, 12:00 skipped, 11:00 skipped, 10:00 skipped, 09:00 skipped" {
			t.Fatalf("slots = %s", strings.Join(got, ", "))
		}
		if !strings.Contains(sl[0].Note, "caught up after an outage: 4 missed slot(s) since 2026-12-01 09:00 UTC skipped, fired once") ||
			!strings.Contains(sl[1].Note, "missed: hero was not running") {
			t.Fatalf("notes: %q / %q", sl[0].Note, sl[1].Note)
		}
		if s := f.schedule(t, id); !s.NextAt.Equal(time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)) {
			t.Fatalf("next at %s, want 14:00", s.NextAt)
		}
	})
}

// TestCreatorLostRole: a schedule whose creator is no longer a member
// stops with a message instead of running with rights nobody holds.
func TestCreatorLostRole(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		f.bindChannel(t, "T1/C9")
		c, err := f.svc.Add(t.Context(), f.as("max"), schedules.NewSchedule{Project: f.project.Name, Expr: "@daily", Task: "clean up"})
		if err != nil {
			t.Fatal(err)
		}
		f.roles["max"] = "viewer"
		f.clock.Set(time.Date(2026, 12, 2, 0, 1, 0, 0, time.UTC))
		f.tick(t, f.svc)
		if f.runs.count() != 0 {
			t.Fatal("a schedule ran for a creator who lost their role")
		}
		s := f.schedule(t, c.Schedule.ID)
		want := "Schedule " + s.ID + " (@daily) in project " + f.project.Name + " stopped: its creator test:max no longer holds the member role there"
		if s.Status != store.ScheduleStopped || !strings.HasPrefix(s.Note, want) {
			t.Fatalf("schedule %+v", s)
		}
		if posts := f.chat.all(); len(posts) != 1 || !strings.HasPrefix(posts[0], "T1/C9: "+want) {
			t.Fatalf("posted %q", posts)
		}
		if sl := f.slots(t, s.ID); len(sl) != 1 || sl[0].Outcome != store.SlotStopped {
			t.Fatalf("slots %+v", sl)
		}
		f.clock.Set(time.Date(2026, 12, 3, 0, 1, 0, 0, time.UTC))
		if cs := f.tick(t, f.svc); len(cs) != 0 {
			t.Fatalf("a stopped schedule was claimed: %+v", cs)
		}
	})
}

// TestExactlyOnceAcrossReplicas: two schedulers with their own database
// connections tick at the same moments over 100 slots; every slot of
// every schedule fires exactly once.
func TestExactlyOnceAcrossReplicas(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		ctx := t.Context()
		const nSchedules, nSlots = 5, 100
		ids := f.chores(t, nSchedules)
		other := f.service(t, storetest.OpenURL(t, url), "replica-2")
		first := time.Date(2026, 12, 1, 8, 45, 0, 0, time.UTC)
		claimedBy := map[string]int{}
		for i := range nSlots {
			f.clock.Set(first.Add(time.Duration(i) * 15 * time.Minute))
			var wg sync.WaitGroup
			var mu sync.Mutex
			for _, svc := range []*schedules.Service{f.svc, other} {
				wg.Go(func() {
					cs, err := svc.Tick(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					for _, c := range cs {
						svc.Fire(ctx, c)
						mu.Lock()
						claimedBy[c.Plan.Slot.ClaimedBy]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
		}
		f.firedEverySlotOnce(t, ids, first, nSlots)
		t.Logf("claims per replica: %v", claimedBy)
	})
}

func TestDigestAndReminder(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		testDigestAndReminder(t, url)
	})
}

var _ = context.Background
