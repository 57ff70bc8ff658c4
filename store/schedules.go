package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// schemaSchedules is scheduled work (migration 20261202001001): recurring
// runs, board digests and reminders, and one row per (schedule, slot)
// whatever happened to it. Replicas claim due schedules in a transaction
// that advances each schedule's next slot and writes its slot rows; the
// primary key on (schedule_id, slot) makes a second claim of a slot fail
// even where rows are not locked, so every slot fires at most once.
var schemaSchedules = []table{
	{
		name: "schedules",
		cols: []column{
			col("id", tStr), col("project_id", tBigint), col("kind", tStr), col("expr", tStr), col("tz", tStr),
			col("task", tText), col("stale_s", tBigint), col("report_surface", tStr), col("report_to", tStr),
			col("creator", tStr), col("creator_user_id", tBigint), col("creator_operator", tBool), col("status", tStr), col("note", tText),
			col("failures", tInt), col("next_at", tTime), col("last_run_id", tStr),
			col("created_at", tTime), col("updated_at", tTime),
		},
		pk:      []string{"id"},
		indexes: [][]string{{"status", "next_at"}, {"project_id"}},
		fks:     []foreignKey{{"project_id", "projects", "id"}},
	},
	{
		name: "schedule_slots",
		cols: []column{
			col("schedule_id", tStr), col("slot", tTime), col("outcome", tStr), col("execution_id", tStr),
			col("note", tText), col("claimed_by", tStr), col("at", tTime),
		},
		pk:  []string{"schedule_id", "slot"},
		fks: []foreignKey{{"schedule_id", "schedules", "id"}},
	},
}

// addSlotLeases is migration 20261204000101: a claimed slot holds a lease
// (lease_until), and a slot whose lease lapsed before it was fired (its
// replica died) is claimed again by another. Slots claimed before this
// migration have no lease and are not claimed again: whether they fired
// is unknown, and firing a chore of days ago twice is worse than not.
func (db *DB) addSlotLeases(ctx context.Context) error {
	if err := db.addColumns("schedule_slots", "lease_until "+sqlType(db.dialect, tTime)+" NULL")(ctx); err != nil {
		return err
	}
	_, err := db.bun.ExecContext(ctx, "CREATE INDEX "+ident(db.dialect, "ix_schedule_slots_outcome_lease_until")+" ON "+
		ident(db.dialect, "schedule_slots")+" (outcome, lease_until)")
	if err != nil {
		return fmt.Errorf("index schedule_slots (outcome, lease_until): %w", err)
	}
	return nil
}

// Schedule kinds.
const (
	ScheduleRun      = "run"      // an agent run with Task
	ScheduleDigest   = "digest"   // the board's digest posted to a channel
	ScheduleReminder = "reminder" // cards that sat in a column too long
)

// Schedule states.
const (
	ScheduleActive  = "active"
	SchedulePaused  = "paused"  // by a person, or after failures in a row (Note says which)
	ScheduleStopped = "stopped" // its creator lost their role; resuming needs a member
)

// Slot outcomes.
const (
	SlotClaimed = "claimed" // claimed by ClaimedBy until LeaseUntil, being fired
	SlotFired   = "fired"   // fired: a run started (ExecutionID) or a message posted
	SlotSkipped = "skipped" // not fired: Note says why (missed while hero was down, previous run active)
	SlotFailed  = "failed"  // firing failed (Note)
	SlotStopped = "stopped" // not fired: the schedule stopped (Note)
)

// Schedule is one recurring job of a project. Expr is the cron expression
// as written (5 fields or a descriptor), TZ the IANA zone it is read in.
// ReportSurface and ReportTo say where it reports (a surface's channel or
// thread reference); both empty: only on the settings page.
type Schedule struct {
	bun.BaseModel `bun:"table:schedules"`

	ID            string `bun:"id,pk"`
	ProjectID     int64  `bun:"project_id,notnull"`
	Kind          string `bun:"kind,notnull"`
	Expr          string `bun:"expr,notnull"`
	TZ            string `bun:"tz,notnull"`
	Task          string `bun:"task,type:text,notnull"`
	StaleS        int64  `bun:"stale_s,notnull"`
	ReportSurface string `bun:"report_surface,notnull"`
	ReportTo      string `bun:"report_to,notnull"`
	Creator       string `bun:"creator,notnull"`
	CreatorUserID int64  `bun:"creator_user_id,notnull"`
	// CreatorOperator: made by the local operator (the command line),
	// who owns every project.
	CreatorOperator bool      `bun:"creator_operator,notnull"`
	Status          string    `bun:"status,notnull"`
	Note            string    `bun:"note,type:text,notnull"`
	Failures        int       `bun:"failures,notnull"`
	NextAt          time.Time `bun:"next_at,notnull"`
	LastRunID       string    `bun:"last_run_id,notnull"`
	CreatedAt       time.Time `bun:"created_at,notnull"`
	UpdatedAt       time.Time `bun:"updated_at,notnull"`
}

