package bot_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

var _ bot.Engine = (*enginetest.Recorder)(nil)

// fakeConv records what the person was told.
type fakeConv struct {
	mu      sync.Mutex
	said    []bot.Message
	threads int
}

func (c *fakeConv) Say(_ context.Context, m bot.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.said = append(c.said, m)
	return nil
}

func (c *fakeConv) OpenThread(context.Context, *store.Project, string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.threads++
	return fmt.Sprintf("T1/C1/%d.0", c.threads), nil
}

func (c *fakeConv) texts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.said {
		out = append(out, m.Text)
	}
	return out
}

// directory maps actors to hero users by linked identity.
type directory struct{ db *store.DB }

func (d directory) HeroUser(ctx context.Context, a bot.Actor) (*store.User, error) {
	u, err := d.db.UserByIdentity(ctx, a.Surface, a.ID)
	if err != nil {
		return nil, nil
	}
	return u, nil
}

type fixture struct {
	db      *store.DB
	eng     *enginetest.Recorder
	d       *bot.Dispatcher
	project *store.Project
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := storetest.Open(t)
	p := &store.Project{Name: "web", RepoURL: "https://github.com/o/web", DefaultBranch: "main"}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	eng := &enginetest.Recorder{DB: db}
	d, err := bot.NewDispatcher(eng, db, context.Background, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, eng: eng, d: d, project: p}
}

func (f *fixture) dispatch(t *testing.T, req *bot.Request) *fakeConv {
	t.Helper()
	conv := &fakeConv{}
	if err := f.d.Dispatch(t.Context(), req, directory{f.db}, conv); err != nil {
		t.Fatalf("dispatch %+v: %v", req.Command, err)
	}
	return conv
}

func parse(t *testing.T, text string) bot.Command {
	t.Helper()
	c, err := bot.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A start handled twice under one delivery (the inbox delivers at least
// once) starts one run and announces it once.
func TestDispatchStartIsIdempotentPerDelivery(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	req := &bot.Request{Command: parse(t, "fix the login test"), Delivery: "d1",
		Actor: bot.Actor{Surface: "github", ID: "ana", Permission: "write"},
		Place: bot.Place{Surface: "github", Project: f.project, Thread: "o/web#7", Ref: "o/web#7@c1"}}
	first := f.dispatch(t, req)
	second := f.dispatch(t, req)
	starts := f.eng.Starts()
	if len(starts) != 1 {
		t.Fatalf("%d runs started for one delivery", len(starts))
	}
	if len(first.said) != 1 || first.said[0].Kind != bot.Started || len(second.said) != 0 {
		t.Fatalf("said %+v then %+v", first.said, second.said)
	}
	if got := starts[0]; got.ThreadRef != "o/web#7@c1" || got.By.ID != "github:ana" || got.By.Granted != store.RoleMember {
		t.Fatalf("start request %+v", got)
	}
	// A new request in the same thread while the run goes steers it.
	f.dispatch(t, &bot.Request{Command: parse(t, "also fix the logout test"), Delivery: "d2", Actor: req.Actor, Place: req.Place})
	run := first.said[0].Run
	if run == nil {
		t.Fatal("the start was announced without its run")
	}
	if starts, steers := f.eng.Starts(), f.eng.Steers(); len(starts) != 1 || len(steers) != 1 || steers[0] != (enginetest.Steered{ID: run.ID, Body: "also fix the logout test"}) {
		t.Fatalf("starts %d, steers %+v", len(starts), steers)
	}
}

// status finds any run by id the person may see, not only among the
// project's newest.
func TestDispatchStatusFindsOldRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	var oldest string
	for i := range 205 {
		ex := &store.Execution{ProjectID: f.project.ID, Status: store.StatusSucceeded, Surface: "github", ThreadRef: "o/web#1",
			Requester: "github:ana", Task: "t", Model: "m", CreatedAt: time.Now().Add(time.Duration(i-300) * time.Hour), UpdatedAt: time.Now(), LeaseUntil: time.Now()}
		if err := f.db.CreateExecution(ctx, ex); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			oldest = ex.ID
		}
	}
	actor := bot.Actor{Surface: "github", ID: "ana", Permission: "read"}
	conv := f.dispatch(t, &bot.Request{Command: parse(t, "status "+oldest), Actor: actor, Place: bot.Place{Surface: "github", Project: f.project, Thread: "o/web#2"}})
	if got := conv.texts(); len(got) != 1 || !strings.Contains(got[0], "Run `"+oldest+"` is *succeeded*") {
		t.Fatalf("status said %q", got)
	}
	// Someone with no role in the run's project learns nothing about it.
	conv = f.dispatch(t, &bot.Request{Command: parse(t, "status "+oldest), Actor: bot.Actor{Surface: "slack", ID: "T1/U9"}, Place: bot.Place{Surface: "slack", Channel: "T1/C1"}})
	if got := conv.texts(); len(got) != 1 || !strings.Contains(got[0], "not a member of run") {
		t.Fatalf("stranger's status said %q", got)
	}
	conv = f.dispatch(t, &bot.Request{Command: parse(t, "status rnope"), Actor: actor, Place: bot.Place{Surface: "github", Project: f.project}})
	if got := conv.texts(); len(got) != 1 || got[0] != "There is no run `rnope`." {
		t.Fatalf("unknown run said %q", got)
	}
}

