package schedules

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// maxListed caps the cards and runs one message lists.
const maxListed = 20

// Text is what a digest or reminder schedule posts now ("" for a
// reminder with no card over its threshold). Cards in backlog and done
// columns never count as stuck: waiting there is their purpose.
func (s *Service) Text(ctx context.Context, p *store.Project, sc *store.Schedule) (string, error) {
	now := s.cfg.Now().UTC()
	b, cols, err := s.db.EnsureBoard(ctx, p.ID, kanban.DefaultBoard, kanban.DefaultColumns())
	if err != nil {
		return "", fmt.Errorf("read the board of %s: %w", p.Name, err)
	}
	cards, err := s.db.BoardCards(ctx, b.ID)
	if err != nil {
		return "", fmt.Errorf("read the cards of %s: %w", p.Name, err)
	}
	entered, err := s.db.CardsEnteredColumn(ctx, b.ID)
	if err != nil {
		return "", err
	}
	stale := time.Duration(sc.StaleS) * time.Second
	if stale <= 0 {
		stale = DefaultStale
	}
	colOf := map[int64]*store.KanbanColumn{}
	count := map[int64]int{}
	for i := range cols {
		colOf[cols[i].ID] = &cols[i]
	}
	type stuckCard struct {
		card store.KanbanCard
		col  string
		age  time.Duration
	}
	var stuck []stuckCard
	for _, c := range cards {
		count[c.ColumnID]++
		col := colOf[c.ColumnID]
		if col == nil || col.Kind == store.KindBacklog || col.Kind == store.KindDone {
			continue
		}
		at, ok := entered[c.ID]
		if !ok {
			at = c.CreatedAt
		}
		if age := now.Sub(at); age > stale {
			stuck = append(stuck, stuckCard{c, col.Name, age})
		}
	}
	sort.SliceStable(stuck, func(i, j int) bool { return stuck[i].age > stuck[j].age })
	var w strings.Builder
	listStuck := func() {
		for i, st := range stuck {
			if i == maxListed {
				fmt.Fprintf(&w, "  … and %d more\n", len(stuck)-maxListed)
				break
			}
			fmt.Fprintf(&w, "  • %s %q: in %s for %s\n", st.card.ID, oneLine(st.card.Title, 120), st.col, days(st.age))
		}
	}
	if sc.Kind == store.ScheduleReminder {
		if len(stuck) == 0 {
			return "", nil
		}
		fmt.Fprintf(&w, "Reminder for project %s: %d card(s) sat in their column longer than %s\n", p.Name, len(stuck), days(stale))
		listStuck()
		return strings.TrimRight(w.String(), "\n"), nil
	}

	loc, err := time.LoadLocation(sc.TZ)
	if err != nil {
		loc = time.UTC
	}
	fmt.Fprintf(&w, "Board digest for project %s, %s\n", p.Name, now.In(loc).Format("2006-01-02 15:04 MST"))
	var per []string
	for _, c := range cols {
		per = append(per, fmt.Sprintf("%s: %d", c.Name, count[c.ID]))
	}
	fmt.Fprintf(&w, "Cards per column: %s\n", strings.Join(per, ", "))
	if len(stuck) == 0 {
		fmt.Fprintf(&w, "No card stuck longer than %s.\n", days(stale))
	} else {
		fmt.Fprintf(&w, "Stuck longer than %s:\n", days(stale))
		listStuck()
	}
	runs, err := s.db.RecentRuns(ctx, p.ID, now.Add(-24*time.Hour))
	if err != nil {
		return "", err
	}
	var total float64
	unknown := false
	for _, r := range runs {
		total += r.CostUSD
		unknown = unknown || !r.CostKnown
	}
	cost := fmt.Sprintf("$%.2f", total)
	if unknown {
		cost += " (some costs unknown)"
	}
	if len(runs) == 0 {
		fmt.Fprintf(&w, "No runs in the last day.\n")
	} else {
		fmt.Fprintf(&w, "Runs in the last day: %d, costing %s\n", len(runs), cost)
		for i, r := range runs {
			if i == maxListed {
				fmt.Fprintf(&w, "  … and %d more\n", len(runs)-maxListed)
				break
			}
			fmt.Fprintf(&w, "  • %s %s $%.2f: %s\n", r.ID, r.Status, r.CostUSD, oneLine(r.Task, 80))
		}
	}
	return strings.TrimRight(w.String(), "\n"), nil
}

// days shows a duration in whole days (hours below two days).
func days(d time.Duration) string {
	if d < 48*time.Hour {
		h := int(d.Hours())
		if h == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", h)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
