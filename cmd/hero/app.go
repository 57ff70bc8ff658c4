package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/tools"
	"github.com/hero-dev/hero/llm/openai"
	"github.com/hero-dev/hero/redact"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
	"github.com/hero-dev/hero/sandbox/e2b"
	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/vault"
	ghsurface "github.com/hero-dev/hero/webhooks/github"
)

// app is the wired core shared by every subcommand: logger, database,
// keyring. The agent parts are added by withAgent.
type app struct {
	cfg config
	// getenv reads the integrations' own variables (SLACK_*, GITHUB_*, …).
	getenv func(string) string
	log    *slog.Logger
	// redactor knows hero's own credentials (configured keys, tokens
	// minted since start): every run and every log line is scrubbed of
	// them, labelled only "[REDACTED]".
	redactor *redact.Redactor
	// logSecrets knows every project's secrets, for log lines only,
	// without names. A run never uses it: a run seeing another project's
	// value scrubbed would confirm a guess of it.
	logSecrets *redact.Redactor
	keyring    *vault.Keyring
	db         *store.DB

	// github is hero's GitHub account as the environment configures it,
	// and publisher publishes runs' work with it (both nil without GitHub
	// credentials). withAgent makes them before the workspaces and the
	// engine, which take the publisher's hooks; the GitHub surface takes
	// the publisher.
	github    *githubAccount
	publisher *ghsurface.Publisher

	manager *sandbox.Manager
	// sandboxErr is why the sandbox did not work at start (nil when it
	// did); the manager's Health says whether it works now.
	sandboxErr error
	mirrors    *mirror.Mirrors
	// e2b is the E2B provider when HERO_SANDBOX=e2b (its orphan killer
	// runs in hero serve).
	e2b    *e2b.Provider
	engine *engine.Engine
	ws     *workspaces
}

// openApp opens the data directory, the keyring and the database, and
// applies migrations.
func openApp(ctx context.Context, cfg config, std stdio) (*app, error) {
	if cfg.getenv == nil {
		cfg.getenv = func(string) string { return "" }
	}
	r := redact.New()
	r.Add(cfg.OpenAIKey, cfg.GitHubToken, cfg.E2BAPIKey, cfg.SecretsKey)
	logSecrets := redact.New()
	log := slog.New(redact.Handler(redact.Handler(slog.NewTextHandler(std.err, &slog.HandlerOptions{Level: slog.LevelInfo}), logSecrets), r))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s (HERO_DATA_DIR): %w", cfg.DataDir, err)
	}
	kr, err := vault.LoadOrCreate(cfg.DataDir, cfg.SecretsKey, cfg.SecretsSalt, log)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir, log, store.WithKeyring(kr))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return &app{cfg: cfg, getenv: cfg.getenv, log: log, redactor: r, logSecrets: logSecrets, keyring: kr, db: db}, nil
}

func (a *app) close() {
	if a.manager != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := a.manager.Close(ctx); err != nil {
			a.log.Warn("close sandboxes", "err", err)
		}
		cancel()
	}
	if err := a.db.Close(); err != nil {
		a.log.Warn("close database", "err", err)
	}
}

// agentConfig says what the process that drives runs is.
type agentConfig struct {
	// owner names this process in leases.
	owner string
	// poolSize pre-warms sandboxes (0 for `hero run`).
	poolSize int
	// observe sees every event of every run (metrics); nil: none.
	observe func(*store.Execution, engine.Event)
	// operator: every run this process drives is the local operator's
	// own, started at this machine's terminal (`hero run`), so a
	// project's repository may be any directory on this machine but
	// hero's data directory. Otherwise (`hero serve`: chat, GitHub,
	// schedules) only directories under HERO_LOCAL_REPO_ROOT.
	operator bool
	// deliver, when set, hands a run's changes back before its sandbox
	// is released (`hero run` on a local checkout).
	deliver func(ctx context.Context, ex *store.Execution, sb sandbox.Sandbox, base string) error
}

