package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/web"
)

// metrics are hero's Prometheus series, on a registry of its own (no
// globals, so tests can start several servers).
type metrics struct {
	reg     *prometheus.Registry
	runs    *prometheus.CounterVec
	steps   *prometheus.CounterVec
	tokens  *prometheus.CounterVec
	costUSD prometheus.Counter
	asked   prometheus.Counter
	decided *prometheus.CounterVec
}

// inboxCollector reports the delivery inbox by status at scrape time, so
// parked (failed) deliveries are visible on every replica.
type inboxCollector struct {
	db   *store.DB
	desc *prometheus.Desc
}

func (c inboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c inboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.db.DeliveryCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, status := range []string{store.DeliveryPending, store.DeliveryDone, store.DeliveryFailed} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[status]), status)
	}
}

// newMetrics makes the counters the engine's Observe hook feeds (so the
// metrics exist before the engine) and the inbox's gauges; watchAgent adds
// what is read from the engine and the sandboxes once they exist.
func newMetrics(db *store.DB) *metrics {
	m := &metrics{
		reg:     prometheus.NewRegistry(),
		runs:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hero_runs_finished_total", Help: "Runs that ended, by status."}, []string{"status"}),
		steps:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hero_steps_total", Help: "Steps recorded, by kind."}, []string{"kind"}),
		tokens:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hero_model_tokens_total", Help: "Model tokens, by direction."}, []string{"direction"}),
		costUSD: prometheus.NewCounter(prometheus.CounterOpts{Name: "hero_model_cost_usd_total", Help: "Model cost in USD for models with a known price."}),
		asked:   prometheus.NewCounter(prometheus.CounterOpts{Name: "hero_confirmations_asked_total", Help: "Confirmations shown to people."}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hero_confirmations_decided_total", Help: "Confirmations decided, by outcome."}, []string{"status"}),
	}
	m.reg.MustRegister(m.runs, m.steps, m.tokens, m.costUSD, m.asked, m.decided,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		inboxCollector{db: db, desc: prometheus.NewDesc("hero_inbox_deliveries", "Platform deliveries in the inbox, by status (failed = parked after its last attempt).", []string{"status"}, nil)},
	)
	return m
}

// watchAgent adds the gauges read at scrape time from the engine (runs
// driven here), the sandboxes (health) and, when there are any, the
// mirrors and caches.
func (m *metrics) watchAgent(running func() float64, sandboxHealth func(context.Context) error, mirrors *mirror.Mirrors) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hero_runs_active", Help: "Runs this replica is driving."}, running),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hero_sandbox_available", Help: "1 when runs can get a sandbox on this replica, 0 when not (see /readyz for why)."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if sandboxHealth(ctx) != nil {
				return 0
			}
			return 1
		}),
	)
	if mirrors != nil {
		m.reg.MustRegister(cacheCollector{mirrors})
	}
}

// observe is the engine's Observe hook.
func (m *metrics) observe(_ *store.Execution, ev engine.Event) {
	switch ev.Kind {
	case engine.EventStep:
		m.steps.WithLabelValues(ev.Step.Kind).Inc()
		if ev.Step.Kind == store.StepModel {
			m.tokens.WithLabelValues("in").Add(float64(ev.Step.TokensIn))
			m.tokens.WithLabelValues("out").Add(float64(ev.Step.TokensOut))
			m.costUSD.Add(ev.Step.CostUSD)
		}
	case engine.EventAsked:
		m.asked.Inc()
	case engine.EventDecided:
		m.decided.WithLabelValues(ev.Confirmation.Status).Inc()
	case engine.EventFinished:
		m.runs.WithLabelValues(ev.Outcome.Status).Inc()
	}
}

// cacheCollector reports the mirrors' and caches' hits, misses and
// sizes at scrape time.
type cacheCollector struct{ m *mirror.Mirrors }

var (
	cacheHitsDesc   = prometheus.NewDesc("hero_cache_hits_total", "Runs served from this host's cache, by kind (mirror: no fetch needed; checkout: a prepared checkout reused; deps: an install restored; snapshot: an E2B sandbox started from a snapshot).", []string{"kind"}, nil)
	cacheMissesDesc = prometheus.NewDesc("hero_cache_misses_total", "Runs that had to fetch, prepare a checkout or install, by kind.", []string{"kind"}, nil)
	cacheBytesDesc  = prometheus.NewDesc("hero_cache_bytes", "Disk space of mirrors, prepared checkouts and dependency caches on this host, by kind.", []string{"kind"}, nil)
	cacheEvictDesc  = prometheus.NewDesc("hero_cache_evictions_total", "Cache entries removed to stay within HERO_CACHE_PROJECT_MB and HERO_CACHE_TOTAL_MB.", nil, nil)
)

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheHitsDesc
	ch <- cacheMissesDesc
	ch <- cacheBytesDesc
	ch <- cacheEvictDesc
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Stats()
	for _, k := range []string{mirror.KindMirror, mirror.KindCheckout, mirror.KindDeps, mirror.KindSnapshot} {
		ch <- prometheus.MustNewConstMetric(cacheHitsDesc, prometheus.CounterValue, float64(st.Hits[k]), k)
		ch <- prometheus.MustNewConstMetric(cacheMissesDesc, prometheus.CounterValue, float64(st.Misses[k]), k)
		ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, float64(st.Bytes[k]), k)
	}
	ch <- prometheus.MustNewConstMetric(cacheEvictDesc, prometheus.CounterValue, float64(st.Evictions))
}

