package kanban_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store/storetest"
)

// BenchmarkConcurrentMoves: 200 moves across 20 cards by 10 people at
// once on SQLite, checked as TestConcurrentMoves checks them (no lost
// update, one card per position, history chains unbroken). Reports the
// moves per second.
func BenchmarkConcurrentMoves(b *testing.B) {
	url := "sqlite://" + filepath.Join(b.TempDir(), "hero.db")
	f := newFixture(b, url)
	second, err := kanban.New(kanban.Config{Store: storetest.OpenURL(b, url)})
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		checkConcurrentMoves(b, f, []*kanban.Service{f.svc, second}, 20, 10, 200)
		total += time.Since(start)
	}
	b.ReportMetric(float64(200*b.N)/total.Seconds(), "moves/s")
}