// withAgent adds the sandbox manager, hero's GitHub publisher, the
// workspaces and the engine.
func (a *app) withAgent(ac agentConfig) error {
	openLocal := func() (sandbox.Provider, error) {
		return bwrap.New(filepath.Join(a.cfg.DataDir, "sandboxes"), a.log.With("component", "sandbox"))
	}
	if a.cfg.Sandbox == "e2b" {
		return a.withE2B(ac)
	}
	prov, err := openLocal()
	if errors.Is(err, sandbox.ErrUnavailable) {
		// Start anyway: the settings page and chat work, and runs say what
		// to install. No pool to pre-warm until the sandbox works.
		a.sandboxErr = fmt.Errorf("local sandbox: %w", err)
		prov, ac.poolSize = newPendingProvider("local", openLocal, err), 0
	} else if err != nil {
		return fmt.Errorf("local sandbox: %w", err)
	}
	return a.withProvider(prov, ac, nil)
}

// withE2B is withAgent on E2B (HERO_SANDBOX=e2b).
func (a *app) withE2B(ac agentConfig) error {
	prov, err := e2b.New(e2b.Config{
		APIKey: a.cfg.E2BAPIKey, APIURL: a.cfg.E2BAPIURL, Domain: a.cfg.E2BDomain, SandboxURL: a.cfg.E2BSandboxURL,
		Install: a.cfg.installID(), Log: a.log.With("component", "sandbox"),
	})
	if err != nil {
		return fmt.Errorf("e2b sandbox: %w", err)
	}
	a.e2b = prov
	return a.withProvider(prov, ac, prov.API().DeleteSnapshot)
}

