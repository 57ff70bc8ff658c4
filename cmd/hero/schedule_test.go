package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestScheduleCommands drives schedules from the command line: add one
// (its id and next three fire times), list, pause, resume, remove, and
// specific errors for bad input.
func TestScheduleCommands(t *testing.T) {
	env := map[string]string{"HERO_DATA_DIR": t.TempDir()}
	if _, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", "https://example.com/web.git"); err != nil {
		t.Fatal(err)
	}
	out, _, err := hero(t, env, "", false, "schedule", "add", "--project", "web", "CRON_TZ=Europe/Berlin 0 9 * * 1-5", "bump", "the", "dependencies")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^schedule (s[a-z2-7]{8})\n` +
		`next: \d{4}-\d\d-\d\d 09:00 CES?T\nnext: \d{4}-\d\d-\d\d 09:00 CES?T\nnext: \d{4}-\d\d-\d\d 09:00 CES?T\n` +
		`kind: run, reports to the settings page only \(the project has no bound channel\)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("schedule add printed %q", out)
	}
	id := m[1]

	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{env, []string{"schedule", "add", "--project", "web", "*/5 * * * *", "x"}, `fires every 5m`},
		{env, []string{"schedule", "add", "--project", "web", "0", "9", "*", "*", "*", "x"}, `has 1 fields; want 5`},
		{env, []string{"schedule", "add", "--project", "web", "@daily", "--kind", "digest"}, "a digest is posted to a channel, and project web has none bound"},
		{env, []string{"schedule", "add", "--project", "web", "@daily", "--kind", "digest", "--channel", "T1/C2"}, `--channel "T1/C2": write it as SURFACE:CHANNEL`},
		{env, []string{"schedule", "add", "--project", "web", "@daily", "--kind", "reminder", "--stale", "3 days"}, `give days like 3d`},
		{env, []string{"schedule", "add", "--project", "nope", "@daily", "x"}, "no project named nope"},
		{map[string]string{"HERO_DATA_DIR": env["HERO_DATA_DIR"], "HERO_SCHEDULE_MIN_INTERVAL": "2h"}, []string{"schedule", "add", "--project", "web", "@hourly", "x"}, "the minimum interval is 2h (HERO_SCHEDULE_MIN_INTERVAL)"},
		{map[string]string{"HERO_DATA_DIR": env["HERO_DATA_DIR"], "HERO_SCHEDULE_MIN_INTERVAL": "soon"}, []string{"schedule", "list", "--project", "web"}, "HERO_SCHEDULE_MIN_INTERVAL must be a duration"},
		{env, []string{"schedule", "pause", "--project", "web", "snope1234"}, "no schedule snope1234"},
	} {
		if _, _, err := hero(t, tc.env, "", false, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("hero %v: %v, want %q", tc.args, err, tc.want)
		}
	}

	if out, _, err = hero(t, env, "", false, "schedule", "pause", "--project", "web", id); err != nil || out != "schedule "+id+" paused\n" {
		t.Fatalf("pause: %v %q", err, out)
	}
	out, _, err = hero(t, env, "", false, "schedule", "list", "--project", "web")
	if err != nil || !strings.HasPrefix(out, id+"  paused  run  \"0 9 * * 1-5\" (Europe/Berlin)\n  task: bump the dependencies\n  by local:") || strings.Contains(out, "next:") {
		t.Fatalf("list after pause: %v\n%s", err, out)
	}
	if out, _, err = hero(t, env, "", false, "schedule", "resume", "--project", "web", id); err != nil || !regexp.MustCompile(`^schedule `+id+` resumed; next: \d{4}-\d\d-\d\d 09:00 CES?T\n$`).MatchString(out) {
		t.Fatalf("resume: %v %q", err, out)
	}
	if out, _, err = hero(t, env, "", false, "schedule", "rm", "--project", "web", id); err != nil || out != "schedule "+id+" removed\n" {
		t.Fatalf("rm: %v %q", err, out)
	}
	if out, _, err = hero(t, env, "", false, "schedule", "list", "--project", "web"); err != nil || out != "project web has no schedules\n" {
		t.Fatalf("list after rm: %v %q", err, out)
	}
	if out, _, err = hero(t, env, "", false, "schedule", "add", "--help"); err != nil || !strings.Contains(out, "HERO_SCHEDULE_MIN_INTERVAL") {
		t.Fatalf("help: %v %q", err, out)
	}
}
