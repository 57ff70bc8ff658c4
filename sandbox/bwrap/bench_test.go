package bwrap

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
)

// BenchmarkColdStart measures Create + the first Exec of `true` + Close's
// absence from the critical path (Close runs after the timer stops).
// It reports p50_ms and p90_ms besides the mean ns/op.
func BenchmarkColdStart(b *testing.B) {
	p := newProvider(b)
	ctx := context.Background()
	durations := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		sb, err := p.Create(ctx, sandbox.Spec{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"true"}})
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("exec true: %+v %v", res, err)
		}
		durations = append(durations, time.Since(start))
		b.StopTimer()
		if err := sb.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportPercentiles(b, durations)
}

// BenchmarkExec measures one more command in an existing sandbox.
func BenchmarkExec(b *testing.B) {
	p := newProvider(b)
	ctx := context.Background()
	sb := newSandbox(b, p, sandbox.Spec{})
	durations := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if _, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"true"}}); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	reportPercentiles(b, durations)
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	ms := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.5), "p50_ms")
	b.ReportMetric(ms(0.9), "p90_ms")
}
