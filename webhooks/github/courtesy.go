package github

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Courtesy replies are the polite "hero only works for maintainers"
// answers to strangers. Anyone can ask for one, in bulk, so they are kept
// away from trusted work three ways: they are sent by one goroutine of
// their own (Run), not by the inbox worker, so a member's delivery never
// waits for them; their writes yield to every other write (the courtesy
// lane of rateLimiter); and they are limited — one per stranger per issue
// per day, and at most CourtesyPerHour in all, counted in the database so
// restarts and replicas agree. What is over a limit is dropped with a log
// line (and counted: CourtesyDropped).

// Kinds of once keys the GitHub surface claims.
const (
	onceCourtesy = "github-courtesy"
	onceReplay   = "github-replay"
)

// courtesyQueue bounds the replies waiting to be sent; more are dropped
// (the hourly cap keeps it far from full in practice).
const courtesyQueue = 1024

// courtesyReply is one reply waiting to be sent.
type courtesyReply struct {
	thread Thread
	body   string
}

// courtesy answers a stranger who asked hero for work, within the limits.
func (s *Service) courtesy(ctx context.Context, log *slog.Logger, th Thread, login, body string) error {
	now := s.cfg.Now()
	key := fmt.Sprintf("%s#%d/%s/%s", strings.ToLower(th.Repo.String()), th.Number, strings.ToLower(login), now.UTC().Format("2006-01-02"))
	if len(key) > 255 {
		key = hashKey(key)
	}
	nonce := make([]byte, 12)
	rand.Read(nonce)
	me := hex.EncodeToString(nonce)
	first, err := s.cfg.Store.ClaimOnce(ctx, onceCourtesy, key, me, now)
	if err != nil {
		return fmt.Errorf("courtesy reply to %s: %w", login, err)
	}
	if first != me {
		log.Info("courtesy reply skipped: this person was answered on this issue today", "login", login, "issue", th.String())
		return nil
	}
	n, err := s.cfg.Store.OnceRank(ctx, onceCourtesy, key, now.Add(-time.Hour))
	if err != nil {
		return fmt.Errorf("courtesy reply to %s: %w", login, err)
	}
	if n > s.cfg.CourtesyPerHour {
		s.dropCourtesy(log, "the hourly cap of courtesy replies is reached", login, th)
		return nil
	}
	select {
	case s.courtesyQ <- courtesyReply{thread: th, body: body}:
	default:
		s.dropCourtesy(log, "the courtesy queue is full", login, th)
	}
	return nil
}

func (s *Service) dropCourtesy(log *slog.Logger, why, login string, th Thread) {
	s.courtesyDropped.Add(1)
	log.Warn("courtesy reply dropped: "+why, "login", login, "issue", th.String(), "cap_per_hour", s.cfg.CourtesyPerHour)
}

// CourtesyDropped counts the courtesy replies dropped by this process (a
// Prometheus counter reads it).
func (s *Service) CourtesyDropped() uint64 { return s.courtesyDropped.Load() }

// How long once keys are kept: a courtesy key only matters on its day;
// a replay key as long as a replay is plausible (GitHub lets people
// redeliver for 3 days; a captured body can be resent any time, but
// after a month hero's answer to it has long been visible).
const (
	keepCourtesy = 48 * time.Hour
	keepReplay   = 30 * 24 * time.Hour
)

// Run sends courtesy replies and prunes old once keys (hourly) until ctx
// ends. Without it courtesy replies queue up and are dropped once the
// queue is full; trusted work does not need it.
func (s *Service) Run(ctx context.Context) error {
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	s.prune(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-prune.C:
			s.prune(ctx)
		case r := <-s.courtesyQ:
			if err := s.reply(courtesyLane(ctx), r.thread, r.body); err != nil && ctx.Err() == nil {
				s.log.Warn("courtesy reply failed", "issue", r.thread.String(), "err", err)
			}
		}
	}
}

func (s *Service) prune(ctx context.Context) {
	now := s.cfg.Now()
	for kind, keep := range map[string]time.Duration{onceCourtesy: keepCourtesy, onceReplay: keepReplay} {
		if _, err := s.cfg.Store.PruneLimits(ctx, kind, now.Add(-keep)); err != nil && ctx.Err() == nil {
			s.log.Warn("prune old once keys", "kind", kind, "err", err)
		}
	}
}

// hashKey shortens a long once key to a fixed-size digest.
func hashKey(k string) string {
	sum := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(sum[:])
}
