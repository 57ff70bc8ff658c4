package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox/mirror"
)

// config is everything hero reads from the environment (see the table in
// README.md). Nothing here is required to start: the defaults give SQLite
// and a local sandbox under HERO_DATA_DIR.
type config struct {
	Addr        string
	DataDir     string
	DatabaseURL string

	SecretsKey  string
	SecretsSalt string

	OpenAIKey     string
	OpenAIBaseURL string
	Model         string

	Sandbox   string // "local" or "e2b"
	PoolSize  int
	E2BAPIKey string
	E2BAPIURL string
	E2BDomain string
	// E2BSandboxURL is E2B_SANDBOX_URL: where envd is reached for every
	// sandbox (a fake, a proxy); "" for E2B's per-sandbox hosts.
	E2BSandboxURL string
	// InstallID names this installation in E2B sandbox metadata
	// (HERO_INSTALL_ID; derived from the database when unset).
	InstallID   string
	GitHubToken string
	// LocalRepoRoot is HERO_LOCAL_REPO_ROOT: the only directory under
	// which projects used from chat, GitHub or the page may have a local
	// repository path.
	LocalRepoRoot string
	// Mirror and cache budgets (HERO_CACHE_PROJECT_MB, HERO_CACHE_TOTAL_MB)
	// and how long a fetched mirror is used without asking the remote
	// again (HERO_MIRROR_FRESH).
	CacheProjectBytes, CacheTotalBytes int64
	MirrorFresh                        time.Duration
	// RunLease (HERO_RUN_LEASE) is how long a replica owns a run without
	// renewing it; TakeoverEvery (HERO_TAKEOVER_INTERVAL) is how often a
	// replica looks for runs whose lease lapsed. A dead replica's run
	// resumes elsewhere within their sum.
	RunLease, TakeoverEvery time.Duration
	// ScheduleMinInterval (HERO_SCHEDULE_MIN_INTERVAL) is the shortest
	// period a schedule may fire at; ScheduleTick
	// (HERO_SCHEDULE_TICK) how often hero serve looks for due slots.
	ScheduleMinInterval, ScheduleTick time.Duration
	// E2BReapEvery (HERO_E2B_REAP_INTERVAL) is how often the replica
	// holding the E2B orphan killer's lease (3 periods) looks for
	// orphans; E2BOrphanAge (HERO_E2B_ORPHAN_AGE) how old an unrecorded
	// sandbox must be to count as one.
	E2BReapEvery, E2BOrphanAge time.Duration

	getenv func(string) string // for the integrations' own variables
}