// secretVersion is the version of a project's secrets: their names and
// update times, hashed (never their values).
func (a *app) secretVersion(ctx context.Context, projectID int64) (string, error) {
	list, err := a.db.ListSecrets(ctx, projectID)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, s := range list {
		fmt.Fprintf(h, "%s\x00%d\x00", s.Name, s.UpdatedAt.UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// withProvider builds, on prov and in this order, the manager and the
// mirrors, the GitHub publisher, the workspaces (cloning with the
// publisher's credential, on its work branches) and the engine
// (publishing through it); deleteSnapshot, when set (E2B), turns on warm
// starts from snapshots.
func (a *app) withProvider(prov sandbox.Provider, ac agentConfig, deleteSnapshot func(context.Context, string) error) error {
	var err error
	a.manager, err = sandbox.NewManager(prov, leaseStore{a.db}, sandbox.ManagerConfig{Owner: ac.owner, PoolSize: ac.poolSize}, a.log.With("component", "sandbox"))
	if err != nil {
		return fmt.Errorf("sandbox manager: %w", err)
	}
	var model engine.Model = unconfiguredModel{}
	if a.cfg.OpenAIKey != "" {
		if model, err = openai.New(openai.Config{APIKey: a.cfg.OpenAIKey, BaseURL: a.cfg.OpenAIBaseURL, Model: a.cfg.Model}, a.log.With("component", "model")); err != nil {
			return fmt.Errorf("model client: %w", err)
		}
	}
	// Without git the server still starts; runs on repositories say why.
	mirrors, mirrorsErr := a.openMirrors()
	if mirrorsErr != nil {
		a.log.Warn("repository mirrors unavailable", "err", mirrorsErr)
	}
	a.mirrors = mirrors
	// With GitHub credentials, runs publish to GitHub (git_push,
	// create_pull_request) from any surface, the mirror clones with
	// them, and runs started from GitHub work on their issue's branch.
	ws := workspacesConfig{
		manager: a.manager, mirrors: mirrors, mirrorsErr: mirrorsErr, log: a.log,
		local: a.cfg.localRepos(), operator: ac.operator, deliver: ac.deliver,
		// E2B turns internet on or off for a whole sandbox only.
		wholeSandboxNetwork: prov.Name() == "e2b",
		secretVersion:       a.secretVersion,
		snapshots:           deleteSnapshot,
		branchFor:           defaultWorkBranch,
	}
	var forge engine.ForgeFunc
	if a.github, err = openGitHub(a); err != nil {
		return err
	}
	if a.github != nil {
		a.publisher, err = ghsurface.NewPublisher(ghsurface.PublisherConfig{APIURL: a.github.apiURL, Credentials: a.github.creds, Mirrors: mirrors})
		if err != nil {
			return fmt.Errorf("github: %w", err)
		}
		ws.credential, ws.branchFor, forge = a.publisher.CloneCredential, a.publisher.WorkBranch, a.publisher.Forge
	}
	a.ws = newWorkspaces(ws)
	a.engine, err = engine.New(engine.Config{
		Store:      a.db,
		Workspaces: a.ws,
		Model:      model,
		ModelName:  a.cfg.Model,
		Tools:      tools.All(),
		Owner:      ac.owner,
		LeaseTTL:   a.cfg.RunLease,
		Log:        a.log.With("component", "engine"),
		Observe:    ac.observe,
		Forge:      forge,
		Redact:     a.runScrubber,
	})
	return err
}

// openMirrors opens the per-project mirrors and caches under
// HERO_DATA_DIR/mirrors with the configured budgets.
func (a *app) openMirrors() (*mirror.Mirrors, error) {
	opts := []mirror.Option{mirror.WithBudget(a.cfg.CacheProjectBytes, a.cfg.CacheTotalBytes), mirror.WithFreshness(a.cfg.MirrorFresh)}
	if a.cfg.Sandbox == "e2b" {
		// A removed project's snapshots go at E2B too.
		api, err := e2b.NewClient(a.cfg.E2BAPIURL, a.cfg.E2BDomain, a.cfg.E2BAPIKey, nil)
		if err != nil {
			return nil, err
		}
		opts = append(opts, mirror.WithSnapshotDeleter(api.DeleteSnapshot))
	}
	return mirror.New(filepath.Join(a.cfg.DataDir, "mirrors"), a.log.With("component", "mirror"), opts...)
}

// sweepMirrors removes what this host keeps for projects that no longer
// exist (deleted on the settings page, or by `hero project rm` against
// another replica's database).
func (a *app) sweepMirrors(ctx context.Context) {
	if a.mirrors == nil {
		return
	}
	ps, err := a.db.ListProjects(ctx)
	if err != nil {
		a.log.Warn("sweep mirrors: list projects", "err", err)
		return
	}
	ids := make([]int64, len(ps))
	for i := range ps {
		ids[i] = ps[i].ID
	}
	if _, err := a.mirrors.Retain(ctx, ids); err != nil {
		a.log.Warn("sweep mirrors", "err", err)
	}
}

// e2bOrphanLease is the singleton lease of E2B's orphan killer.
const e2bOrphanLease = "e2b-orphans"

// killE2BOrphans kills this installation's E2B sandboxes that no lease
// record holds; hero serve runs it on the one replica holding the
// e2bOrphanLease singleton. A sandbox younger than minAge is spared: its
// record may not be written yet.
func (a *app) killE2BOrphans(ctx context.Context, minAge time.Duration) int {
	// Sandboxes of dead replicas first: kept while their run is live.
	if n, err := a.manager.ReclaimDetached(ctx, a.runLive); err != nil {
		a.log.Warn("e2b orphans: sandboxes of gone replicas", "err", err)
	} else if n > 0 {
		a.log.Info("killed the E2B sandboxes of gone replicas' finished runs", "count", n)
	}
	leases, err := a.db.ListLeases(ctx)
	if err != nil {
		a.log.Warn("e2b orphans: list leases", "err", err)
		return 0
	}
	held := map[string]bool{}
	for _, l := range leases {
		held[l.SandboxID] = true
	}
	n, err := a.e2b.KillOrphans(ctx, func(id string) bool { return held[id] }, minAge)
	if err != nil {
		a.log.Warn("e2b orphans", "err", err)
	}
	if n > 0 {
		a.log.Info("killed orphaned E2B sandboxes", "count", n)
	}
	return n
}

// runLive says whether run id is not over (a paused sandbox of a gone
// replica is kept for it).
func (a *app) runLive(ctx context.Context, id string) (bool, error) {
	ex, err := a.db.Execution(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !finished(ex.Status), nil
}

// runScrubber returns the scrubber of one run: its project's secrets,
// named, and hero's own credentials. The project's values also go to the
// log scrubber, unnamed, so log lines never show them either.
func (a *app) runScrubber(secrets map[string]string) func(string) string {
	values := make([]string, 0, len(secrets))
	for _, v := range secrets {
		values = append(values, v)
	}
	a.logSecrets.Add(values...)
	r := redact.New()
	r.AddMap(secrets)
	return func(s string) string { return a.redactor.String(r.String(s)) }
}

// localRepos is the local repository path policy of this configuration.
func (c config) localRepos() sandbox.LocalRepos {
	return sandbox.LocalRepos{Root: c.LocalRepoRoot, DataDir: c.DataDir}
}

// unconfiguredModel stands in when OPENAI_API_KEY is not set, so the
// server starts and every run says exactly what to configure.
type unconfiguredModel struct{}

func (unconfiguredModel) Complete(context.Context, engine.ModelRequest) (engine.ModelResponse, error) {
	return engine.ModelResponse{}, fmt.Errorf("no model is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible server, HERO_MODEL for the model): %w", engine.ErrModelFatal)
}

// leaseStore adapts the store's sandbox_leases table to sandbox.LeaseStore.
type leaseStore struct{ db *store.DB }

func (l leaseStore) Put(ctx context.Context, rec sandbox.LeaseRecord) error {
	pid, _ := strconv.ParseInt(rec.Labels["project"], 10, 64)
	state := "leased"
	if rec.Labels[sandbox.PoolLabel] == "true" {
		state = "pooled"
	}
	var beat *time.Time
	if !rec.Heartbeat.IsZero() {
		beat = &rec.Heartbeat
	}
	return l.db.PutLease(ctx, &store.SandboxLease{
		SandboxID: rec.ID, Provider: rec.Provider, Template: rec.Template, ProjectID: pid,
		ExecutionID: rec.Labels["execution"], Owner: rec.Owner, State: state,
		CreatedAt: rec.CreatedAt, LastUsedAt: rec.LastUsed,
		Host: rec.Host, Process: rec.Process, HeartbeatAt: beat,
	})
}

func (l leaseStore) Touch(ctx context.Context, id string, at time.Time) error {
	return l.db.TouchLease(ctx, id, at)
}

func (l leaseStore) Delete(ctx context.Context, id string) error { return l.db.DeleteLease(ctx, id) }

func (l leaseStore) Heartbeat(ctx context.Context, owner string, at time.Time) error {
	return l.db.HeartbeatLeases(ctx, owner, at)
}

func (l leaseStore) List(ctx context.Context, owner string) ([]sandbox.LeaseRecord, error) {
	all, err := l.ListAll(ctx)
	if err != nil {
		return nil, err
	}
	var out []sandbox.LeaseRecord
	for _, r := range all {
		if r.Owner == owner {
			out = append(out, r)
		}
	}
	return out, nil
}

func (l leaseStore) ListAll(ctx context.Context) ([]sandbox.LeaseRecord, error) {
	all, err := l.db.ListLeases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]sandbox.LeaseRecord, 0, len(all))
	for _, s := range all {
		labels := map[string]string{"project": strconv.FormatInt(s.ProjectID, 10), "execution": s.ExecutionID}
		if s.State == "pooled" {
			labels[sandbox.PoolLabel] = "true"
		}
		rec := sandbox.LeaseRecord{ID: s.SandboxID, Owner: s.Owner, Provider: s.Provider, Template: s.Template, Labels: labels,
			CreatedAt: s.CreatedAt, LastUsed: s.LastUsedAt, Host: s.Host, Process: s.Process}
		if s.HeartbeatAt != nil {
			rec.Heartbeat = *s.HeartbeatAt
		}
		out = append(out, rec)
	}
	return out, nil
}

// errNoProject is returned when a run names a project that does not exist.
var errNoProject = errors.New("no such project")
