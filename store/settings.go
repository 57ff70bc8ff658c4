package store

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Setting is one project setting by the name `hero project set` and
// `hero project show` use, with its stored value written out (0 and ""
// mean the server's default).
type Setting struct {
	Key, Value string
}

// Settings lists p's governance, sandbox and policy settings in a fixed
// order. The policy is one entry per rule ("tool action [pattern]").
func (p *Project) Settings() []Setting {
	num := func(v int) string { return strconv.Itoa(v) }
	flt := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	dur := func(s int) string { return ShortDuration(time.Duration(s) * time.Second) }
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	g, sb := p.Governance, p.Sandbox
	out := []Setting{
		{"budget-run", flt(g.BudgetPerRunUSD)},
		{"budget-day", flt(g.BudgetPerDayUSD)},
		{"max-steps", num(g.MaxSteps)},
		{"wall-clock", dur(g.WallClockS)},
		{"threshold", flt(g.UncertaintyThreshold)},
		{"confirm-ttl", dur(g.ConfirmationTTLS)},
		{"network", onOff(sb.NetworkAllowed)},
		{"install-secrets", onOff(sb.InstallSecrets)},
		{"memory-mb", num(sb.MemoryMB)},
		{"cpu-seconds", num(sb.CPUSeconds)},
		{"processes", num(sb.MaxProcesses)},
		{"disk-mb", num(sb.DiskMB)},
		{"issues-become-cards", onOff(p.IssuesBecomeCards)},
	}
	for _, r := range p.PolicyRules {
		v := r.Tool + " " + r.Action
		if r.Pattern != "" {
			v += " " + r.Pattern
		}
		out = append(out, Setting{"policy", v})
	}
	return out
}

// SettingsChanges describes what differs between two settings lists, as
// "key old → new" joined by "; " ("" when nothing changed). Policy rules
// are compared as a whole.
func SettingsChanges(before, after []Setting) string {
	single := func(list []Setting) (map[string]string, []string, string) {
		m := map[string]string{}
		var order []string
		var policy []string
		for _, s := range list {
			if s.Key == "policy" {
				policy = append(policy, s.Value)
				continue
			}
			m[s.Key] = s.Value
			order = append(order, s.Key)
		}
		return m, order, strings.Join(policy, " | ")
	}
	a, order, pa := single(before)
	b, _, pb := single(after)
	var changes []string
	for _, k := range order {
		if a[k] != b[k] {
			changes = append(changes, fmt.Sprintf("%s %s → %s", k, a[k], b[k]))
		}
	}
	if pa != pb {
		if pa == "" {
			pa = "(none)"
		}
		if pb == "" {
			pb = "(none)"
		}
		changes = append(changes, fmt.Sprintf("policy %s → %s", pa, pb))
	}
	return strings.Join(changes, "; ")
}

// Validate checks that every governance value is in range; the error
// names the setting.
func (g Governance) Validate() error {
	switch {
	case bad(g.BudgetPerRunUSD, 1e6):
		return fmt.Errorf("budget-run must be from 0 to 1000000 US dollars, got %g", g.BudgetPerRunUSD)
	case bad(g.BudgetPerDayUSD, 1e6):
		return fmt.Errorf("budget-day must be from 0 to 1000000 US dollars, got %g", g.BudgetPerDayUSD)
	case g.MaxSteps < 0 || g.MaxSteps > 1e9:
		return fmt.Errorf("max-steps must be a whole number from 0 to 1000000000, got %d", g.MaxSteps)
	case g.WallClockS < 0 || g.WallClockS > 6e8:
		return fmt.Errorf("wall-clock must be from 0 to 10000000 minutes, got %ds", g.WallClockS)
	case bad(g.UncertaintyThreshold, 1):
		return fmt.Errorf("threshold must be a number from 0 to 1, got %g", g.UncertaintyThreshold)
	case g.ConfirmationTTLS < 0 || g.ConfirmationTTLS > 6e8:
		return fmt.Errorf("confirm-ttl must be from 0 to 10000000 minutes, got %ds", g.ConfirmationTTLS)
	}
	return nil
}

// Validate checks the sandbox limits are in range; the error names the
// setting.
func (c SandboxConfig) Validate() error {
	switch c.Provider {
	case "", "local", "e2b":
	default:
		return fmt.Errorf("sandbox provider must be local or e2b (or empty for the server default), got %q", c.Provider)
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"memory-mb", c.MemoryMB}, {"cpu-seconds", c.CPUSeconds}, {"processes", c.MaxProcesses}, {"idle timeout", c.IdleTimeoutS}, {"disk-mb", c.DiskMB}} {
		if v.n < 0 || v.n > 1e9 {
			return fmt.Errorf("%s must be a whole number from 0 to 1000000000, got %d", v.name, v.n)
		}
	}
	if c.DiskMB > 0 && c.DiskMB < 16 {
		return fmt.Errorf("disk-mb must be at least 16 (or 0 for the default), got %d", c.DiskMB)
	}
	return nil
}

func bad(v, max float64) bool { return math.IsNaN(v) || v < 0 || v > max }

// ShortDuration writes d as time.Duration does without zero units:
// 30m, 1h30m, 24h, 90s; 0 for zero.
func ShortDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
