package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/web"
)

// TestScheduledRunDecidedOnRunPage: a schedule made on the command line
// in a project with no bound channel reports only to the settings page,
// so its run's confirmations and questions can be decided nowhere else.
// The schedules tab links to the run; its page shows each pending one
// with Approve/Deny (a question with an answer box) to those who may
// decide, and they work against the real engine: the run goes on and
// ends. People the engine does not let decide are refused with its
// reason, and nothing is decided.
func TestScheduledRunDecidedOnRunPage(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC)}
	model := enginetest.Script(
		enginetest.Call("write_file", `{"path":"old.txt","content":"stale"}`),
		enginetest.Call("delete_file", `{"path":"old.txt"}`), // confirmed by default
		enginetest.Call("delete_file", `{"path":"keep.txt"}`),
		enginetest.Call("ask_human", `{"question":"Which branch should the cleanup go to?"}`),
		enginetest.Finish("cleaned up"),
	)
	var sched *schedules.Service
	e := newEnv(t, func(c *web.Config) {
		runCtx, stop := context.WithCancel(context.Background())
		eng := enginetest.New(t, c.DB, model)
		t.Cleanup(stop) // runs before the engine's Wait: a failed test leaves no run waiting
		var err error
		sched, err = schedules.New(schedules.Config{Store: c.DB, Runs: eng, RunContext: runCtx, Places: eng,
			CreatorRole: eng.Role, Now: clk.Now, Owner: "test"})
		if err != nil {
			t.Fatal(err)
		}
		eng.AddSurface(sched)
		c.Runs, c.Schedules = eng, sched
	})
	ctx := t.Context()
	e.project("shop", map[string]store.Role{"ana@example.com": store.RoleApprover, "max@example.com": store.RoleMember, "vic@example.com": store.RoleViewer})
	// As `hero schedule add --project shop @hourly …` does: the local
	// operator, no channel.
	c, err := sched.Add(ctx, schedules.Actor{Principal: engine.Operator("local:ops"),
		Role: func(context.Context, int64) (store.Role, error) { return store.RoleOwner, nil }},
		schedules.NewSchedule{Project: "shop", Expr: "@hourly", Task: "clean up old files"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Schedule.ReportSurface != "" {
		t.Fatalf("the schedule reports to %s %s, want the settings page only", c.Schedule.ReportSurface, c.Schedule.ReportTo)
	}
	clk.Add(31 * time.Minute)
	cs, err := sched.Tick(ctx)
	if err != nil || len(cs) != 1 {
		t.Fatalf("tick: %d slots, %v", len(cs), err)
	}
	sched.Fire(ctx, cs[0])
	slots, err := e.db.ScheduleSlots(ctx, c.Schedule.ID, 1)
	if err != nil || len(slots) != 1 || slots[0].ExecutionID == "" {
		t.Fatalf("slots %+v, %v", slots, err)
	}
	run := slots[0].ExecutionID
	pending := func(kind string) *store.Confirmation {
		t.Helper()
		var got *store.Confirmation
		enginetest.Eventually(t, "a pending "+kind, func() bool {
			ps, err := e.db.PendingConfirmations(ctx, run)
			if err == nil && len(ps) == 1 && ps[0].Kind == kind {
				got = &ps[0]
			}
			return got != nil
		})
		return got
	}
	del := pending(store.ConfirmKindTool)
	base := "/settings/runs/" + run + "/confirmations/"

	// The schedules tab links to the run and says it waits.
	vic, max, ana := e.browser(), e.browser(), e.browser()
	vic.login("google", "vic@example.com")
	max.login("google", "max@example.com")
	ana.login("google", "ana@example.com")
	_, page := vic.get("/settings/projects/shop/schedules")
	if !strings.Contains(page, `<a href="/settings/runs/`+run+`">`) || !strings.Contains(text(page), "Last run: "+run+" waiting — it waits for a decision") {
		t.Fatalf("the schedules tab does not link to the waiting run: %s", text(page))
	}

	// Viewers and members who did not start the run see the question
	// but no buttons, and the engine refuses them.
	for _, b := range []*browser{vic, max} {
		_, page := b.get("/settings/runs/" + run)
		if !strings.Contains(text(page), "delete_file") || strings.Contains(page, base+del.ID+"/approve") {
			t.Fatalf("a non-approver's run page: %s", text(page))
		}
		code, _, body := b.post(base+del.ID+"/approve", nil)
		if code != http.StatusForbidden || !strings.Contains(text(body), "only the person who started run "+run+" or a project approver can decide") {
			t.Fatalf("a non-approver approves: %d %s", code, text(body))
		}
	}
	if got, _ := e.db.Confirmation(ctx, del.ID); got.Status != store.ConfirmPending {
		t.Fatalf("a refused approval decided it: %s", got.Status)
	}

	// An approver approves on the run page.
	_, page = ana.get("/settings/runs/" + run)
	if !strings.Contains(page, `action="`+base+del.ID+`/approve"`) || !strings.Contains(page, `action="`+base+del.ID+`/deny"`) {
		t.Fatalf("the approver's run page has no Approve/Deny for %s: %s", del.ID, text(page))
	}
	if code, loc, body := ana.post(base+del.ID+"/approve", nil); code != http.StatusSeeOther || !strings.Contains(loc, "ok=approved") {
		t.Fatalf("approve: %d %s %s", code, loc, text(body))
	}
	// Twice is refused with the decision that stands.
	if code, _, body := ana.post(base+del.ID+"/deny", nil); code != http.StatusConflict || !strings.Contains(text(body), "was already approved") {
		t.Fatalf("deny after approve: %d %s", code, text(body))
	}
	// The next one is denied, with a reason.
	keep := pending(store.ConfirmKindTool)
	if keep.ID == del.ID {
		t.Fatal("the run did not go on after the approval")
	}
	if code, loc, _ := ana.post(base+keep.ID+"/deny", url.Values{"answer": {"keep.txt is still used"}}); code != http.StatusSeeOther || !strings.Contains(loc, "ok=denied") {
		t.Fatalf("deny: %d %s", code, loc)
	}
	// A question: an answer box; an empty answer is refused and loses
	// nothing, an answer goes to the run.
	q := pending(store.ConfirmKindQuestion)
	_, page = ana.get("/settings/runs/" + run)
	if !strings.Contains(text(page), "Which branch should the cleanup go to?") || !strings.Contains(page, `name="answer"`) || !strings.Contains(page, ">Answer</button>") {
		t.Fatalf("the question on the run page: %s", text(page))
	}
	if code, _, body := ana.post(base+q.ID+"/approve", url.Values{"answer": {"  "}}); code != http.StatusBadRequest || !strings.Contains(text(body), "Write an answer to the question of "+q.ID+" first") {
		t.Fatalf("an empty answer: %d %s", code, text(body))
	}
	if got, _ := e.db.Confirmation(ctx, q.ID); got.Status != store.ConfirmPending {
		t.Fatalf("an empty answer decided the question: %s", got.Status)
	}
	if code, loc, _ := ana.post(base+q.ID+"/approve", url.Values{"answer": {"cleanup/old-files"}}); code != http.StatusSeeOther || !strings.Contains(loc, "ok=answered") {
		t.Fatalf("answer: %d %s", code, loc)
	}

	ex := enginetest.WaitFinished(t, e.db, run)
	if ex.Status != store.StatusSucceeded || ex.Summary != "cleaned up" {
		t.Fatalf("the run ended %s: %q %q", ex.Status, ex.Summary, ex.Error)
	}
	want := map[string]string{del.ID: "approved  web:ana@example.com", keep.ID: "denied keep.txt is still used web:ana@example.com", q.ID: "approved cleanup/old-files web:ana@example.com"}
	for id, w := range want {
		c, err := e.db.Confirmation(ctx, id)
		if err != nil || c.Status+" "+c.Answer+" "+c.DecidedBy != w {
			t.Errorf("confirmation %s: %+v %v, want %s", id, c, err, w)
		}
	}
	// A finished run offers no buttons.
	if _, page := ana.get("/settings/runs/" + run); strings.Contains(page, "/confirmations/") {
		t.Error("a finished run's page still offers decisions")
	}
}
