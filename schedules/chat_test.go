package schedules_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
)

// TestChat: /hero schedule from a chat thread makes a schedule reporting
// to that thread, lists, pauses, resumes and removes it, and answers the
// rules' refusals as text.
func TestChat(t *testing.T) {
	f := newFixture(t, "sqlite://"+t.TempDir()+"/hero.db", start)
	ctx := t.Context()
	req := func(who, what string) schedules.ChatRequest {
		return schedules.ChatRequest{Project: f.project, Actor: f.as(who), Surface: "slack", Place: "T1/C9/171.2", What: what}
	}
	add := req("mia", "add")
	add.Expr, add.Task = "0 9 * * 1-5", "bump the dependencies"
	got, err := f.svc.Chat(ctx, add)
	if err != nil || !strings.HasPrefix(got, "Schedule `s") ||
		!strings.HasSuffix(got, " made in project *"+f.project.Name+"*: `0 9 * * 1-5` (UTC) runs “bump the dependencies” and reports here. Next: 2026-12-01 09:00 UTC, 2026-12-02 09:00 UTC, 2026-12-03 09:00 UTC. `/hero schedule pause "+got[len("Schedule `"):len("Schedule `")+9]+"` pauses it.") {
		t.Fatalf("add: %q %v", got, err)
	}
	id := got[len("Schedule `") : len("Schedule `")+9]
	if s := f.schedule(t, id); s.ReportSurface != "slack" || s.ReportTo != "T1/C9/171.2" || s.Creator != "test:mia" {
		t.Fatalf("made %+v", s)
	}
	// It fires into the thread it was made in.
	f.clock.Set(time.Date(2026, 12, 1, 9, 0, 1, 0, time.UTC))
	f.tick(t, f.svc)
	if posts := f.chat.all(); len(posts) != 1 || !strings.HasPrefix(posts[0], "T1/C9/171.2: Scheduled run (schedule "+id) {
		t.Fatalf("posted %q", posts)
	}

	tooOften := req("mia", "add")
	tooOften.Expr, tooOften.Task = "*/5 * * * *", "poll"
	if got, err := f.svc.Chat(ctx, tooOften); err != nil || !strings.Contains(got, "the minimum interval is 15m (HERO_SCHEDULE_MIN_INTERVAL).") {
		t.Fatalf("too often: %q %v", got, err)
	}
	byViewer := req("vic", "add")
	byViewer.Expr, byViewer.Task = "@daily", "x"
	if got, err := f.svc.Chat(ctx, byViewer); err != nil || got != "create a schedule needs the member role in project "+f.project.Name+"; you are viewer." {
		t.Fatalf("viewer: %q %v", got, err)
	}
	if got, err := f.svc.Chat(ctx, req("vic", "list")); err != nil || !strings.Contains(got, "• `"+id+"` active `0 9 * * 1-5` (UTC) “bump the dependencies”, by test:mia; next 2026-12-02 09:00 UTC") {
		t.Fatalf("list: %q %v", got, err)
	}
	pause := req("max", "pause")
	pause.ID = id
	if got, err := f.svc.Chat(ctx, pause); err != nil || !strings.Contains(got, "is test:mia's; only they or an admin") {
		t.Fatalf("another member pauses: %q %v", got, err)
	}
	pause.Actor = f.as("mia")
	if got, err := f.svc.Chat(ctx, pause); err != nil || got != "Schedule `"+id+"` paused; `/hero schedule resume "+id+"` resumes it." {
		t.Fatalf("pause: %q %v", got, err)
	}
	resume := req("adam", "resume")
	resume.ID = id
	if got, err := f.svc.Chat(ctx, resume); err != nil || got != "Schedule `"+id+"` resumed from its next slot. Next: 2026-12-02 09:00 UTC." {
		t.Fatalf("resume: %q %v", got, err)
	}
	rm := req("mia", "rm")
	rm.ID = id
	if got, err := f.svc.Chat(ctx, rm); err != nil || !strings.Contains(got, "only they or an admin") {
		t.Fatalf("rm by the former creator after an admin took it over: %q %v", got, err)
	}
	rm.Actor = f.as("adam")
	if got, err := f.svc.Chat(ctx, rm); err != nil || got != "Schedule `"+id+"` removed." {
		t.Fatalf("rm: %q %v", got, err)
	}
	if got, err := f.svc.Chat(ctx, req("mia", "list")); err != nil || !strings.HasPrefix(got, "Project *"+f.project.Name+"* has no schedules.") {
		t.Fatalf("list after rm: %q %v", got, err)
	}
	if _, err := f.db.Schedule(ctx, id); err == nil {
		t.Fatal("removed schedule still stored")
	}
	_ = store.ScheduleActive
}

// TestChatCommand: the grammar's command, as the dispatcher passes it.
func TestChatCommand(t *testing.T) {
	f := newFixture(t, "sqlite://"+t.TempDir()+"/hero.db", start)
	cmd, err := bot.Parse(`schedule "0 9 * * 1-5" bump the dependencies`)
	if err != nil {
		t.Fatal(err)
	}
	mia := f.as("mia").Principal
	got, err := f.svc.ChatCommand(t.Context(), f.project, mia, "slack", "T1/C9", cmd)
	if err != nil || !strings.Contains(got, "runs “bump the dependencies” and reports here. Next: 2026-12-01 09:00 UTC") {
		t.Fatalf("add: %q %v", got, err)
	}
	list, _ := bot.Parse("schedule list")
	vic := f.as("vic").Principal
	if got, err := f.svc.ChatCommand(t.Context(), f.project, vic, "slack", "T1/C9", list); err != nil || !strings.Contains(got, "“bump the dependencies”, by test:mia") {
		t.Fatalf("list: %q %v", got, err)
	}
	if got, err := f.svc.ChatCommand(t.Context(), f.project, vic, "slack", "T1/C9", cmd); err != nil || !strings.Contains(got, "needs the member role") {
		t.Fatalf("viewer adds: %q %v", got, err)
	}
}
