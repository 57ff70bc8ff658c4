package schedules_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// BenchmarkTick is one scheduler tick over 10,000 schedules: find the due
// ones, claim them (slot records and next times in one transaction per
// tick), and enqueue them for the workers. Each tick finds `due` schedules
// due (the clock moves a minute per tick; 10,000 schedules spread over the
// next 10000/due minutes). The budget is 20 ms on SQLite and MariaDB.
//
// Profile (500 due): the tick is three statements — select the due rows,
// one multi-row INSERT of slot records, one UPDATE of next times — each
// a few milliseconds of database CPU for 500 rows (SQLite spends ~40% of
// it parsing the statements' inlined values; feeding them as one JSON
// parameter through json_each was slower), plus a commit that waits for
// the disk (synchronous=FULL on SQLite). cpu-ms/tick is this process's
// CPU; on MariaDB the server's comes on top.
func BenchmarkTick(b *testing.B) {
	dbs := map[string]string{"sqlite": "sqlite://" + filepath.Join(b.TempDir(), "hero.db")}
	if url := os.Getenv("HERO_TEST_MYSQL_URL"); url != "" {
		dbs["mysql"] = url
	}
	for _, name := range []string{"sqlite", "mysql"} {
		url, ok := dbs[name]
		if !ok {
			continue
		}
		for _, due := range []int{100, 500} {
			b.Run(fmt.Sprintf("%s/schedules=10000/due=%d", name, due), func(b *testing.B) { benchTick(b, url, 10000, due) })
		}
	}
}

func benchTick(b *testing.B, url string, total, due int) {
	ctx := context.Background()
	db := storetest.OpenURL(b, url)
	if _, err := db.Bun().ExecContext(ctx, "DELETE FROM schedules"); err != nil {
		b.Fatal(err)
	}
	p := &store.Project{Name: fmt.Sprintf("bench%d", time.Now().UnixNano()), RepoURL: "https://github.com/o/r", DefaultBranch: "main"}
	if err := db.CreateProject(ctx, p); err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	steps := total / due
	reset := func() {
		// Schedule i falls due at minute i/due; "@every 1000h" keeps a
		// claimed one from falling due again during the run.
		var rows []store.Schedule
		for i := range total {
			rows = append(rows, store.Schedule{ID: fmt.Sprintf("sb%07d", i), ProjectID: p.ID, Kind: store.ScheduleRun, Expr: "@every 1000h", TZ: "UTC",
				Task: "chore", Creator: "local:bench", CreatorOperator: true, Status: store.ScheduleActive,
				NextAt: base.Add(time.Duration(i/due) * time.Minute), CreatedAt: base, UpdatedAt: base})
		}
		if _, err := db.Bun().ExecContext(ctx, "DELETE FROM schedules"); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(rows); i += 1000 {
			chunk := rows[i:min(i+1000, len(rows))]
			if _, err := db.Bun().NewInsert().Model(&chunk).Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	reset()
	clk := newClock(base)
	// The benchmark fires nothing, so its claims stay claimed: a lease
	// longer than the run keeps them from lapsing and being claimed again.
	svc, err := schedules.New(schedules.Config{Store: db, Now: clk.Now, Owner: "bench", SlotLease: 1000 * time.Hour,
		CreatorRole: func(context.Context, int64, engine.Principal) (store.Role, error) { return store.RoleOwner, nil }})
	if err != nil {
		b.Fatal(err)
	}
	queue := make(chan store.ClaimedSlot, 1000)
	step := 0
	var cpu time.Duration // this process's CPU time in ticks: the machine may be shared
	b.ResetTimer()
	for b.Loop() {
		if step == steps {
			b.StopTimer()
			reset()
			step = 0
			b.StartTimer()
		}
		clk.Set(base.Add(time.Duration(step) * time.Minute))
		step++
		c0 := cpuTime()
		// As Run does: claim batches until one comes back short.
		claimed := 0
		for {
			cs, err := svc.Tick(ctx)
			if err != nil {
				b.Fatal(err)
			}
			claimed += len(cs)
			for _, c := range cs {
				queue <- c
			}
			for range cs {
				<-queue
			}
			if len(cs) < schedules.ClaimBatch {
				break
			}
		}
		if claimed != due {
			b.Fatalf("tick %d claimed %d, want %d", step, claimed, due)
		}
		cpu += cpuTime() - c0
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/tick")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/1000, "cpu-ms/tick")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
