package schedules_test

import (
	"context"
	"errors"
	"fmt"
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

// forEachDatabase is storetest.EachURL whose MariaDB variant has a
// database of its own (storetest.FreshMySQL): a tick claims every due
// schedule in the database.
func forEachDatabase(t *testing.T, fn func(t *testing.T, url string)) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		if !strings.HasPrefix(url, "sqlite://") {
			url = storetest.FreshMySQL(t, "sched")
		}
		fn(t, url)
	})
}

// clock is the fake clock every timing test drives.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// runner stands in for the engine at its Start port: it records each run
// in the database with the status it is told (so "is the previous run
// still active" reads real rows), or refuses with fail.
type runner struct {
	db     *store.DB
	mu     sync.Mutex
	status string
	fail   error
	starts []engine.StartRequest
}

func (r *runner) Start(ctx context.Context, req engine.StartRequest) (*store.Execution, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	ex := &store.Execution{ID: req.ID, ProjectID: req.Project.ID, Status: r.status, Surface: req.Surface, ThreadRef: req.ThreadRef,
		Requester: req.By.ID, RequesterUserID: req.By.UserID, Task: req.Task, CostKnown: true, LeaseUntil: time.Now()}
	if err := r.db.CreateExecution(ctx, ex); err != nil {
		return nil, err
	}
	r.starts = append(r.starts, req)
	return ex, nil
}

func (r *runner) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.starts)
}

// poster is a chat surface that records what hero posted where and the
// run events it was shown.
type poster struct {
	events []string
	mu     sync.Mutex
	posts  []string
	fail   error
}

func (p *poster) Post(_ context.Context, place, text string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return "", p.fail
	}
	p.posts = append(p.posts, place+": "+text)
	return fmt.Sprintf("%s/%d", place, len(p.posts)), nil
}

func (p *poster) Name() string { return "slack" }

// ChannelOf: the fixture's places are channels (real surfaces are in
// TestReportPlaceChannelPerSurface).
func (p *poster) ChannelOf(_ context.Context, place string) (string, error) { return place, nil }

func (p *poster) Update(_ context.Context, ex *store.Execution, ev engine.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ex.ThreadRef+" "+string(ev.Kind))
	return nil
}

func (p *poster) Ask(_ context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ex.ThreadRef+" ask "+c.Tool)
	return "msg-" + c.ID, nil
}

// places finds the surfaces by name, as the engine does.
type places map[string]engine.Surface

func (p places) Surface(name string) (engine.Surface, bool) {
	s, ok := p[name]
	return s, ok
}

func (p *poster) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.posts...)
}

// fixture is a project with people in every role, a bound Slack channel,
// and a schedules service on a fake clock.
type fixture struct {
	db      *store.DB
	svc     *schedules.Service
	clock   *clock
	runs    *runner
	chat    *poster
	project *store.Project
	roles   map[string]store.Role
}

func newFixture(t testing.TB, url string, start time.Time) *fixture {
	t.Helper()
	db := storetest.OpenURL(t, url)
	p := &store.Project{Name: fmt.Sprintf("p%d", rand.Int64()), RepoURL: "https://github.com/o/r", DefaultBranch: "main"}
	if err := db.CreateProject(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, clock: newClock(start), runs: &runner{db: db, status: store.StatusSucceeded}, chat: &poster{}, project: p,
		roles: map[string]store.Role{"olga": store.RoleOwner, "adam": store.RoleAdmin, "mia": store.RoleMember, "max": store.RoleMember, "vic": store.RoleViewer}}
	f.svc = f.service(t, db, "replica-1")
	return f
}

// service is a schedules service of one replica over db.
func (f *fixture) service(t testing.TB, db *store.DB, owner string) *schedules.Service {
	t.Helper()
	svc, err := schedules.New(schedules.Config{
		Store: db, Runs: f.runs, Places: places{"slack": f.chat},
		CreatorRole: func(_ context.Context, _ int64, creator engine.Principal) (store.Role, error) {
			return f.roles[creator.ID[len("test:"):]], nil
		},
		Now: f.clock.Now, Owner: owner,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// as is a person linked to a hero user (each name its own user id).
func (f *fixture) as(who string) schedules.Actor {
	uid := int64(1000)
	for _, r := range who {
		uid = uid*31 + int64(r)
	}
	return schedules.Actor{Principal: engine.Principal{ID: "test:" + who, UserID: uid},
		Role: func(context.Context, int64) (store.Role, error) { return f.roles[who], nil }}
}

func (f *fixture) bindChannel(t testing.TB, channel string) {
	t.Helper()
	if err := f.db.BindChannel(context.Background(), "slack", channel, f.project.ID, "test:olga"); err != nil {
		t.Fatal(err)
	}
}

// tick claims due slots and fires them, as hero serve's loop does.
func (f *fixture) tick(t testing.TB, svc *schedules.Service) []store.ClaimedSlot {
	t.Helper()
	cs, err := svc.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		svc.Fire(context.Background(), c)
	}
	return cs
}

func (f *fixture) schedule(t testing.TB, id string) *store.Schedule {
	t.Helper()
	s, err := f.db.Schedule(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) slots(t testing.TB, id string) []store.ScheduleSlot {
	t.Helper()
	s, err := f.db.ScheduleSlots(context.Background(), id, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var errBudget = errors.New("the project's daily budget of $5.00 is used up")

// chores adds n schedules every 15 minutes, tasks "chore 0" … "chore n-1".
func (f *fixture) chores(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		c, err := f.svc.Add(t.Context(), f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Expr: "*/15 * * * *", Task: fmt.Sprintf("chore %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.Schedule.ID)
	}
	return ids
}

// firedEverySlotOnce checks that each of the chores started one run per
// slot, nSlots slots every 15 minutes from first, and recorded each slot
// fired with its run.
func (f *fixture) firedEverySlotOnce(t *testing.T, ids []string, first time.Time, nSlots int) {
	t.Helper()
	if n := f.runs.count(); n != len(ids)*nSlots {
		t.Fatalf("%d runs, want %d", n, len(ids)*nSlots)
	}
	perTask := map[string]int{}
	for _, r := range f.runs.starts {
		perTask[r.Task]++
	}
	for i := range ids {
		if n := perTask[fmt.Sprintf("chore %d", i)]; n != nSlots {
			t.Errorf("chore %d ran %d times, want %d", i, n, nSlots)
		}
	}
	for _, id := range ids {
		sl := f.slots(t, id)
		if len(sl) != nSlots {
			t.Fatalf("schedule %s has %d slot records, want %d", id, len(sl), nSlots)
		}
		for j, s := range sl {
			want := first.Add(time.Duration(nSlots-1-j) * 15 * time.Minute)
			if !s.Slot.Equal(want) || s.Outcome != store.SlotFired || s.ExecutionID == "" {
				t.Fatalf("slot %d of %s = %+v, want fired at %s", j, id, s, want)
			}
		}
	}
}