// ScheduleSlot is what happened to one fire time of a schedule.
type ScheduleSlot struct {
	bun.BaseModel `bun:"table:schedule_slots"`

	ScheduleID  string    `bun:"schedule_id,pk"`
	Slot        time.Time `bun:"slot,pk"`
	Outcome     string    `bun:"outcome,notnull"`
	ExecutionID string    `bun:"execution_id,notnull"`
	Note        string    `bun:"note,type:text,notnull"`
	ClaimedBy   string    `bun:"claimed_by,notnull"`
	// LeaseUntil is when a claimed slot that has not been fired may be
	// claimed by another replica (zero once it is decided).
	LeaseUntil time.Time `bun:"lease_until,nullzero"`
	At         time.Time `bun:"at,notnull"`
}

// CreateSchedule records a new schedule, generating its id ("s…") when
// empty and setting its timestamps.
func (db *DB) CreateSchedule(ctx context.Context, s *Schedule) error {
	t := now()
	s.CreatedAt, s.UpdatedAt = t, t
	if s.Status == "" {
		s.Status = ScheduleActive
	}
	s.NextAt = s.NextAt.UTC().Truncate(time.Microsecond)
	return wrap(db.insertWithID(ctx, s, &s.ID, "s", 8), "create schedule")
}

// Schedule returns one schedule; ErrNotFound if there is none.
func (db *DB) Schedule(ctx context.Context, id string) (*Schedule, error) {
	s := new(Schedule)
	err := db.bun.NewSelect().Model(s).Where("id = ?", id).Scan(ctx)
	if err != nil {
		return nil, wrap(err, "schedule %s", id)
	}
	return s, nil
}

// ListSchedules returns a project's schedules, oldest first.
func (db *DB) ListSchedules(ctx context.Context, projectID int64) ([]Schedule, error) {
	var out []Schedule
	err := db.bun.NewSelect().Model(&out).Where("project_id = ?", projectID).OrderExpr("created_at, id").Scan(ctx)
	return out, wrap(err, "list schedules of project %d", projectID)
}

// SetScheduleState sets a schedule's status and note; a schedule made
// active again starts counting failures afresh and fires next at next
// (missed slots while it was paused are not caught up).
func (db *DB) SetScheduleState(ctx context.Context, id, status, note string, next time.Time) error {
	q := db.bun.NewUpdate().Model((*Schedule)(nil)).Set("status = ?", status).Set("note = ?", note).
		Set("updated_at = ?", now()).Where("id = ?", id)
	if status == ScheduleActive {
		q = q.Set("failures = 0").Set("next_at = ?", next.UTC().Truncate(time.Microsecond))
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return wrap(err, "set schedule %s %s", id, status)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set schedule %s %s: %w", id, status, ErrNotFound)
	}
	return nil
}

// SetScheduleCreator hands a schedule over to another person (an admin
// resuming it): it runs with their rights from then on.
func (db *DB) SetScheduleCreator(ctx context.Context, id, creator string, userID int64, operator bool) error {
	_, err := db.bun.NewUpdate().Model((*Schedule)(nil)).Set("creator = ?", creator).Set("creator_user_id = ?", userID).Set("creator_operator = ?", operator).
		Set("updated_at = ?", now()).Where("id = ?", id).Exec(ctx)
	return wrap(err, "hand schedule %s to %s", id, creator)
}

// DeleteSchedule removes a schedule and its slot records.
func (db *DB) DeleteSchedule(ctx context.Context, id string) error {
	res, err := db.bun.NewDelete().Model((*Schedule)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return wrap(err, "delete schedule %s", id)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete schedule %s: %w", id, ErrNotFound)
	}
	return nil
}

// ScheduleSlots returns a schedule's latest slot records, newest first.
func (db *DB) ScheduleSlots(ctx context.Context, id string, limit int) ([]ScheduleSlot, error) {
	var out []ScheduleSlot
	err := db.bun.NewSelect().Model(&out).Where("schedule_id = ?", id).OrderExpr("slot DESC").Limit(int64(limit)).Scan(ctx)
	return out, wrap(err, "slots of schedule %s", id)
}

