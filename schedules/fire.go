package schedules

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hero-dev/hero/bot/fanout"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// ClaimBatch is how many slots one claim transaction (one Tick) takes: a
// tick's worth in one multi-row INSERT, still short enough that other
// replicas, which skip the locked rows, wait for nothing. Run ticks again
// while a full batch comes back.
const ClaimBatch = 1000

// plan decides, inside the claim transaction, what a due schedule does:
// the latest slot at or before now fires once (or is skipped while the
// previous run is active); earlier slots were missed (hero was down) and
// are recorded as skipped; the schedule then waits for its first slot
// after now.
func (s *Service) plan(now time.Time) func(sc *store.Schedule, runActive bool) store.SlotPlan {
	return func(sc *store.Schedule, runActive bool) store.SlotPlan {
		sp, err := s.spec(sc.Expr, sc.TZ)
		if err != nil {
			// Parsed when it was made; a zone that vanished from the
			// system's database leaves it unparsable. Record it and try
			// again in an hour.
			return store.SlotPlan{
				Slot: store.ScheduleSlot{Slot: sc.NextAt, Outcome: store.SlotFailed, Note: err.Error()},
				Next: now.Add(time.Hour),
			}
		}
		slot := sc.NextAt
		var missed []time.Time
		n := 0
		next := sp.Next(slot)
		for !next.IsZero() && !next.After(now) {
			if len(missed) < maxRecordedMisses {
				missed = append(missed, slot)
			}
			n++
			slot, next = next, sp.Next(next)
			if n > 100000 { // a very long outage: jump to now
				slot, next = now, sp.Next(now)
				break
			}
		}
		if next.IsZero() {
			next = now.Add(100 * 365 * 24 * time.Hour)
		}
		p := store.SlotPlan{Slot: store.ScheduleSlot{Slot: slot, Outcome: store.SlotClaimed}, Next: next}
		if n > 0 {
			p.Slot.Note = fmt.Sprintf("caught up after an outage: %d missed slot(s) since %s skipped, fired once", n, sp.Format(sc.NextAt))
		}
		for _, m := range missed {
			p.Skipped = append(p.Skipped, store.ScheduleSlot{Slot: m, Outcome: store.SlotSkipped,
				Note: "missed: hero was not running; fired once at catch-up (" + sp.Format(slot) + ")"})
		}
		if runActive {
			p.Slot.Outcome = store.SlotSkipped
			p.Slot.Note = fmt.Sprintf("skipped: the previous run %s is still active", sc.LastRunID)
		}
		return p
	}
}

// Tick claims up to 1000 slots — those whose claim by another replica
// lapsed unfired, then the due ones — and returns them; the caller fires
// the claimed ones (Fire) within the slot lease, and ticks again while a
// full batch came back. Any number of replicas may tick at once: each
// slot is claimed by one at a time, and fired once (see Fire).
func (s *Service) Tick(ctx context.Context) ([]store.ClaimedSlot, error) {
	now := s.cfg.Now().UTC()
	cs, err := s.db.ClaimDueSchedules(ctx, now, ClaimBatch, s.cfg.Owner, s.cfg.SlotLease, s.plan(now))
	if err != nil {
		return nil, fmt.Errorf("schedule tick: %w", err)
	}
	for _, c := range cs {
		switch {
		case c.Reclaimed:
			s.log.Warn("schedule slot claimed again: its replica stopped before firing it", "schedule", c.Schedule.ID, "slot", c.Plan.Slot.Slot)
		case c.Plan.Slot.Outcome != store.SlotClaimed:
			s.log.Info("schedule slot skipped", "schedule", c.Schedule.ID, "slot", c.Plan.Slot.Slot, "why", c.Plan.Slot.Note)
		}
	}
	return cs, nil
}