// Who may start: the member role, whichever way it is held; refusals
// say why, and nothing starts.
func TestDispatchStartAuthorises(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	viewer, err := f.db.UpsertUser(ctx, "vic@example.com", "Vic")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetMember(ctx, f.project.ID, viewer.ID, store.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if err := f.db.LinkIdentity(ctx, "slack", "T1/UV", viewer.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.db.BindChannel(ctx, "slack", "T1/C1", f.project.ID, "test"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		actor bot.Actor
		place bot.Place
		want  string
	}{
		{"unbound channel", bot.Actor{Surface: "slack", ID: "T1/UV"}, bot.Place{Surface: "slack", Channel: "T1/C2"}, "not bound to a project"},
		{"unknown person", bot.Actor{Surface: "slack", ID: "T1/U0"}, bot.Place{Surface: "slack", Channel: "T1/C1"}, "hero does not know you yet (slack:T1/U0)"},
		{"hero viewer", bot.Actor{Surface: "slack", ID: "T1/UV"}, bot.Place{Surface: "slack", Channel: "T1/C1"}, "You need to be a member of project *web*"},
		{"read access", bot.Actor{Surface: "github", ID: "rita", Permission: "read"}, bot.Place{Surface: "github", Project: f.project, Thread: "o/web#3"}, "You have read access to this repository"},
	} {
		conv := f.dispatch(t, &bot.Request{Command: parse(t, "fix it"), Actor: tc.actor, Place: tc.place})
		if got := conv.texts(); len(got) != 1 || !strings.Contains(got[0], tc.want) || conv.said[0].Kind != bot.Refusal {
			t.Errorf("%s: said %q, want %q", tc.name, got, tc.want)
		}
	}
	if starts, steers := f.eng.Starts(), f.eng.Steers(); len(starts) != 0 || len(steers) != 0 {
		t.Fatalf("refused people started %d runs, steered %d", len(starts), len(steers))
	}
	// In a bound channel, a member's slash command opens the run's thread.
	if err := f.db.SetMember(ctx, f.project.ID, viewer.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	conv := f.dispatch(t, &bot.Request{Command: parse(t, "fix it"), Actor: bot.Actor{Surface: "slack", ID: "T1/UV"}, Place: bot.Place{Surface: "slack", Channel: "T1/C1"}, Private: true})
	if starts := f.eng.Starts(); conv.threads != 1 || len(starts) != 1 || starts[0].ThreadRef != "T1/C1/1.0" {
		t.Fatalf("threads %d, starts %+v", conv.threads, starts)
	}
}

// A reply in a run's thread answers its open question before it steers.
func TestDispatchSteerAnswersQuestion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	ex := &store.Execution{ProjectID: f.project.ID, Status: store.StatusWaiting, Surface: "slack", ThreadRef: "T1/C1/5.0",
		Requester: "slack:T1/U1", Task: "t", Model: "m", CreatedAt: time.Now(), UpdatedAt: time.Now(), LeaseUntil: time.Now()}
	if err := f.db.CreateExecution(ctx, ex); err != nil {
		t.Fatal(err)
	}
	c := &store.Confirmation{ExecutionID: ex.ID, Kind: store.ConfirmKindQuestion, Tool: "ask_human", Action: "tabs or spaces?", Status: store.ConfirmPending, ExpiresAt: time.Now().Add(time.Hour), CreatedAt: time.Now()}
	if err := f.db.CreateConfirmation(ctx, c); err != nil {
		t.Fatal(err)
	}
	conv := &fakeConv{}
	req := &bot.Request{Actor: bot.Actor{Surface: "slack", ID: "T1/U1"}, Place: bot.Place{Surface: "slack", Channel: "T1/C1", Thread: "T1/C1/5.0"}}
	if err := f.d.Steer(ctx, req, directory{f.db}, conv, ex, "tabs"); err != nil {
		t.Fatal(err)
	}
	if decides, steers := f.eng.Decides(), f.eng.Steers(); len(decides) != 1 || decides[0].ID != c.ID || decides[0].Decision.Answer != "tabs" || len(steers) != 0 {
		t.Fatalf("decides %+v, steers %+v", decides, steers)
	}
	if got := conv.texts(); len(got) != 1 || got[0] != "Confirmation `"+c.ID+"` approved." {
		t.Fatalf("said %q", got)
	}
}

// A link code posted in public is burnt; privately it links.
func TestDispatchLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	u, err := f.db.UpsertUser(ctx, "lin@example.com", "Lin")
	if err != nil {
		t.Fatal(err)
	}
	public, private := store.NewLinkCode(), store.NewLinkCode()
	for _, code := range []string{public, private} {
		if err := f.db.CreateLinkCode(ctx, u.ID, code, time.Now().Add(store.LinkCodeTTL)); err != nil {
			t.Fatal(err)
		}
	}
	actor := bot.Actor{Surface: "slack", ID: "T1/UL"}
	conv := f.dispatch(t, &bot.Request{Command: parse(t, "link "+public), Actor: actor, Place: bot.Place{Surface: "slack", Channel: "T1/C1"}})
	if got := conv.texts(); len(got) != 1 || !strings.Contains(got[0], "cancelled it") || strings.Contains(got[0], public) {
		t.Fatalf("public link said %q", got)
	}
	if _, err := f.db.UseLinkCode(ctx, public, time.Now()); err == nil {
		t.Fatal("a code posted in public still works")
	}
	conv = f.dispatch(t, &bot.Request{Command: parse(t, "link "+private), Actor: actor, Place: bot.Place{Surface: "slack", Channel: "T1/C1"}, Private: true})
	if got := conv.texts(); len(got) != 1 || !strings.Contains(got[0], "now acts as lin@example.com") {
		t.Fatalf("private link said %q", got)
	}
	if got, err := f.db.UserByIdentity(ctx, "slack", "T1/UL"); err != nil || got.ID != u.ID {
		t.Fatalf("identity: %v %v", got, err)
	}
}

// A direct message belongs to no project: a task, a binding or a card
// there starts nothing and says where work starts; status lists the
// person's own runs going, privately.
func TestDispatchDirectMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	u, err := f.db.UpsertUser(ctx, "dee@example.com", "Dee")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.LinkIdentity(ctx, "slack", "T1/UD", u.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetMember(ctx, f.project.ID, u.ID, store.RoleOwner); err != nil {
		t.Fatal(err)
	}
	actor := bot.Actor{Surface: "slack", ID: "T1/UD"}
	dm := bot.Place{Surface: "slack", Channel: "T1/D1", Direct: true}
	for _, text := range []string{"fix the flaky test", "use web", "cancel", "budget"} {
		conv := f.dispatch(t, &bot.Request{Command: parse(t, text), Actor: actor, Place: dm, Private: true})
		if got := conv.texts(); len(got) != 1 || !strings.Contains(got[0], "direct message") || !strings.Contains(got[0], "bound to a project") ||
			conv.said[0].Kind != bot.Refusal || !conv.said[0].Private {
			t.Errorf("%q in a direct message: said %q", text, got)
		}
	}
	if starts, cancels := f.eng.Starts(), f.eng.Cancels(); len(starts) != 0 || len(cancels) != 0 {
		t.Fatalf("a direct message started %d runs, cancelled %d", len(starts), len(cancels))
	}
	if _, err := f.db.ChannelProject(ctx, "slack", "T1/D1"); err == nil {
		t.Fatal("use bound a direct message to a project")
	}
	conv := f.dispatch(t, &bot.Request{Command: parse(t, "status"), Actor: actor, Place: dm, Private: true})
	if got := conv.texts(); len(got) != 1 || !strings.Contains(got[0], "no runs going") {
		t.Fatalf("status with nothing going said %q", got)
	}
	mine := &store.Execution{ProjectID: f.project.ID, Status: store.StatusRunning, Surface: "slack", ThreadRef: "T1/C1/9.0",
		Requester: "slack:T1/UD", RequesterUserID: u.ID, Task: "t", Model: "m", CreatedAt: time.Now(), UpdatedAt: time.Now(), LeaseUntil: time.Now()}
	theirs := &store.Execution{ProjectID: f.project.ID, Status: store.StatusRunning, Surface: "slack", ThreadRef: "T1/C1/9.1",
		Requester: "slack:T1/UO", Task: "t", Model: "m", CreatedAt: time.Now(), UpdatedAt: time.Now(), LeaseUntil: time.Now()}
	for _, ex := range []*store.Execution{mine, theirs} {
		if err := f.db.CreateExecution(ctx, ex); err != nil {
			t.Fatal(err)
		}
	}
	conv = f.dispatch(t, &bot.Request{Command: parse(t, "status"), Actor: actor, Place: dm, Private: true})
	if got := conv.texts(); len(got) != 1 || !strings.Contains(got[0], mine.ID) || strings.Contains(got[0], theirs.ID) || !conv.said[0].Private {
		t.Fatalf("status in a direct message said %q, want run %s only", got, mine.ID)
	}
	conv = f.dispatch(t, &bot.Request{Command: parse(t, "status "+theirs.ID), Actor: actor, Place: dm, Private: true})
	if got := conv.texts(); len(got) != 1 || !strings.Contains(got[0], "Run `"+theirs.ID+"` is *running*") {
		t.Fatalf("status ID in a direct message said %q", got)
	}
}
