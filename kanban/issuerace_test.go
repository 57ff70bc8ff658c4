package kanban_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// countingRunner counts the runs the board starts, per card.
type countingRunner struct {
	mu    sync.Mutex
	n     atomic.Int64
	cards map[string]int
}

func (r *countingRunner) Start(_ context.Context, req engine.StartRequest) (*store.Execution, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cards[req.ThreadRef]++
	return &store.Execution{ID: fmt.Sprintf("r%d", r.n.Add(1)), ProjectID: req.Project.ID, Status: store.StatusRunning}, nil
}

// TestIssueDeliveriesRaceToOneCard: an issue's "opened" delivery and its
// trigger label handled at the same moment, by several inbox workers on
// two replicas, make one card for the issue, in In progress, with one
// run. The database refuses a second card per issue, and the losing
// deliveries use the card that won.
func TestIssueDeliveriesRaceToOneCard(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		ctx := t.Context()
		runs := &countingRunner{cards: map[string]int{}}
		f := newFixture(t, url)
		p, err := f.db.ProjectByName(ctx, f.project)
		if err != nil {
			t.Fatal(err)
		}
		p.IssuesBecomeCards = true
		if err := f.db.UpdateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		var svcs []*kanban.Service
		for range 2 {
			svc, err := kanban.New(kanban.Config{Store: storetest.OpenURL(t, url), Runs: runs})
			if err != nil {
				t.Fatal(err)
			}
			svcs = append(svcs, svc)
		}
		maint := kanban.Actor{ID: "github:maint", Surface: "github", Role: func(context.Context, int64) (store.Role, error) { return store.RoleMember, nil }}
		const issues, workers = 6, 8
		for n := 1; n <= issues; n++ {
			url := fmt.Sprintf("https://github.com/o/r/issues/%d", n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Go(func() {
					svc := svcs[w%len(svcs)]
					<-start
					var err error
					if w%2 == 0 {
						_, _, err = svc.IssueOpened(ctx, maint, p.ID, n, fmt.Sprintf("Issue %d", n), url)
					} else {
						_, _, err = svc.IssueCard(ctx, maint, p.ID, n, fmt.Sprintf("Issue %d", n), url)
					}
					if err != nil {
						errs <- fmt.Errorf("worker %d, issue #%d: %w", w, n, err)
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		}
		b, err := f.svc.Board(ctx, f.as("vic"), f.project)
		if err != nil {
			t.Fatal(err)
		}
		perIssue := map[int][]string{}
		for _, col := range b.Columns {
			for _, c := range col.Cards {
				perIssue[c.IssueNumber] = append(perIssue[c.IssueNumber], c.ID+" in "+col.Name)
				if col.Name != "In progress" {
					t.Errorf("card %s of issue #%d is in %s, want In progress (the trigger label was handled)", c.ID, c.IssueNumber, col.Name)
				}
			}
		}
		for n := 1; n <= issues; n++ {
			cards := perIssue[n]
			if len(cards) != 1 {
				t.Fatalf("issue #%d has %d cards: %v", n, len(cards), cards)
			}
			c, err := f.db.CardByIssue(ctx, p.ID, n)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := f.db.CardRuns(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			runs.mu.Lock()
			started := runs.cards[c.ID]
			runs.mu.Unlock()
			if started != 1 || len(ids) != 1 {
				t.Fatalf("issue #%d: card %s started %d runs (%d recorded), want 1", n, c.ID, started, len(ids))
			}
		}
		if got := runs.n.Load(); got != issues {
			t.Fatalf("%d runs started for %d issues", got, issues)
		}
	})
}
