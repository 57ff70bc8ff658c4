package schedules_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
)

// testDigestAndReminder builds a board through the kanban service (cards
// made now, by the real clock), lets the schedules' clock run four days
// ahead, and checks the digest and reminder texts as the channel shows
// them.
func testDigestAndReminder(t *testing.T, url string) {
	base := time.Now().UTC().Add(96*time.Hour + time.Minute).Truncate(time.Second)
	f := newFixture(t, url, base.Add(-time.Hour))
	ctx := t.Context()
	f.bindChannel(t, "T1/C7")
	board, err := kanban.New(kanban.Config{Store: f.db})
	if err != nil {
		t.Fatal(err)
	}
	mia := kanban.Actor{ID: "test:mia", Surface: "cli", Role: f.as("mia").Role}
	card := func(title, column string) *store.KanbanCard {
		c, _, err := board.AddCard(ctx, mia, kanban.NewCard{Project: f.project.Name, Title: title, Column: column})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	card("Write the docs", "Backlog")
	stuck := card("Fix the login loop", "To do")
	upgrade := card("Upgrade Go", "To do")
	shipped := card("Ship v2", "Review")
	if _, err := board.MoveCard(ctx, mia, f.project.Name, upgrade.ID, "In progress"); err != nil {
		t.Fatal(err)
	}
	if _, err := board.MoveCard(ctx, mia, f.project.Name, shipped.ID, "Done"); err != nil {
		t.Fatal(err)
	}
	// Upgrade Go moved into In progress 12 hours ago, by the schedules'
	// clock: not stuck.
	if _, err := f.db.Bun().NewUpdate().Table("kanban_card_history").Set("at = ?", base.Add(-12*time.Hour)).
		Where("card_id = ? AND action = ?", upgrade.ID, store.CardMoved).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// Runs: two in the last day, one older.
	for _, r := range []struct {
		task, status string
		cost         float64
		ago          time.Duration
	}{{"bump deps", store.StatusSucceeded, 0.30, 2 * time.Hour}, {"hunt flaky tests", store.StatusFailed, 0.12, 3 * time.Hour}, {"old work", store.StatusSucceeded, 9, 30 * time.Hour}} {
		ex := &store.Execution{ProjectID: f.project.ID, Status: r.status, Task: r.task, CostUSD: r.cost, CostKnown: true, LeaseUntil: base}
		if err := f.db.CreateExecution(ctx, ex); err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.Bun().NewUpdate().Table("agent_executions").Set("created_at = ?", base.Add(-r.ago)).Where("id = ?", ex.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := f.db.RecentRuns(ctx, f.project.ID, base.Add(-24*time.Hour))
	if err != nil || len(runs) != 2 {
		t.Fatalf("recent runs %+v, %v", runs, err)
	}

	add := func(kind, stale string) *store.Schedule {
		d := time.Duration(0)
		if stale != "" {
			if d, err = schedules.ParseStale(stale); err != nil {
				t.Fatal(err)
			}
		}
		c, err := f.svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Kind: kind, Expr: "@every 1h", TZ: "Europe/Berlin", Stale: d})
		if err != nil {
			t.Fatal(err)
		}
		return c.Schedule
	}
	digest := add("digest", "")
	reminder := add("reminder", "3d")
	quiet := add("reminder", "5d")
	f.clock.Set(base)
	f.tick(t, f.svc)

	berlin, _ := time.LoadLocation("Europe/Berlin")
	wantDigest := fmt.Sprintf(`T1/C7: Board digest for project %s, %s
Cards per column: Backlog: 1, To do: 1, In progress: 1, Review: 0, Done: 1
Stuck longer than 3 days:
  • %s "Fix the login loop": in To do for 4 days
Runs in the last day: 2, costing $0.42
  • %s succeeded $0.30: bump deps
  • %s failed $0.12: hunt flaky tests`, f.project.Name, base.In(berlin).Format("2006-01-02 15:04 MST"), stuck.ID, runs[0].ID, runs[1].ID)
	wantReminder := fmt.Sprintf(`T1/C7: Reminder for project %s: 1 card(s) sat in their column longer than 3 days
  • %s "Fix the login loop": in To do for 4 days`, f.project.Name, stuck.ID)
	posts := f.chat.all()
	if len(posts) != 2 {
		t.Fatalf("posted %d messages, want the digest and one reminder:\n%s", len(posts), strings.Join(posts, "\n---\n"))
	}
	got := map[string]bool{posts[0]: true, posts[1]: true}
	if !got[wantDigest] {
		t.Errorf("digest not posted; want\n%s\ngot\n%s", wantDigest, strings.Join(posts, "\n---\n"))
	}
	if !got[wantReminder] {
		t.Errorf("reminder not posted; want\n%s\ngot\n%s", wantReminder, strings.Join(posts, "\n---\n"))
	}
	for id, want := range map[string]string{digest.ID: "posted to slack T1/C7", reminder.ID: "posted to slack T1/C7", quiet.ID: "no cards over the threshold: nothing posted"} {
		if sl := f.slots(t, id); len(sl) != 1 || sl[0].Outcome != store.SlotFired || sl[0].Note != want {
			t.Errorf("slots of %s: %+v, want fired: %s", id, sl, want)
		}
	}

	// A channel that refuses the post: the slot failed, and three in a
	// row pause the digest.
	f.chat.fail = fmt.Errorf("slack: not_in_channel")
	for i := 1; i <= 3; i++ {
		f.clock.Set(base.Add(time.Duration(i) * time.Hour))
		f.tick(t, f.svc)
	}
	if s := f.schedule(t, digest.ID); s.Status != store.SchedulePaused || !strings.Contains(s.Note, "post to slack T1/C7: slack: not_in_channel") {
		t.Fatalf("digest after three failed posts: %+v", s)
	}
}