// FinishSlot records how firing a claimed slot went. A started run is
// also remembered as the schedule's last run (the next slot is skipped
// while it is active). Only a slot still claimed is recorded: when a
// replica whose lease lapsed finishes after another one took the slot
// over and recorded it, the first record stands.
func (db *DB) FinishSlot(ctx context.Context, scheduleID string, slot time.Time, outcome, executionID, note string) error {
	return db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*ScheduleSlot)(nil)).Set("outcome = ?", outcome).Set("execution_id = ?", executionID).
			Set("note = ?", note).Set("at = ?", now()).Set("lease_until = NULL").
			Where("schedule_id = ? AND slot = ? AND outcome = ?", scheduleID, slot.UTC().Truncate(time.Microsecond), SlotClaimed).Exec(ctx)
		if err != nil {
			return wrap(err, "record slot of schedule %s", scheduleID)
		}
		if n, _ := res.RowsAffected(); n == 0 || executionID == "" {
			return nil
		}
		_, err = tx.NewUpdate().Model((*Schedule)(nil)).Set("last_run_id = ?", executionID).Where("id = ?", scheduleID).Exec(ctx)
		return wrap(err, "record last run of schedule %s", scheduleID)
	})
}

// HoldSlot renews owner's lease on a claimed slot until until, just
// before firing it. It returns false when owner no longer holds it: the
// lease lapsed and another replica claimed it, or it was decided.
func (db *DB) HoldSlot(ctx context.Context, scheduleID string, slot time.Time, owner string, until time.Time) (bool, error) {
	res, err := db.bun.NewUpdate().Model((*ScheduleSlot)(nil)).Set("lease_until = ?", until.UTC().Truncate(time.Microsecond)).
		Where("schedule_id = ? AND slot = ? AND outcome = ? AND claimed_by = ?", scheduleID, slot.UTC().Truncate(time.Microsecond), SlotClaimed, owner).Exec(ctx)
	if err != nil {
		return false, wrap(err, "hold slot %s of schedule %s", slot.UTC().Format(time.RFC3339), scheduleID)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap(err, "hold slot of schedule %s", scheduleID)
}

// ScheduleOutcome records a fired slot's result: success resets the
// schedule's failures in a row, failure adds one, and the failure that
// makes pauseAfter in a row pauses the schedule with note. It returns
// true when this call paused it.
func (db *DB) ScheduleOutcome(ctx context.Context, id string, failed bool, pauseAfter int, note string) (bool, error) {
	paused := false
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		paused = false
		s := new(Schedule)
		if err := db.forUpdate(tx.NewSelect().Model(s).Where("id = ?", id)).Scan(ctx); err != nil {
			return wrap(err, "schedule %s", id)
		}
		q := tx.NewUpdate().Model((*Schedule)(nil)).Where("id = ?", id).Set("updated_at = ?", now())
		if !failed {
			q = q.Set("failures = 0")
		} else {
			q = q.Set("failures = ?", s.Failures+1)
			if s.Status == ScheduleActive && s.Failures+1 >= pauseAfter {
				q = q.Set("status = ?", SchedulePaused).Set("note = ?", note)
				paused = true
			}
		}
		_, err := q.Exec(ctx)
		return wrap(err, "record outcome of schedule %s", id)
	})
	return paused, err
}

// SlotPlan is what a claim does with one due schedule: the slot it fires
// (Outcome SlotClaimed) or skips (SlotSkipped with Note), the earlier
// slots it skips as missed, and the schedule's next slot after now.
type SlotPlan struct {
	Slot    ScheduleSlot
	Skipped []ScheduleSlot
	Next    time.Time
}

// ClaimedSlot is a due schedule claimed by this caller, with its plan.
type ClaimedSlot struct {
	Schedule Schedule
	Plan     SlotPlan
	// RunActive: the schedule's previous run was still active.
	RunActive bool
	// Reclaimed: another replica claimed the slot before and did not
	// record it within its lease (it stopped); this caller fires it.
	Reclaimed bool
}

// activeStatuses are runs that have not ended.
var activeStatuses = []string{StatusQueued, StatusRunning, StatusWaiting}

// slotInsertChunk bounds the rows of one INSERT (a long catch-up records
// up to a hundred missed slots per schedule): MySQL's packet limit.
const slotInsertChunk = 1000