// loadConfig reads cfg from getenv; invalid values are errors naming the
// variable.
func loadConfig(getenv func(string) string) (config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := config{
		Addr:          get("HERO_ADDR", "127.0.0.1:8080"),
		DataDir:       get("HERO_DATA_DIR", "./data"),
		DatabaseURL:   get("DATABASE_URL", ""),
		SecretsKey:    get("SECRETS_ENCRYPTION_KEY", ""),
		SecretsSalt:   get("SECRETS_KDF_SALT", ""),
		OpenAIKey:     get("OPENAI_API_KEY", ""),
		OpenAIBaseURL: get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
		Model:         get("HERO_MODEL", "gpt-4.1-mini"),
		Sandbox:       get("HERO_SANDBOX", "local"),
		E2BAPIKey:     get("E2B_API_KEY", ""),
		E2BAPIURL:     get("E2B_API_URL", ""),
		E2BDomain:     get("E2B_DOMAIN", "e2b.app"),
		E2BSandboxURL: get("E2B_SANDBOX_URL", ""),
		InstallID:     get("HERO_INSTALL_ID", ""),
		GitHubToken:   get("GITHUB_TOKEN", ""),
		LocalRepoRoot: get("HERO_LOCAL_REPO_ROOT", ""),
		getenv:        getenv,
	}
	var err error
	if c.PoolSize, err = strconv.Atoi(get("HERO_SANDBOX_POOL", "2")); err != nil || c.PoolSize < 0 {
		return c, fmt.Errorf("HERO_SANDBOX_POOL must be a whole number ≥ 0, got %q", getenv("HERO_SANDBOX_POOL"))
	}
	for _, b := range []struct {
		name string
		def  int64
		dst  *int64
	}{{"HERO_CACHE_PROJECT_MB", mirror.DefaultProjectBudget >> 20, &c.CacheProjectBytes}, {"HERO_CACHE_TOTAL_MB", mirror.DefaultTotalBudget >> 20, &c.CacheTotalBytes}} {
		mb, err := strconv.ParseInt(get(b.name, strconv.FormatInt(b.def, 10)), 10, 64)
		if err != nil || mb <= 0 || mb > 1<<30 {
			return c, fmt.Errorf("%s must be a positive number of megabytes, got %q", b.name, getenv(b.name))
		}
		*b.dst = mb << 20
	}
	if c.MirrorFresh, err = time.ParseDuration(get("HERO_MIRROR_FRESH", mirror.DefaultFreshness.String())); err != nil || c.MirrorFresh < 0 {
		return c, fmt.Errorf("HERO_MIRROR_FRESH must be a duration such as 15s or 0, got %q", getenv("HERO_MIRROR_FRESH"))
	}
	for _, d := range []struct {
		name string
		def  time.Duration
		dst  *time.Duration
	}{{"HERO_RUN_LEASE", engine.DefaultLeaseTTL, &c.RunLease}, {"HERO_TAKEOVER_INTERVAL", 10 * time.Second, &c.TakeoverEvery}} {
		if *d.dst, err = time.ParseDuration(get(d.name, d.def.String())); err != nil || *d.dst < time.Second {
			return c, fmt.Errorf("%s must be a duration of at least 1s such as 30s, got %q", d.name, getenv(d.name))
		}
	}
	if c.ScheduleMinInterval, err = time.ParseDuration(get("HERO_SCHEDULE_MIN_INTERVAL", "15m")); err != nil || c.ScheduleMinInterval < time.Minute {
		return c, fmt.Errorf("HERO_SCHEDULE_MIN_INTERVAL must be a duration of at least 1m such as 15m, got %q", getenv("HERO_SCHEDULE_MIN_INTERVAL"))
	}
	if c.ScheduleTick, err = time.ParseDuration(get("HERO_SCHEDULE_TICK", "20s")); err != nil || c.ScheduleTick < 100*time.Millisecond || c.ScheduleTick > time.Minute {
		return c, fmt.Errorf("HERO_SCHEDULE_TICK must be a duration between 100ms and 1m such as 20s, got %q", getenv("HERO_SCHEDULE_TICK"))
	}
	if c.E2BReapEvery, err = time.ParseDuration(get("HERO_E2B_REAP_INTERVAL", "1m")); err != nil || c.E2BReapEvery < time.Second {
		return c, fmt.Errorf("HERO_E2B_REAP_INTERVAL must be a duration of at least 1s such as 1m, got %q", getenv("HERO_E2B_REAP_INTERVAL"))
	}
	// Below a second a sandbox being created (no lease record yet) could
	// be taken for an orphan.
	if c.E2BOrphanAge, err = time.ParseDuration(get("HERO_E2B_ORPHAN_AGE", "10m")); err != nil || c.E2BOrphanAge < time.Second {
		return c, fmt.Errorf("HERO_E2B_ORPHAN_AGE must be a duration of at least 1s such as 10m, got %q", getenv("HERO_E2B_ORPHAN_AGE"))
	}
	switch c.Sandbox {
	case "local":
	case "e2b":
		if c.E2BAPIKey == "" {
			return c, fmt.Errorf("HERO_SANDBOX=e2b needs E2B_API_KEY (from https://e2b.dev/dashboard)")
		}
	default:
		return c, fmt.Errorf("HERO_SANDBOX must be local or e2b, got %q", c.Sandbox)
	}
	return c, nil
}

// installID names this installation in E2B's metadata, so that the orphan
// killer finds only its own sandboxes: HERO_INSTALL_ID, or a hash of the
// database every replica shares (its URL without the password, or the
// SQLite file).
func (c config) installID() string {
	if c.InstallID != "" {
		return c.InstallID
	}
	ident := c.DatabaseURL
	if u, err := url.Parse(ident); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		ident = u.String()
	}
	if ident == "" {
		abs, _ := filepath.Abs(c.DataDir)
		ident = "sqlite:" + abs
	}
	sum := sha256.Sum256([]byte("hero-install\x00" + ident))
	return hex.EncodeToString(sum[:8])
}
