package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hero-dev/hero/store/storetest"
)

// TestScheduleKindsFromTheCommandLine: a run reporting to the project's
// bound channel, a digest posted to a named channel and a reminder with
// its threshold are made from the command line, print their next three
// fire times, and are listed with their kind and where they post.
func TestScheduleKindsFromTheCommandLine(t *testing.T) {
	env := map[string]string{"HERO_DATA_DIR": t.TempDir()}
	if _, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", "https://example.com/web.git"); err != nil {
		t.Fatal(err)
	}
	// The channel is bound to the project, as /hero use web there does.
	db := storetest.OpenIn(t, env["HERO_DATA_DIR"])
	p, err := db.ProjectByName(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.BindChannel(t.Context(), "slack", "T1/C2", p.ID, "slack:T1/U1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	next := `next: \d{4}-\d\d-\d\d 08:00 UTC\n`
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"0 8 * * *", "tidy", "up"}, `kind: run, reports to slack T1/C2`}, // the project's bound channel
		{[]string{"--kind", "digest", "--channel", "slack:T1/C2", "0 8 * * *"}, `kind: digest, reports to slack T1/C2`},
		{[]string{"--kind", "reminder", "--channel", "slack:T1/C2", "--stale", "3d", "0 8 * * *"}, `kind: reminder, reports to slack T1/C2`},
	} {
		out, _, err := hero(t, env, "", false, append([]string{"schedule", "add", "--project", "web"}, tc.args...)...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if !regexp.MustCompile(`^schedule s[a-z2-7]{8}\n`+next+next+next).MatchString(out) || !strings.Contains(out, tc.want) {
			t.Fatalf("schedule add %v printed %q, want the id, three fire times and %q", tc.args, out, tc.want)
		}
	}
	out, _, err := hero(t, env, "", false, "schedule", "list", "--project", "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"active  digest  \"0 8 * * *\" (UTC)", "active  reminder  \"0 8 * * *\" (UTC)\n  stale after: 3d\n  by local:", "reports to slack T1/C2"} {
		if !strings.Contains(out, want) {
			t.Errorf("schedule list lacks %q:\n%s", want, out)
		}
	}
}
