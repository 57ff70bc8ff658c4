package schedules

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// checkedFires is how many upcoming fire times the minimum interval is
// checked over: the shortest gap may come late ("*/5 9 * * *" fires
// 9:00 and 9:05 after a day-long gap).
const checkedFires = 100

// Spec is a parsed schedule expression in its time zone.
type Spec struct {
	Expr string // as written, without a CRON_TZ= prefix
	Loc  *time.Location
	cron cron.Schedule
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse reads a standard 5-field expression or a descriptor (@daily,
// @weekly, @every 2h, …) in time zone tz (an IANA name; "" is UTC). A
// "CRON_TZ=Zone " (or "TZ=Zone ") prefix on expr names the zone instead;
// giving both with different zones is an error.
func Parse(expr, tz string) (*Spec, error) {
	expr = strings.TrimSpace(expr)
	for _, p := range []string{"CRON_TZ=", "TZ="} {
		if rest, ok := strings.CutPrefix(expr, p); ok {
			zone, e, _ := strings.Cut(rest, " ")
			if tz != "" && tz != zone {
				return nil, fmt.Errorf("the expression says time zone %s but the schedule's is %s: give one", zone, tz)
			}
			tz, expr = zone, strings.TrimSpace(e)
		}
	}
	if expr == "" {
		return nil, fmt.Errorf("the schedule expression is empty: give 5 fields (minute hour day-of-month month day-of-week) like \"0 9 * * 1-5\", or @daily, @weekly, @every 2h")
	}
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: use an IANA name like Europe/Berlin", tz)
	}
	if !strings.HasPrefix(expr, "@") && len(strings.Fields(expr)) != 5 {
		return nil, fmt.Errorf("schedule %q has %d fields; want 5 (minute hour day-of-month month day-of-week) like \"0 9 * * 1-5\", or a descriptor such as @daily or @every 2h (quote the expression as one argument)", expr, len(strings.Fields(expr)))
	}
	c, err := parser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %v", expr, err)
	}
	if ce, ok := c.(cron.ConstantDelaySchedule); ok && ce.Delay < time.Minute {
		return nil, fmt.Errorf("schedule %q fires every %s; the shortest period is one minute", expr, ce.Delay)
	}
	return &Spec{Expr: expr, Loc: loc, cron: c}, nil
}

// Next returns the first fire time after t (in UTC), or the zero time if
// the expression never fires again.
func (s *Spec) Next(t time.Time) time.Time {
	n := s.cron.Next(t.In(s.Loc))
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// Upcoming returns the next n fire times after t.
func (s *Spec) Upcoming(t time.Time, n int) []time.Time {
	var out []time.Time
	for len(out) < n {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// CheckInterval refuses a schedule that fires more often than min: the
// shortest gap between its next checkedFires fire times after t.
func (s *Spec) CheckInterval(t time.Time, min time.Duration) error {
	fires := s.Upcoming(t, checkedFires)
	if len(fires) == 0 {
		return fmt.Errorf("schedule %q never fires", s.Expr)
	}
	for i := 1; i < len(fires); i++ {
		if gap := fires[i].Sub(fires[i-1]); gap < min {
			return fmt.Errorf("schedule %q fires every %s at times (%s then %s); the minimum interval is %s (HERO_SCHEDULE_MIN_INTERVAL)",
				s.Expr, shortDuration(gap), s.Format(fires[i-1]), s.Format(fires[i]), shortDuration(min))
		}
	}
	return nil
}

// Format shows a fire time as people read it: YYYY-MM-DD HH:MM TZ in the
// schedule's zone.
func (s *Spec) Format(t time.Time) string {
	return t.In(s.Loc).Format("2006-01-02 15:04 MST")
}

func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// FormatStale writes a threshold as ParseStale reads it: whole days as
// 3d, anything else as a short duration (36h, 90m).
func FormatStale(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return shortDuration(d)
}

// ParseStale reads a "too long" threshold: Go durations (36h) or days
// (3d).
func ParseStale(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && n > 0 && fmt.Sprint(n) == d {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("--stale %q: give days like 3d or a duration like 36h", s)
	}
	return v, nil
}