// server is `hero serve`'s HTTP side.
type server struct {
	log     *slog.Logger
	db      *store.DB
	engine  *engine.Engine
	metrics *metrics
	// ready fails when the server cannot serve at all (the database).
	ready func(ctx context.Context) error
	// sandboxHealth fails when runs cannot get a sandbox; the server still
	// serves the settings page and chat, so /readyz reports it with 200.
	sandboxHealth func(ctx context.Context) error
	// sandboxFix says what to change when sandboxHealth fails (nil: the
	// error says it).
	sandboxFix func(error) string
	// mounts add the routes of the configured integrations (GitHub,
	// Slack, Discord, the settings page).
	mounts []func(mux *http.ServeMux)
	// site is the settings page, made by setupWeb before the chat
	// surfaces that need its sessions (Add to Slack).
	site *web.Server
	// projections show the board on the integrations that have it (the
	// GitHub surface adds its issues); board is the kanban service made
	// from them by setupBoard, for the settings page and chat.
	projections []kanban.Projection
	issues      kanban.IssueReader
	board       *kanban.Service
	// schedules is the scheduler (setupSchedules), for the settings page.
	schedules *schedules.Service
	// singletons runs the jobs one replica runs (GitHub redelivery).
	singletons *singletons
	// loops runs the surfaces' and workers' loops, waited for at shutdown.
	loops *loops
}

func (s *server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		if err := s.sandboxHealth(ctx); err != nil {
			fmt.Fprintf(w, "ready, without a sandbox: the settings page and chat work, runs fail until this is fixed\nsandbox: %v\n", err)
			if s.sandboxFix != nil {
				fmt.Fprintf(w, "fix: %s\n", s.sandboxFix(err))
			}
			return
		}
		fmt.Fprintln(w, "ready")
		fmt.Fprintln(w, "sandbox: ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	for _, mount := range s.mounts {
		mount(mux)
	}
	return mux
}