// ClaimDueSchedules claims, for owner until at+lease, up to limit slots:
// first those whose earlier claim lapsed (the replica that claimed them
// stopped before recording them), then the due slots of active schedules
// whose next slot is at or before at. For each due schedule, plan (given
// the schedule and whether its previous run is still active) says which
// slot rows to write and when it fires next.
//
// Everything is written in the transaction that read the rows — one
// multi-row INSERT of slot records and one UPDATE per distinct next time
// — so two replicas never claim one slot: on MySQL the rows are locked
// with FOR UPDATE SKIP LOCKED (a replica skips what another is claiming),
// an SQLite transaction is exclusive, and the (schedule, slot) primary key
// refuses a second record of a slot on both. A lapsed slot whose schedule
// is due again (claimed now or by a later batch) is recorded as skipped:
// the catch-up fires once; one whose schedule is no longer active is
// skipped too.
func (db *DB) ClaimDueSchedules(ctx context.Context, at time.Time, limit int, owner string, lease time.Duration,
	plan func(s *Schedule, runActive bool) SlotPlan) ([]ClaimedSlot, error) {
	at = at.UTC().Truncate(time.Microsecond)
	until := at.Add(lease)
	var out []ClaimedSlot
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		out = out[:0]
		var lapsed []ScheduleSlot
		lq := tx.NewSelect().Model(&lapsed).Where("outcome = ? AND lease_until <= ?", SlotClaimed, at).OrderExpr("lease_until").Limit(int64(limit))
		if db.dialect == DialectMySQL {
			lq = lq.For("UPDATE SKIP LOCKED")
		}
		if err := lq.Scan(ctx); err != nil {
			return wrap(err, "find lapsed schedule claims")
		}
		var due []Schedule
		if n := limit - len(lapsed); n > 0 {
			q := tx.NewSelect().Model(&due).Where("status = ? AND next_at <= ?", ScheduleActive, at).OrderExpr("next_at, id").Limit(int64(n))
			if db.dialect == DialectMySQL {
				q = q.For("UPDATE SKIP LOCKED")
			}
			if err := q.Scan(ctx); err != nil {
				return wrap(err, "find due schedules")
			}
		}
		if len(lapsed) > 0 {
			re, err := db.reclaim(ctx, tx, lapsed, at, until, owner)
			if err != nil {
				return err
			}
			out = append(out, re...)
		}
		if len(due) == 0 {
			return nil
		}
		var runs []string
		for _, s := range due {
			if s.LastRunID != "" {
				runs = append(runs, s.LastRunID)
			}
		}
		active := map[string]bool{}
		if len(runs) > 0 {
			var ids []string
			if err := tx.NewSelect().Table("agent_executions").Column("id").
				Where("id IN (?) AND status IN (?)", bun.In(runs), bun.In(activeStatuses)).Scan(ctx, &ids); err != nil {
				return wrap(err, "find schedules' active runs")
			}
			for _, id := range ids {
				active[id] = true
			}
		}
		slots := make([]ScheduleSlot, 0, len(due))
		// Schedules share next times (cron slots fall on the same
		// minutes): one UPDATE per distinct next time.
		byNext := map[time.Time][]string{}
		var nexts []time.Time
		for i := range due {
			s := &due[i]
			runActive := s.LastRunID != "" && active[s.LastRunID]
			p := plan(s, runActive)
			p.Slot.ScheduleID, p.Slot.ClaimedBy, p.Slot.At = s.ID, owner, at
			p.Slot.Slot = p.Slot.Slot.UTC().Truncate(time.Microsecond)
			if p.Slot.Outcome == SlotClaimed {
				p.Slot.LeaseUntil = until
			}
			slots = append(slots, p.Slot)
			for j := range p.Skipped {
				k := &p.Skipped[j]
				k.ScheduleID, k.ClaimedBy, k.At, k.Slot = s.ID, owner, at, k.Slot.UTC().Truncate(time.Microsecond)
				slots = append(slots, *k)
			}
			p.Next = p.Next.UTC().Truncate(time.Microsecond)
			if _, ok := byNext[p.Next]; !ok {
				nexts = append(nexts, p.Next)
			}
			byNext[p.Next] = append(byNext[p.Next], s.ID)
			out = append(out, ClaimedSlot{Schedule: *s, Plan: p, RunActive: runActive})
		}
		for i := 0; i < len(slots); i += slotInsertChunk {
			chunk := slots[i:min(i+slotInsertChunk, len(slots))]
			if _, err := tx.NewInsert().Model(&chunk).Exec(ctx); err != nil {
				return wrap(err, "record claimed slots")
			}
		}
		for _, next := range nexts {
			if _, err := tx.NewUpdate().Table("schedules").Set("next_at = ?", next).Set("updated_at = ?", at).
				Where("id IN (?)", bun.In(byNext[next])).Exec(ctx); err != nil {
				return wrap(err, "advance claimed schedules")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// reclaim takes over lapsed claims inside ClaimDueSchedules' transaction.
// Lapsed claims are rare (a replica stopped), so each is one UPDATE.
func (db *DB) reclaim(ctx context.Context, tx bun.Tx, lapsed []ScheduleSlot, at, until time.Time, owner string) ([]ClaimedSlot, error) {
	ids := make([]string, 0, len(lapsed))
	for _, l := range lapsed {
		ids = append(ids, l.ScheduleID)
	}
	var scs []Schedule
	if err := tx.NewSelect().Model(&scs).Where("id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
		return nil, wrap(err, "schedules of lapsed claims")
	}
	byID := make(map[string]*Schedule, len(scs))
	for i := range scs {
		byID[scs[i].ID] = &scs[i]
	}
	var out []ClaimedSlot
	for _, l := range lapsed {
		sc := byID[l.ScheduleID]
		q := tx.NewUpdate().Model((*ScheduleSlot)(nil)).Set("at = ?", at).
			Where("schedule_id = ? AND slot = ? AND outcome = ? AND lease_until <= ?", l.ScheduleID, l.Slot.UTC(), SlotClaimed, at)
		var note string
		switch {
		case sc == nil:
			continue // removed meanwhile (its slots go with it)
		case sc.Status == ScheduleActive && !sc.NextAt.After(at):
			note = fmt.Sprintf("skipped: %s claimed it and stopped before firing it; the schedule was due again, and the catch-up fires once", l.ClaimedBy)
		case sc.Status != ScheduleActive:
			note = fmt.Sprintf("skipped: %s claimed it and stopped before firing it, and the schedule is %s now", l.ClaimedBy, sc.Status)
		}
		if note != "" {
			q = q.Set("outcome = ?", SlotSkipped).Set("note = ?", note).Set("lease_until = NULL")
		} else {
			q = q.Set("claimed_by = ?", owner).Set("lease_until = ?", until)
		}
		res, err := q.Exec(ctx)
		if err != nil {
			return nil, wrap(err, "take over the lapsed claim of schedule %s", l.ScheduleID)
		}
		if n, _ := res.RowsAffected(); n != 1 || note != "" {
			continue
		}
		prev := l.ClaimedBy
		l.ClaimedBy, l.LeaseUntil, l.At = owner, until, at
		if l.Note == "" {
			l.Note = "claimed again: " + prev + " stopped before firing it"
		}
		out = append(out, ClaimedSlot{Schedule: *sc, Plan: SlotPlan{Slot: l, Next: sc.NextAt}, Reclaimed: true})
	}
	return out, nil
}

// RecentRuns returns a project's runs created since, newest first.
func (db *DB) RecentRuns(ctx context.Context, projectID int64, since time.Time) ([]Execution, error) {
	var out []Execution
	err := db.bun.NewSelect().Model(&out).Column("id", "status", "task", "requester", "cost_usd", "cost_known", "created_at", "finished_at").
		Where("project_id = ? AND created_at >= ?", projectID, since.UTC()).OrderExpr("created_at DESC").Scan(ctx)
	return out, wrap(err, "recent runs of project %d", projectID)
}

// CardsEnteredColumn returns, for each card of a board, when it last
// entered its current column: its latest history event that moved it
// there, or its creation.
func (db *DB) CardsEnteredColumn(ctx context.Context, boardID int64) (map[string]time.Time, error) {
	var rows []struct {
		CardID string    `bun:"card_id"`
		At     time.Time `bun:"at"`
	}
	err := db.bun.NewSelect().TableExpr("kanban_card_history AS h").ColumnExpr("h.card_id, MAX(h.at) AS at").
		Join("JOIN kanban_cards AS c ON c.id = h.card_id").
		Where("c.board_id = ? AND h.action IN (?)", boardID, bun.In([]string{CardCreated, CardMoved})).
		GroupExpr("h.card_id").Scan(ctx, &rows)
	if err != nil {
		return nil, wrap(err, "when cards entered their columns on board %d", boardID)
	}
	out := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		out[r.CardID] = r.At.UTC()
	}
	return out, nil
}