// Run ticks every interval until ctx ends, firing claimed slots on a few
// workers so a slow chat platform does not delay the next tick.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	queue := make(chan store.ClaimedSlot, ClaimBatch)
	done := make(chan struct{})
	const workers = 4
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for c := range queue {
				s.Fire(ctx, c)
			}
		}()
	}
	t := time.NewTicker(interval)
	defer func() {
		t.Stop()
		close(queue)
		for range workers {
			<-done
		}
	}()
	for {
		for ctx.Err() == nil {
			cs, err := s.Tick(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Error("schedule tick", "err", err)
			}
			for _, c := range cs {
				if c.Plan.Slot.Outcome != store.SlotClaimed {
					continue
				}
				select {
				case queue <- c:
				case <-ctx.Done():
					return nil
				}
			}
			if len(cs) < ClaimBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Fire does a claimed slot's work: checks the creator still holds a role
// that may run it, then starts the run or posts the digest or reminder,
// and records the outcome. Failures count towards pausing.
//
// Exactly once: Fire first renews this process's lease on the slot and
// does nothing when it lost it (the slot waited past its lease and
// another replica claimed it). The slot is recorded as fired only after
// its work was handed over; a process that stops before that leaves the
// slot claimed, and another replica claims it again when the lease
// lapses. A scheduled run's id is derived from its slot, so the run is
// started at most once whoever fires the slot, however often: a replica
// that finds the run already recorded only records the slot. A digest or
// reminder is a chat post, which no platform lets hero make idempotent: a
// process stopping in the moment between its post and the record would
// have it posted twice.
func (s *Service) Fire(ctx context.Context, c store.ClaimedSlot) {
	sc, slot := &c.Schedule, c.Plan.Slot.Slot
	if c.Plan.Slot.Outcome != store.SlotClaimed {
		return
	}
	held, err := s.db.HoldSlot(ctx, sc.ID, slot, s.cfg.Owner, s.cfg.Now().Add(s.cfg.SlotLease))
	if err != nil {
		// Unrecorded, the claim lapses and a replica fires it then.
		s.log.Error("renew a schedule slot's lease; it fires when the lease lapses", "schedule", sc.ID, "slot", slot, "err", err)
		return
	}
	if !held {
		s.log.Info("schedule slot taken over by another replica before it fired here", "schedule", sc.ID, "slot", slot)
		return
	}
	p, err := s.db.ProjectByID(ctx, sc.ProjectID)
	if err != nil {
		s.finish(ctx, sc, slot, store.SlotFailed, "", fmt.Sprintf("load project: %v", err))
		return
	}
	role, err := s.cfg.CreatorRole(ctx, sc.ProjectID, creatorOf(sc))
	if err != nil {
		s.finish(ctx, sc, slot, store.SlotFailed, "", fmt.Sprintf("look up the creator's role: %v", err))
		return
	}
	if !role.AtLeast(store.RoleMember) {
		msg := fmt.Sprintf("Schedule %s (%s) in project %s stopped: its creator %s no longer holds the member role there, and it will not run with rights nobody holds. A member can resume it (it then runs as them): hero schedule resume --project %s %s",
			sc.ID, sc.Expr, p.Name, sc.Creator, p.Name, sc.ID)
		if err := s.db.SetScheduleState(ctx, sc.ID, store.ScheduleStopped, msg, time.Time{}); err != nil {
			s.log.Error("stop schedule", "schedule", sc.ID, "err", err)
		}
		s.finish(ctx, sc, slot, store.SlotStopped, "", "the creator lost their role")
		s.notify(ctx, sc, msg)
		return
	}
	switch sc.Kind {
	case store.ScheduleRun:
		s.fireRun(ctx, p, sc, slot, c.Plan.Slot.Note)
	case store.ScheduleDigest, store.ScheduleReminder:
		text, err := s.Text(ctx, p, sc)
		if err == nil && text == "" {
			s.finish(ctx, sc, slot, store.SlotFired, "", "no cards over the threshold: nothing posted")
			s.outcome(ctx, sc, p, false, "")
			return
		}
		if err == nil {
			_, err = s.post(ctx, sc.ReportSurface, sc.ReportTo, text)
		}
		if err != nil {
			s.finish(ctx, sc, slot, store.SlotFailed, "", err.Error())
			s.outcome(ctx, sc, p, true, err.Error())
			return
		}
		s.finish(ctx, sc, slot, store.SlotFired, "", "posted to "+sc.ReportSurface+" "+sc.ReportTo)
		s.outcome(ctx, sc, p, false, "")
	default:
		s.finish(ctx, sc, slot, store.SlotFailed, "", "unknown kind "+sc.Kind)
	}
}

func (s *Service) fireRun(ctx context.Context, p *store.Project, sc *store.Schedule, slot time.Time, note string) {
	if s.cfg.Runs == nil {
		s.finish(ctx, sc, slot, store.SlotFailed, "", "no engine here to run it")
		return
	}
	id := slotRunID(sc.ID, slot)
	switch ex, err := s.db.Execution(ctx, id); {
	case err == nil:
		// A replica started it and stopped before recording the slot.
		s.finish(ctx, sc, slot, store.SlotFired, ex.ID, "run started; recorded by "+s.cfg.Owner+" after the replica that started it stopped")
		return
	case !errors.Is(err, store.ErrNotFound):
		s.log.Error("look for a schedule slot's run; it fires when the lease lapses", "schedule", sc.ID, "slot", slot, "err", err)
		return
	}
	// Open the run's thread where the schedule reports, so the run's
	// progress and questions appear there.
	ref := sc.ID + "||"
	if sc.ReportSurface != "" {
		thread, err := s.post(ctx, sc.ReportSurface, sc.ReportTo, fmt.Sprintf("Scheduled run (schedule %s, %s) in project %s:\n%s", sc.ID, sc.Expr, p.Name, sc.Task))
		if err != nil {
			s.log.Warn("open a scheduled run's thread; it reports to the settings page only", "schedule", sc.ID, "err", err)
		} else {
			ref = sc.ID + "|" + sc.ReportSurface + "|" + thread
		}
	}
	ex, err := s.cfg.Runs.Start(s.cfg.RunContext, engine.StartRequest{
		Project: p, Task: sc.Task, Surface: SurfaceName, ThreadRef: ref, By: creatorOf(sc), ID: id,
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		// Another replica fired it meanwhile (this one's lease lapsed).
		s.finish(ctx, sc, slot, store.SlotFired, id, "run started")
		return
	case errors.Is(err, engine.ErrDraining):
		// This process is stopping: another replica fires the slot when
		// the lease lapses.
		s.log.Info("schedule slot left to another replica: hero is stopping", "schedule", sc.ID, "slot", slot)
		return
	}
	if err != nil {
		msg := fmt.Sprintf("the run did not start: %v", err)
		s.finish(ctx, sc, slot, store.SlotFailed, "", msg)
		s.outcome(ctx, sc, p, true, msg)
		return
	}
	if note == "" {
		note = "run started"
	}
	s.finish(ctx, sc, slot, store.SlotFired, ex.ID, note)
	s.log.Info("scheduled run started", "schedule", sc.ID, "run", ex.ID, "slot", slot)
}

// slotRunID is the id of the run a schedule's slot starts: the same for
// every replica that fires the slot, so the database refuses a second
// run (the primary key). "r" and 12 characters of the run ids' alphabet,
// longer than random run ids so that none collides with one.
func slotRunID(scheduleID string, slot time.Time) string {
	h := sha256.Sum256([]byte(scheduleID + "\x00" + slot.UTC().Format(time.RFC3339Nano)))
	return "r" + strings.ToLower(base32.StdEncoding.EncodeToString(h[:]))[:12]
}

// creatorOf is the person a schedule runs as.
func creatorOf(sc *store.Schedule) engine.Principal {
	return engine.Principal{ID: sc.Creator, UserID: sc.CreatorUserID, Operator: sc.CreatorOperator}
}

func (s *Service) finish(ctx context.Context, sc *store.Schedule, slot time.Time, outcome, execID, note string) {
	if err := s.db.FinishSlot(ctx, sc.ID, slot, outcome, execID, note); err != nil {
		s.log.Error("record a schedule slot", "schedule", sc.ID, "slot", slot, "err", err)
	}
	if outcome == store.SlotFailed {
		s.log.Warn("schedule slot failed", "schedule", sc.ID, "slot", slot, "why", note)
	}
}

// outcome counts a fired slot's result; the third failure in a row
// pauses the schedule and says so where it reports.
func (s *Service) outcome(ctx context.Context, sc *store.Schedule, p *store.Project, failed bool, why string) {
	msg := fmt.Sprintf("Schedule %s (%s) in project %s is paused after %d failures in a row; the last: %s. Resume it with hero schedule resume --project %s %s",
		sc.ID, sc.Expr, p.Name, PauseAfter, oneLine(why, 300), p.Name, sc.ID)
	paused, err := s.db.ScheduleOutcome(ctx, sc.ID, failed, PauseAfter, msg)
	if err != nil {
		s.log.Error("record a schedule's outcome", "schedule", sc.ID, "err", err)
		return
	}
	if paused {
		s.log.Warn("schedule paused after failures", "schedule", sc.ID)
		s.notify(ctx, sc, msg)
	}
}

// notify tells where the schedule reports (nothing to do when that is
// the settings page only: the note shows there).
func (s *Service) notify(ctx context.Context, sc *store.Schedule, text string) {
	if sc.ReportSurface == "" {
		return
	}
	if _, err := s.post(ctx, sc.ReportSurface, sc.ReportTo, text); err != nil {
		s.log.Warn("tell where a schedule reports", "schedule", sc.ID, "err", err)
	}
}

func (s *Service) post(ctx context.Context, surface, to, text string) (string, error) {
	if surface == "" {
		return "", errors.New("the schedule has no channel to post to")
	}
	po, err := s.poster(surface)
	if err != nil {
		return "", err
	}
	thread, err := po.Post(ctx, to, text)
	if err != nil {
		return "", fmt.Errorf("post to %s %s: %w", surface, to, err)
	}
	return thread, nil
}

// poster finds the surface named surface, which must be able to post.
func (s *Service) poster(surface string) (Poster, error) {
	if s.cfg.Places == nil {
		return nil, fmt.Errorf("cannot post to %s here", surface)
	}
	sf, ok := s.cfg.Places.Surface(surface)
	if !ok {
		return nil, fmt.Errorf("cannot post to %s: that surface is not configured", surface)
	}
	po, ok := sf.(Poster)
	if !ok {
		return nil, fmt.Errorf("cannot post to %s: schedules cannot report there yet", surface)
	}
	return po, nil
}

// parseRef splits a scheduled run's thread reference.
func parseRef(ref string) (scheduleID, surface, thread string) {
	parts := strings.SplitN(ref, "|", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2]
}

// Name is the engine surface name of scheduled runs.
func (s *Service) Name() string { return SurfaceName }

var _ engine.Surface = (*Service)(nil)

// destinations is where a scheduled run reports: the thread of its
// schedule's channel or issue; none when it reports to the settings page
// only (its questions wait on the run's page there).
func (s *Service) destinations(_ context.Context, ex *store.Execution) ([]fanout.Destination, error) {
	_, surface, thread := parseRef(ex.ThreadRef)
	if surface == "" || thread == "" {
		return nil, nil
	}
	return []fanout.Destination{{Surface: surface, Ref: thread}}, nil
}

// runFinished counts a scheduled run's end: a failed run is a failure in a
// row.
func (s *Service) runFinished(ctx context.Context, ex *store.Execution, o *engine.Outcome) error {
	id, _, _ := parseRef(ex.ThreadRef)
	sc, err := s.db.Schedule(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // removed meanwhile: nothing to count
	}
	if err != nil {
		return fmt.Errorf("count the end of scheduled run %s: %w", ex.ID, err)
	}
	p, err := s.db.ProjectByID(ctx, sc.ProjectID)
	if err != nil {
		return fmt.Errorf("count the end of scheduled run %s: %w", ex.ID, err)
	}
	why := fmt.Sprintf("run %s %s", ex.ID, o.Status)
	if o.Error != "" {
		why += ": " + o.Error
	}
	s.outcome(ctx, sc, p, o.Status != store.StatusSucceeded, why)
	return nil
}

// Update passes a scheduled run's events to where its schedule reports,
// and counts its end.
func (s *Service) Update(ctx context.Context, ex *store.Execution, ev engine.Event) error {
	return s.relay.Update(ctx, ex, ev)
}

// Ask shows a scheduled run's confirmation where its schedule reports.
func (s *Service) Ask(ctx context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	return s.relay.Ask(ctx, ex, c)
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