// listenAndServe serves until ctx ends, then stops taking requests, drains
// running work for up to grace, and returns.
func (s *server) listenAndServe(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("hero is listening", "addr", "http://"+ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: draining running work", "runs", s.engine.Running(), "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("http shutdown", "err", err)
	}
	if err := s.engine.Drain(sctx); err != nil {
		s.log.Warn("runs still going at shutdown will resume at the next start", "err", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

func serveCommand() *command {
	return &command{
		name: "serve", summary: "run the server: HTTP, chat surfaces, workers, schedules",
		detail: "Serves until SIGINT or SIGTERM, then drains running work. Everything is configured\n" +
			"through the environment (see README.md); with nothing set it uses SQLite and a local\n" +
			"sandbox under ./data and listens on 127.0.0.1:8080.",
		example: "HERO_ADDR=0.0.0.0:8080 OPENAI_API_KEY=sk-… hero serve",
		flags: func(*flag.FlagSet) action {
			return func(ctx context.Context, cfg config, pos []string, std stdio) error {
				if len(pos) != 0 {
					return usagef("serve", "hero serve takes no arguments; it is configured through the environment")
				}
				return cmdServe(ctx, cfg, std)
			}
		},
	}
}

// setupBoard makes the kanban board of hero serve: moving a card into a
// doing column starts a run (driven until workCtx ends), which reports to
// every place the card lives through the engine's surfaces. setupGitHub
// calls it early, once its projection exists; later calls do nothing.
func setupBoard(workCtx context.Context, a *app, s *server) error {
	if s.board != nil {
		return nil // made by setupGitHub, with GitHub's projection
	}
	b, err := kanban.New(kanban.Config{Store: a.db, Log: a.log, Runs: a.engine, RunContext: workCtx, Places: a.engine, Projections: s.projections, Issues: s.issues})
	if err != nil {
		return fmt.Errorf("board: %w", err)
	}
	a.engine.AddSurface(b)
	s.board = b
	return nil
}

// cardPoster is a chat surface showing the board: it projects card
// changes, and posts the cards it missed.
type cardPoster interface {
	kanban.Projection
	PostMissingCards(ctx context.Context, since time.Time) error
}

// projectBoard makes p one of the places the board's cards live. Cards
// added where p is out of reach (the command line) are posted at start
// and then every minute (going back a day), until workCtx ends.
func projectBoard(workCtx context.Context, a *app, s *server, p cardPoster, surface string) {
	if s.board == nil {
		return
	}
	s.board.AddProjection(p)
	s.loops.start(workCtx, surface+" card posts", func(ctx context.Context) error {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			if err := p.PostMissingCards(ctx, time.Now().Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
				a.log.Warn("post cards made elsewhere", "surface", surface, "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
}

// cmdServe is `hero serve`: the HTTP server, the engine's workers and the
// periodic jobs, until SIGINT/SIGTERM; then it drains.
func cmdServe(ctx context.Context, cfg config, std stdio) error {
	a, err := openApp(ctx, cfg, std)
	if err != nil {
		return err
	}
	defer a.close()
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%s-%d", host, os.Getpid())
	m := newMetrics(a.db)
	if err := a.withAgent(agentConfig{owner: owner, poolSize: cfg.PoolSize, observe: m.observe}); err != nil {
		return err
	}
	m.watchAgent(func() float64 { return float64(a.engine.Running()) }, a.manager.Health, a.mirrors)
	var sandboxFix func(error) string
	if cfg.Sandbox == "local" {
		sandboxFix = localSandboxAdvice
		sandboxErr := a.sandboxErr
		if sandboxErr == nil {
			// bubblewrap is there; check that it may really create a
			// sandbox here (a container's seccomp or AppArmor profile, or
			// the host's user-namespace restriction, may forbid it).
			hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			sandboxErr = a.manager.Health(hctx)
			cancel()
		}
		if sandboxErr != nil {
			a.log.Error("the sandbox does not work on this machine: the server runs (settings page, chat), but every run fails until it is fixed; hero retries without a restart",
				"err", sandboxErr, "fix", localSandboxAdvice(sandboxErr))
		}
	}
	if cfg.OpenAIKey == "" {
		a.log.Warn("OPENAI_API_KEY is not set: the server runs, but every run will fail until it is")
	}
	if n, err := a.manager.RecoverOrphans(ctx, owner); err != nil {
		a.log.Warn("recover orphaned sandboxes", "err", err)
	} else if n > 0 {
		a.log.Info("removed orphaned sandboxes", "count", n)
	}

	// The loops and the jobs one replica runs finish (leases given back,
	// queued messages sent) before the database closes: waited for within
	// the grace the deployments give (compose 30 s, the chart 35 s),
	// deferred before stopWork, so it runs after it, on every return.
	work := newLoops(a.log)
	defer work.wait(5 * time.Second)
	single := newSingletons(a.db, a.log, owner, work)
	// Work outlives the HTTP server by the drain grace period: runs get
	// workCtx, which ends only after draining.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	work.start(workCtx, "sandbox manager", a.manager.Run)
	jobs := cron.New()
	if _, err := jobs.AddFunc("@every 30s", func() { a.engine.ExpireDue(workCtx) }); err != nil {
		return fmt.Errorf("schedule confirmation expiry: %w", err)
	}
	// Runs of a process that died (this one before a restart, or another
	// replica) are taken over once their lease lapses.
	if _, err := jobs.AddFunc("@every "+cfg.TakeoverEvery.String(), func() {
		if resumed, closed, err := a.engine.Resume(workCtx); err != nil {
			a.log.Error("take over unfinished runs", "err", err)
		} else if resumed+closed > 0 {
			a.log.Info("took over unfinished runs", "resumed", resumed, "closed_as_interrupted", closed)
		}
	}); err != nil {
		return fmt.Errorf("schedule run takeover: %w", err)
	}
	// E2B sandboxes no lease holds (a replica died between creating one
	// and recording it) are killed by one replica, the singleton lease's
	// holder: another takes over at its next tick when it stops, or once
	// the lease (three periods) lapses when it dies.
	if a.e2b != nil {
		single.start(workCtx, e2bOrphanLease, cfg.E2BReapEvery, func(ctx context.Context) {
			a.killE2BOrphans(ctx, cfg.E2BOrphanAge)
		})
	}
	// Mirrors and caches of deleted projects leave this host.
	a.sweepMirrors(workCtx)
	if _, err := jobs.AddFunc("@every 5m", func() { a.sweepMirrors(workCtx) }); err != nil {
		return fmt.Errorf("schedule the mirror sweep: %w", err)
	}
	jobs.Start()
	defer jobs.Stop()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (HERO_ADDR): %w", cfg.Addr, err)
	}
	s := &server{log: a.log, db: a.db, engine: a.engine, metrics: m, singletons: single, loops: work, sandboxHealth: a.manager.Health, sandboxFix: sandboxFix, ready: func(ctx context.Context) error {
		if err := a.db.Bun().PingContext(ctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
		return nil
	}}
	// Each integration is off unless its variables are set; each adds its
	// routes, surface and workers here.
	for _, setup := range []func(context.Context, *app, *server) error{setupSchedules, setupGitHub, setupBoard, setupWeb, setupSlack, setupDiscord} {
		if err := setup(workCtx, a, s); err != nil {
			ln.Close()
			return err
		}
	}
	if resumed, closed, err := a.engine.Resume(workCtx); err != nil {
		a.log.Error("resume unfinished runs", "err", err)
	} else if resumed+closed > 0 {
		a.log.Info("unfinished runs from before the restart", "resumed", resumed, "closed_as_interrupted", closed)
	}
	runSchedules(workCtx, a, s)

	err = s.listenAndServe(ctx, ln, 25*time.Second)
	stopWork()
	a.engine.Wait()
	return err
}
