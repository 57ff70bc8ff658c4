package schedules_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// A replica "crashes" in these tests by claiming slots and never firing
// them (Tick without Fire), or by stopping before it records a fired
// slot (crashingStore). The lease is schedules.DefaultSlotLease.
const pastLease = schedules.DefaultSlotLease + 5*time.Second

// crashingStore is a replica's database that stops it between handing a
// slot's work over and recording the slot.
type crashingStore struct{ *store.DB }

func (crashingStore) FinishSlot(context.Context, string, time.Time, string, string, string) error {
	return errors.New("the replica stopped")
}

// TestLapsedClaimFiresOnce: a replica that claims a slot and stops before
// firing it does not lose the slot: another replica claims it again once
// the lease lapses and fires it, once; the first replica, should it come
// back to the slot, finds it taken.
func TestLapsedClaimFiresOnce(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		ctx := t.Context()
		f.bindChannel(t, "T1/C9")
		run, err := f.svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Expr: "@hourly", Task: "hunt flaky tests"})
		if err != nil {
			t.Fatal(err)
		}
		digest, err := f.svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Kind: store.ScheduleDigest, Expr: "@hourly"})
		if err != nil {
			t.Fatal(err)
		}
		other := f.service(t, storetest.OpenURL(t, url), "replica-2")

		f.clock.Set(time.Date(2026, 12, 1, 9, 0, 5, 0, time.UTC))
		crashed, err := f.svc.Tick(ctx) // claimed, and the replica dies
		if err != nil || len(crashed) != 2 {
			t.Fatalf("replica-1 claimed %d slots (%v), want 2", len(crashed), err)
		}
		// While the lease holds, nobody else claims the slots.
		f.clock.Set(time.Date(2026, 12, 1, 9, 2, 0, 0, time.UTC))
		if cs := f.tick(t, other); len(cs) != 0 {
			t.Fatalf("replica-2 claimed %d slots under replica-1's lease", len(cs))
		}
		f.clock.Set(time.Date(2026, 12, 1, 9, 0, 5, 0, time.UTC).Add(pastLease))
		cs := f.tick(t, other)
		if len(cs) != 2 || !cs[0].Reclaimed || !cs[1].Reclaimed {
			t.Fatalf("replica-2 after the lease claimed %+v, want both slots again", cs)
		}
		if n := f.runs.count(); n != 1 {
			t.Fatalf("%d runs, want 1", n)
		}
		posts := f.chat.all()
		if len(posts) != 2 || !strings.Contains(strings.Join(posts, "\n"), "Scheduled run (schedule "+run.Schedule.ID) {
			t.Fatalf("posted %q, want the run's thread and the digest once each", posts)
		}
		for _, id := range []string{run.Schedule.ID, digest.Schedule.ID} {
			sl := f.slots(t, id)
			if len(sl) != 1 || sl[0].Outcome != store.SlotFired || sl[0].ClaimedBy != "replica-2" || !sl[0].Slot.Equal(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)) {
				t.Fatalf("slots of %s: %+v", id, sl)
			}
		}
		// replica-1 comes back to its old claims: taken over, nothing fires.
		for _, c := range crashed {
			f.svc.Fire(ctx, c)
		}
		if n, p := f.runs.count(), len(f.chat.all()); n != 1 || p != 2 {
			t.Fatalf("the stale claims fired again: %d runs, %d posts", n, p)
		}
		if cs := f.tick(t, other); len(cs) != 0 {
			t.Fatalf("claimed again after firing: %+v", cs)
		}
	})
}

// TestStoppedAfterStartingRun: a replica that started a slot's run and
// stopped before recording the slot: the replica that claims the slot
// again finds the run (its id is the slot's) and records it; no second
// run starts and no second thread is opened.
func TestStoppedAfterStartingRun(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		ctx := t.Context()
		f.bindChannel(t, "T1/C9")
		c, err := f.svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Expr: "@hourly", Task: "hunt flaky tests"})
		if err != nil {
			t.Fatal(err)
		}
		dying, err := schedules.New(schedules.Config{Store: crashingStore{storetest.OpenURL(t, url)}, Runs: f.runs, Places: places{"slack": f.chat},
			CreatorRole: func(context.Context, int64, engine.Principal) (store.Role, error) { return store.RoleMember, nil },
			Now:         f.clock.Now, Owner: "replica-1"})
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Set(time.Date(2026, 12, 1, 9, 0, 5, 0, time.UTC))
		f.tick(t, dying)
		if n := f.runs.count(); n != 1 {
			t.Fatalf("%d runs, want 1", n)
		}
		if sl := f.slots(t, c.Schedule.ID); len(sl) != 1 || sl[0].Outcome != store.SlotClaimed {
			t.Fatalf("after the crash: %+v", sl)
		}
		other := f.service(t, storetest.OpenURL(t, url), "replica-2")
		f.clock.Add(pastLease)
		if cs := f.tick(t, other); len(cs) != 1 || !cs[0].Reclaimed {
			t.Fatalf("replica-2 claimed %+v", cs)
		}
		if n, p := f.runs.count(), len(f.chat.all()); n != 1 || p != 1 {
			t.Fatalf("after the takeover: %d runs, %d posts; want 1 and 1", n, p)
		}
		sl := f.slots(t, c.Schedule.ID)
		ex, err := f.db.Execution(ctx, sl[0].ExecutionID)
		if err != nil || sl[0].Outcome != store.SlotFired || ex.Task != "hunt flaky tests" || !strings.Contains(sl[0].Note, "recorded by replica-2 after the replica that started it stopped") {
			t.Fatalf("slot %+v, run %+v, %v", sl[0], ex, err)
		}
		if s := f.schedule(t, c.Schedule.ID); s.LastRunID != ex.ID {
			t.Fatalf("the schedule's last run is %q, want %q", s.LastRunID, ex.ID)
		}
	})
}

