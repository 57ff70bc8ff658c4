package discord

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
)

// lateSchedules is the schedules service, made once the test's database
// (opened by the env) exists.
type lateSchedules struct{ s *schedules.Service }

func (l *lateSchedules) ChatCommand(ctx context.Context, p *store.Project, who engine.Principal, surface, place string, cmd bot.Command) (string, error) {
	return l.s.ChatCommand(ctx, p, who, surface, place, cmd)
}

// TestScheduleCommand: /hero schedule in a bound Discord channel makes a
// schedule of the channel's project that reports there, and the answer
// shows its next three fire times; list shows it; a viewer makes none.
func TestScheduleCommand(t *testing.T) {
	t.Parallel()
	late := &lateSchedules{}
	e := newEnv(t, nil, func(c *Config) { c.Schedules = late })
	svc, err := schedules.New(schedules.Config{Store: e.db, CreatorRole: e.eng.Role,
		Now: func() time.Time { return time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	late.s = svc
	e.user("700", "mia@example.com", store.RoleMember)
	e.user("701", "vic@example.com", store.RoleViewer)
	e.bind("300")

	id, _, _ := e.command("700", "300", `schedule "0 9 * * 1-5" bump the dependencies`)
	e.answerTo(t, id, "Next: 2026-12-01 09:00 UTC, 2026-12-02 09:00 UTC, 2026-12-03 09:00 UTC.")
	scs, err := e.db.ListSchedules(t.Context(), e.project.ID)
	if err != nil || len(scs) != 1 {
		t.Fatalf("schedules: %+v %v", scs, err)
	}
	if s := scs[0]; s.Creator != "discord:700" || s.ReportSurface != Surface || !strings.HasPrefix(s.ReportTo, "300") || s.Task != "bump the dependencies" {
		t.Fatalf("schedule %+v", s)
	}
	id, _, _ = e.command("701", "300", "schedule list")
	e.answerTo(t, id, "`"+scs[0].ID+"` active `0 9 * * 1-5`")
	id, _, _ = e.command("701", "300", `schedule @daily hunt flaky tests`)
	e.answerTo(t, id, "needs the member role")
	if scs, _ := e.db.ListSchedules(t.Context(), e.project.ID); len(scs) != 1 {
		t.Fatalf("a viewer made a schedule: %+v", scs)
	}
}

// TestCardAndBoardCommands: /hero card in a bound Discord channel adds a
// card to the channel's project's board, and /hero board shows it under
// its column; a viewer may look but not add, and a title cannot mention
// everyone.
func TestCardAndBoardCommands(t *testing.T) {
	t.Parallel()
	ref := &boardRef{}
	e := newEnv(t, nil, func(c *Config) { c.Board = ref })
	svc, err := kanban.New(kanban.Config{Store: e.db})
	if err != nil {
		t.Fatal(err)
	}
	ref.s = svc
	e.user("700", "mia@example.com", store.RoleMember)
	e.user("701", "vic@example.com", store.RoleViewer)
	e.bind("300")

	id, _, _ := e.command("700", "300", "card Fix the login loop for @everyone")
	got := e.answerTo(t, id, "created in To do on the board of")
	b, err := svc.Board(t.Context(), kanban.Actor{ID: "test", Role: func(context.Context, int64) (store.Role, error) { return store.RoleOwner, nil }}, e.project.Name)
	if err != nil {
		t.Fatal(err)
	}
	var card *store.KanbanCard
	for _, col := range b.Columns {
		for i := range col.Cards {
			if col.Name == "To do" && col.Cards[i].Title == "Fix the login loop for @everyone" && col.Cards[i].Creator == "discord:700" {
				card = &col.Cards[i]
			}
		}
	}
	if card == nil || !strings.Contains(got, card.ID) {
		t.Fatalf("no card from /hero card (answer %q, board %+v)", got, b.Columns)
	}
	id, _, _ = e.command("701", "300", "board")
	shown := e.answerTo(t, id, card.ID)
	if !strings.Contains(shown, "To do") || strings.Contains(shown, "@everyone") {
		t.Fatalf("/hero board shows %q: want the card under To do, its @everyone inert", shown)
	}
	id, _, _ = e.command("701", "300", "card Sneaky")
	e.answerTo(t, id, "needs the member role")
}
