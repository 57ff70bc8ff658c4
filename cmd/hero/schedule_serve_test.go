package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// TestServeProcess is not a test: it is `hero serve` in a process of its
// own, started by TestServeSchedulesTwoReplicas with HERO_TEST_SERVE=1.
func TestServeProcess(t *testing.T) {
	if os.Getenv("HERO_TEST_SERVE") != "1" {
		t.Skip("a helper process for TestServeSchedulesTwoReplicas")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// The parent closes stdin to stop this replica.
		b := make([]byte, 1)
		os.Stdin.Read(b)
		cancel()
	}()
	if err := run(ctx, []string{"serve"}, stdio{in: strings.NewReader(""), out: os.Stdout, err: os.Stderr}, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestServeSchedulesTwoReplicas starts two `hero serve` processes on one
// database (MariaDB when HERO_TEST_MYSQL_URL is set, else one SQLite
// file): 100 slots fall due over ten seconds while both tick, and each
// fires exactly once, as one run; a schedule whose slots were missed
// during an outage fires once and records the skipped ones.
func TestServeSchedulesTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	t.Run("sqlite", func(t *testing.T) {
		testServeSchedules(t, "sqlite://"+filepath.Join(t.TempDir(), "hero.db"))
	})
	t.Run("mysql", func(t *testing.T) {
		// A database of its own: the replicas claim every due schedule.
		testServeSchedules(t, storetest.FreshMySQL(t, "sched"))
	})
}

func testServeSchedules(t *testing.T, dbURL string) {
	dataDir := t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": dataDir, "DATABASE_URL": dbURL, "SECRETS_ENCRYPTION_KEY": testKeyHex, "SECRETS_KDF_SALT": testSaltHex}
	// Nothing listens on port 1: the runs fail at once, which is fine
	// here (they are counted, not judged).
	if _, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", "http://127.0.0.1:1/web.git"); err != nil {
		t.Fatal(err)
	}
	db := storetest.OpenURL(t, dbURL)
	ctx := t.Context()
	p, err := db.ProjectByName(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}

	type replica struct {
		cmd  *exec.Cmd
		logs *syncBuffer
		stop func()
	}
	start := func(i int) *replica {
		cmd := exec.Command(os.Args[0], "-test.run=^TestServeProcess$", "-test.v=false")
		cmd.Env = append(os.Environ(), "HERO_TEST_SERVE=1", "HERO_DATA_DIR="+filepath.Join(dataDir, fmt.Sprint("r", i)), "DATABASE_URL="+dbURL,
			"HERO_ADDR=127.0.0.1:0", "HERO_SANDBOX_POOL=0", "HERO_SCHEDULE_TICK=100ms", "OPENAI_API_KEY=",
			"SECRETS_ENCRYPTION_KEY="+testKeyHex, "SECRETS_KDF_SALT="+testSaltHex)
		logs := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := &replica{cmd: cmd, logs: logs}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		r.stop = func() {
			in.Close()
			select {
			case <-done:
			case <-time.After(40 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		t.Cleanup(r.stop)
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(logs.String(), "hero is listening") {
			if time.Now().After(deadline) {
				t.Fatalf("replica %d did not start:\n%s", i, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return r
	}
	replicas := []*replica{start(1), start(2)}

	// 100 slots due over the next ten seconds, and one schedule whose
	// last five hourly slots passed while hero was down.
	base := time.Now().UTC().Add(500 * time.Millisecond)
	const n = 100
	ids := map[string]bool{}
	for i := range n {
		s := &store.Schedule{ProjectID: p.ID, Kind: store.ScheduleRun, Expr: "@hourly", TZ: "UTC", Task: fmt.Sprintf("chore %d", i),
			Creator: "local:test", CreatorOperator: true, NextAt: base.Add(time.Duration(i) * 100 * time.Millisecond)}
		if err := db.CreateSchedule(ctx, s); err != nil {
			t.Fatal(err)
		}
		ids[s.ID] = true
	}
	hour := time.Now().UTC().Truncate(time.Hour)
	outage := &store.Schedule{ProjectID: p.ID, Kind: store.ScheduleRun, Expr: "0 * * * *", TZ: "UTC", Task: "after the outage",
		Creator: "local:test", CreatorOperator: true, NextAt: hour.Add(-4 * time.Hour)}
	if err := db.CreateSchedule(ctx, outage); err != nil {
		t.Fatal(err)
	}

	// Wait until every slot is fired.
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := db.Bun().NewSelect().Table("schedule_slots").Where("outcome = ?", store.SlotFired).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pending := n + 1 - c
		if pending <= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d slots not fired after 90 s\nreplica 1:\n%s\nreplica 2:\n%s", pending, replicas[0].logs.String(), replicas[1].logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a late double claim would show now
	for _, r := range replicas {
		r.stop()
	}

	runs, err := db.ListExecutions(ctx, store.ExecutionFilter{ProjectID: p.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	perSchedule := map[string]int{}
	for _, r := range runs {
		if r.Surface != "schedule" {
			t.Errorf("run %s reports to %q", r.ID, r.Surface)
		}
		id, _, _ := strings.Cut(r.ThreadRef, "|")
		perSchedule[id]++
	}
	for id := range ids {
		if perSchedule[id] != 1 {
			t.Errorf("schedule %s ran %d times, want once", id, perSchedule[id])
		}
	}
	if len(runs) != n+1 || perSchedule[outage.ID] != 1 {
		t.Fatalf("%d runs (want %d), %d after the outage (want 1)", len(runs), n+1, perSchedule[outage.ID])
	}
	claimers := map[string]int{}
	var slots []store.ScheduleSlot
	if err := db.Bun().NewSelect().Model(&slots).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if ids[s.ScheduleID] {
			claimers[s.ClaimedBy]++
		}
	}
	// Both replicas usually claim some (which makes the check above
	// meaningful); on a machine loaded enough to stall one replica for
	// the whole ten seconds the other claims all, which is no error.
	t.Logf("slots claimed per replica: %v", claimers)
	out, err := db.ScheduleSlots(ctx, outage.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range out {
		got = append(got, s.Slot.Format("15:04")+" "+s.Outcome)
	}
	want := fmt.Sprintf("%s fired, %s skipped, %s skipped, %s skipped, %s skipped", hour.Format("15:04"), hour.Add(-time.Hour).Format("15:04"),
		hour.Add(-2*time.Hour).Format("15:04"), hour.Add(-3*time.Hour).Format("15:04"), hour.Add(-4*time.Hour).Format("15:04"))
	if strings.Join(got, ", ") != want {
		t.Errorf("slots after the outage: %s, want %s", strings.Join(got, ", "), want)
	}
	if !regexp.MustCompile(`caught up after an outage: 4 missed slot\(s\)`).MatchString(out[0].Note) {
		t.Errorf("note: %q", out[0].Note)
	}
}

// The replicas share one key, as replicas must.
const testKeyHex, testSaltHex = "3333333333333333333333333333333333333333333333333333333333333333", "00112233445566778899aabbccddeeff"