// slowRunner lets another replica take a slot over while this one is
// between opening the run's thread and starting the run (its lease
// lapsed meanwhile: a stalled process).
type slowRunner struct {
	schedules.Runner
	stall func()
}

func (r slowRunner) Start(ctx context.Context, req engine.StartRequest) (*store.Execution, error) {
	r.stall()
	return r.Runner.Start(ctx, req)
}

// TestStalledReplicaCannotStartTwice: the replica whose lease lapsed while
// it was firing and the replica that took the slot over both start the
// slot's run; the database takes one.
func TestStalledReplicaCannotStartTwice(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		ctx := t.Context()
		c, err := f.svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Expr: "@hourly", Task: "hunt flaky tests"})
		if err != nil {
			t.Fatal(err)
		}
		other := f.service(t, storetest.OpenURL(t, url), "replica-2")
		var took []store.ClaimedSlot
		stalled, err := schedules.New(schedules.Config{Store: storetest.OpenURL(t, url), Places: places{"slack": f.chat},
			Runs: slowRunner{Runner: f.runs, stall: func() {
				f.clock.Add(pastLease)
				took = f.tick(t, other)
			}},
			CreatorRole: func(context.Context, int64, engine.Principal) (store.Role, error) { return store.RoleMember, nil },
			Now:         f.clock.Now, Owner: "replica-1"})
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Set(time.Date(2026, 12, 1, 9, 0, 5, 0, time.UTC))
		f.tick(t, stalled)
		if len(took) != 1 || !took[0].Reclaimed {
			t.Fatalf("replica-2 took over %+v", took)
		}
		if n := f.runs.count(); n != 1 {
			t.Fatalf("%d runs, want 1", n)
		}
		sl := f.slots(t, c.Schedule.ID)
		if len(sl) != 1 || sl[0].Outcome != store.SlotFired || sl[0].ClaimedBy != "replica-2" || sl[0].ExecutionID == "" {
			t.Fatalf("slots %+v", sl)
		}
	})
}

// TestLapsedClaimAfterOutage: when no replica ticked until the schedule
// was due again, the lapsed slot is recorded as skipped and the catch-up
// fires once.
func TestLapsedClaimAfterOutage(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		ctx := t.Context()
		c, err := f.svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Expr: "@hourly", Task: "hunt flaky tests"})
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Set(time.Date(2026, 12, 1, 9, 0, 5, 0, time.UTC))
		if _, err := f.svc.Tick(ctx); err != nil { // claimed; every replica stops
			t.Fatal(err)
		}
		f.clock.Set(time.Date(2026, 12, 1, 11, 30, 0, 0, time.UTC))
		f.tick(t, f.service(t, storetest.OpenURL(t, url), "replica-2"))
		if n := f.runs.count(); n != 1 {
			t.Fatalf("%d runs after the outage, want 1", n)
		}
		var got []string
		for _, s := range f.slots(t, c.Schedule.ID) {
			got = append(got, s.Slot.Format("15:04")+" "+s.Outcome)
		}
		if strings.Join(got, ", ") != "11:00 fired, 10:00 skipped, 09:00 skipped" {
			t.Fatalf("slots = %s", strings.Join(got, ", "))
		}
		if sl := f.slots(t, c.Schedule.ID); !strings.Contains(sl[2].Note, "replica-1 claimed it and stopped before firing it; the schedule was due again, and the catch-up fires once") {
			t.Fatalf("the lapsed slot's note: %q", sl[2].Note)
		}
	})
}

// TestExactlyOnceWithCrashes: two schedulers with their own connections
// tick together over 100 slots of five schedules; each drops a fifth of
// the slots it claims (it "dies" before firing them). Every slot still
// fires exactly once: the other replica, or the same one after the lease,
// claims the dropped ones again.
func TestExactlyOnceWithCrashes(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		ctx := t.Context()
		const nSchedules, nSlots = 5, 100
		ids := f.chores(t, nSchedules)
		other := f.service(t, storetest.OpenURL(t, url), "replica-2")
		first := time.Date(2026, 12, 1, 8, 45, 0, 0, time.UTC)
		var mu sync.Mutex
		dropped, reclaimed := 0, 0
		rng := rand.New(rand.NewPCG(1, 2))
		tickBoth := func() {
			var wg sync.WaitGroup
			for _, svc := range []*schedules.Service{f.svc, other} {
				wg.Go(func() {
					cs, err := svc.Tick(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					for _, c := range cs {
						mu.Lock()
						drop := !c.Reclaimed && rng.IntN(5) == 0
						if drop {
							dropped++
						}
						if c.Reclaimed {
							reclaimed++
						}
						mu.Unlock()
						if !drop {
							svc.Fire(ctx, c)
						}
					}
				})
			}
			wg.Wait()
		}
		for i := range nSlots {
			f.clock.Set(first.Add(time.Duration(i) * 15 * time.Minute))
			tickBoth()
			f.clock.Add(pastLease) // the next ticks find the dropped claims lapsed
			tickBoth()
		}
		if dropped == 0 || reclaimed != dropped {
			t.Fatalf("%d claims dropped, %d claimed again; want equal and more than none", dropped, reclaimed)
		}
		f.firedEverySlotOnce(t, ids, first, nSlots)
		t.Logf("%d claims dropped and claimed again", dropped)
	})
}
