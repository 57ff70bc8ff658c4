package schedules_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/schedules"
)

func TestParseAndUpcoming(t *testing.T) {
	// Tuesday, 1 December 2026, 08:30 UTC (09:30 in Berlin).
	now := time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		expr, tz string
		want     string // the next three, as hero schedule add prints them
	}{
		{"0 9 * * 1-5", "", "2026-12-01 09:00 UTC, 2026-12-02 09:00 UTC, 2026-12-03 09:00 UTC"},
		{"0 9 * * 1-5", "Europe/Berlin", "2026-12-02 09:00 CET, 2026-12-03 09:00 CET, 2026-12-04 09:00 CET"},
		{"CRON_TZ=Europe/Berlin 0 9 * * 1-5", "", "2026-12-02 09:00 CET, 2026-12-03 09:00 CET, 2026-12-04 09:00 CET"},
		{"CRON_TZ=America/New_York 30 7 * * *", "America/New_York", "2026-12-01 07:30 EST, 2026-12-02 07:30 EST, 2026-12-03 07:30 EST"},
		{"@daily", "", "2026-12-02 00:00 UTC, 2026-12-03 00:00 UTC, 2026-12-04 00:00 UTC"},
		{"@weekly", "", "2026-12-06 00:00 UTC, 2026-12-13 00:00 UTC, 2026-12-20 00:00 UTC"},
		{"@every 2h", "", "2026-12-01 10:30 UTC, 2026-12-01 12:30 UTC, 2026-12-01 14:30 UTC"},
		{"*/30 * * * *", "Asia/Kolkata", "2026-12-01 14:30 IST, 2026-12-01 15:00 IST, 2026-12-01 15:30 IST"},
	} {
		sp, err := schedules.Parse(tc.expr, tc.tz)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tc.expr, tc.tz, err)
			continue
		}
		var got []string
		for _, n := range sp.Upcoming(now, 3) {
			got = append(got, sp.Format(n))
		}
		if strings.Join(got, ", ") != tc.want {
			t.Errorf("Parse(%q, %q) next three = %s, want %s", tc.expr, tc.tz, strings.Join(got, ", "), tc.want)
		}
	}

	for _, tc := range []struct{ expr, tz, want string }{
		{"", "", "the schedule expression is empty"},
		{"0 9 * *", "", `has 4 fields; want 5`},
		{"0 9 * * 1-5 2027", "", `has 6 fields; want 5`},
		{"61 9 * * *", "", `schedule "61 9 * * *": end of range (61) above maximum (59)`},
		{"0 9 * * mon-funday", "", `schedule "0 9 * * mon-funday"`},
		{"@fortnightly", "", `unrecognized descriptor`},
		{"@every 30s", "", "fires every 30s; the shortest period is one minute"},
		{"0 9 * * *", "Mars/Olympus", `unknown time zone "Mars/Olympus"`},
		{"CRON_TZ=Europe/Berlin 0 9 * * *", "Europe/Paris", "the expression says time zone Europe/Berlin but the schedule's is Europe/Paris"},
	} {
		if _, err := schedules.Parse(tc.expr, tc.tz); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q, %q) = %v, want an error containing %q", tc.expr, tc.tz, err, tc.want)
		}
	}
}

func TestMinimumInterval(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 2, 0, 0, time.UTC)
	for _, tc := range []struct{ expr, want string }{
		{"*/5 * * * *", `fires every 5m at times (2026-12-01 09:05 UTC then 2026-12-01 09:10 UTC); the minimum interval is 15m`},
		{"@every 10m", `fires every 10m`},
		// The first gap after 09:02 is almost a day; the 5-minute gap
		// comes later and is still found.
		{"0,5 9 * * *", `fires every 5m at times (2026-12-02 09:00 UTC then 2026-12-02 09:05 UTC)`},
		{"0 9,10 1 1 *", ""}, // an hour apart, once a year: fine
		{"*/15 * * * *", ""},
		{"@every 15m", ""},
		{"0 9 * * 1-5", ""},
	} {
		sp, err := schedules.Parse(tc.expr, "")
		if err != nil {
			t.Fatal(err)
		}
		err = sp.CheckInterval(now, 15*time.Minute)
		if tc.want == "" && err != nil {
			t.Errorf("%s: %v, want allowed", tc.expr, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want refused with %q", tc.expr, err, tc.want)
		}
	}
}

func TestParseStale(t *testing.T) {
	for in, want := range map[string]time.Duration{"3d": 72 * time.Hour, "36h": 36 * time.Hour, "1d": 24 * time.Hour} {
		if got, err := schedules.ParseStale(in); err != nil || got != want {
			t.Errorf("ParseStale(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0d", "-3d", "3 days", "x"} {
		if _, err := schedules.ParseStale(in); err == nil || !strings.Contains(err.Error(), "give days like 3d") {
			t.Errorf("ParseStale(%q) = %v, want a clear error", in, err)
		}
	}
}

// TestFormatStale: a threshold is shown as it is given, and reads back.
func TestFormatStale(t *testing.T) {
	for _, s := range []string{"3d", "1d", "36h", "45m", "2h30m"} {
		d, err := schedules.ParseStale(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := schedules.FormatStale(d); got != s {
			t.Errorf("FormatStale(ParseStale(%q)) = %q", s, got)
		}
	}
}
