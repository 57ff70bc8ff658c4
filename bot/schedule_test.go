package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
)

// TestDispatchSchedule: /hero schedule in a Slack channel thread goes to
// the schedules service in the channel's project, as the person behind
// it, and the answer is said there; the schedule reports to that thread.
// An unlinked person is told to link first; without the port the command
// is refused.
func TestDispatchSchedule(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	svc, err := schedules.New(schedules.Config{Store: f.db, CreatorRole: f.eng.Role,
		Now: func() time.Time { return time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := bot.NewDispatcher(f.eng, f.db, context.Background, nil, nil, bot.WithSchedules(svc))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.BindChannel(ctx, "slack", "T1/C1", f.project.ID, "slack:T1/U9"); err != nil {
		t.Fatal(err)
	}
	u, err := f.db.EnsureUser(ctx, "mia@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetMember(ctx, f.project.ID, u.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	if err := f.db.LinkIdentity(ctx, "slack", "T1/U1", u.ID); err != nil {
		t.Fatal(err)
	}
	say := func(user, text string, dd *bot.Dispatcher) string {
		t.Helper()
		conv := &fakeConv{}
		req := &bot.Request{Command: parse(t, text), Actor: bot.Actor{Surface: "slack", ID: user},
			Place: bot.Place{Surface: "slack", Channel: "T1/C1", Thread: "T1/C1/171.2"}}
		if err := dd.Dispatch(ctx, req, directory{f.db}, conv); err != nil {
			t.Fatal(err)
		}
		return strings.Join(conv.texts(), "\n")
	}
	got := say("T1/U1", `schedule "0 9 * * 1-5" bump the dependencies`, d)
	if !strings.Contains(got, "made in project *web*: `0 9 * * 1-5` (UTC) runs “bump the dependencies” and reports here. Next: 2026-12-01 09:00 UTC, 2026-12-02 09:00 UTC, 2026-12-03 09:00 UTC.") {
		t.Fatalf("add: %q", got)
	}
	scs, err := f.db.ListSchedules(ctx, f.project.ID)
	if err != nil || len(scs) != 1 || scs[0].Creator != "slack:T1/U1" || scs[0].CreatorUserID != u.ID || scs[0].ReportSurface != "slack" || scs[0].ReportTo != "T1/C1/171.2" {
		t.Fatalf("stored %+v, %v", scs, err)
	}
	if got := say("T1/U1", "schedule list", d); !strings.Contains(got, "• `"+scs[0].ID+"` active `0 9 * * 1-5` (UTC) “bump the dependencies”, by slack:T1/U1") {
		t.Fatalf("list: %q", got)
	}
	if got := say("T1/U7", "schedule @daily chores", d); !strings.Contains(got, "you are not a member of project web") {
		t.Fatalf("a stranger: %q", got)
	}
	if got := say("T1/U1", "schedule pause "+scs[0].ID, d); got != "Schedule `"+scs[0].ID+"` paused; `/hero schedule resume "+scs[0].ID+"` resumes it." {
		t.Fatalf("pause: %q", got)
	}
	if got := say("T1/U1", "schedule list", f.d); !strings.Contains(got, "this hero has none") {
		t.Fatalf("without the port: %q", got)
	}
}
