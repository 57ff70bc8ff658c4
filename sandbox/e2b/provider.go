package e2b

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hero-dev/hero/sandbox"
)

// Config configures the provider. Only APIKey is required.
type Config struct {
	APIKey string
	// APIURL is E2B_API_URL ("" for https://api.<Domain>).
	APIURL string
	// Domain is E2B_DOMAIN (default e2b.app).
	Domain string
	// SandboxURL is E2B_SANDBOX_URL: every sandbox's envd is reached
	// there, routed by the E2b-Sandbox-Id header (a fake, a proxy).
	SandboxURL string
	// Template is used when a Spec names none (default "base").
	Template string
	// Lifetime is each sandbox's E2B timeout, renewed while it is used
	// (default 1 h; the Manager's idle timeout ends it sooner).
	Lifetime time.Duration
	// User is who commands and files act as (default "user", E2B's
	// template user).
	User string
	// Install names this hero installation in every sandbox's metadata,
	// so that orphans are found by it (KillOrphans).
	Install string
	// HTTP carries every request (default: a client with no overall
	// timeout, since command streams last as long as the command).
	HTTP *http.Client
	Log  *slog.Logger
}

// Provider creates E2B sandboxes. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	api    *Client
	domain string
	log    *slog.Logger
}

var _ sandbox.Provider = (*Provider)(nil)

// New checks cfg and returns the provider; it does not call E2B.
func New(cfg Config) (*Provider, error) {
	if cfg.Domain == "" {
		cfg.Domain = "e2b.app"
	}
	if cfg.Template == "" {
		cfg.Template = "base"
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = time.Hour
	}
	if cfg.User == "" {
		cfg.User = "user"
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	api, err := NewClient(cfg.APIURL, cfg.Domain, cfg.APIKey, &http.Client{Transport: cfg.HTTP.Transport, Timeout: 3 * time.Minute})
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, api: api, domain: cfg.Domain, log: cfg.Log.With("provider", "e2b")}, nil
}

// API is the control-plane client (snapshots, pause, listing).
func (p *Provider) API() *Client { return p.api }

// Name is "e2b".
func (p *Provider) Name() string { return "e2b" }

// Health checks the API key with E2B. A rejected key wraps
// sandbox.ErrUnavailable (nothing works until it is fixed); other
// failures may pass.
func (p *Provider) Health(ctx context.Context) error {
	err := p.api.Health(ctx)
	if errors.Is(err, ErrAuth) {
		return fmt.Errorf("%w: %w", sandbox.ErrUnavailable, err)
	}
	return err
}

// Destroy kills a sandbox by id; unknown ids are not an error.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	return p.api.Kill(ctx, id)
}

// MetaInstall and MetaPrefix are the metadata keys hero sets: the
// installation, and each Spec label under "hero.".
const (
	MetaInstall = "hero.install"
	MetaPrefix  = "hero."
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Create starts a sandbox from spec.Template and prepares /repo. Secrets
// (spec.Env) are not sent to E2B here: each command's environment is
// written to a 0600 file in the sandbox and loaded by hero's wrapper.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	for k, v := range spec.Env {
		if !envName.MatchString(k) || strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("create sandbox: environment variable %q is invalid", k)
		}
	}
	meta := map[string]string{}
	for k, v := range spec.Labels {
		meta[MetaPrefix+k] = v
	}
	if p.cfg.Install != "" {
		meta[MetaInstall] = p.cfg.Install
	}
	template := spec.Template
	if template == "" {
		template = p.cfg.Template
	}
	lifetime := p.cfg.Lifetime
	if spec.Timeout > 0 {
		lifetime = spec.Timeout
	}
	internet := spec.Network
	created, err := p.api.Create(ctx, NewSandbox{TemplateID: template, Timeout: seconds(lifetime), Metadata: meta, Secure: true, AllowInternetAccess: &internet})
	if err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	s := p.attach(created, spec, lifetime)
	if err := s.setup(ctx); err != nil {
		_ = p.api.Kill(context.WithoutCancel(ctx), created.SandboxID)
		return nil, fmt.Errorf("create sandbox %s: %w", created.SandboxID, err)
	}
	return s, nil
}

// Resume reaches a paused (or running) sandbox by id, for a run that
// continues after its sandbox was paused; spec is what it was made with.
func (p *Provider) Resume(ctx context.Context, id string, spec sandbox.Spec) (*Sandbox, error) {
	sb, err := p.api.Connect(ctx, id, p.cfg.Lifetime)
	if err != nil {
		return nil, fmt.Errorf("resume sandbox %s: %w", id, err)
	}
	return p.attach(sb, spec, p.cfg.Lifetime), nil
}

var _ sandbox.Reattacher = (*Provider)(nil)

// Reattach is Resume for the Manager: a run that continues after a
// restart (or on another replica) gets its sandbox back. A sandbox E2B no
// longer has wraps sandbox.ErrClosed.
func (p *Provider) Reattach(ctx context.Context, id string, spec sandbox.Spec) (sandbox.Sandbox, error) {
	sb, err := p.Resume(ctx, id, spec)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", sandbox.ErrClosed, err)
	}
	if err != nil {
		return nil, err
	}
	return sb, nil
}

func (p *Provider) attach(sb *SandboxInfo, spec sandbox.Spec, lifetime time.Duration) *Sandbox {
	base := p.cfg.SandboxURL
	if base == "" {
		domain := p.domain
		if sb.Domain != nil && *sb.Domain != "" {
			domain = *sb.Domain
		}
		base = "https://" + envdPort + "-" + sb.SandboxID + "." + domain
	}
	s := &Sandbox{
		p: p, id: sb.SandboxID, spec: spec, lifetime: lifetime, renewed: time.Now(),
		envd: &envd{base: strings.TrimRight(base, "/"), id: sb.SandboxID, token: &tokenBox{v: sb.EnvdAccessToken}, user: p.cfg.User, http: p.cfg.HTTP},
		envs: map[string]bool{},
	}
	_, _ = rand.Read(s.envKey[:])
	return s
}

// KillOrphans kills this installation's sandboxes that no lease holds
// (held says which ids are) and that started at least minAge ago (a
// sandbox being created has no lease record yet). Run it on one replica
// only (the singleton lease): every replica sees every sandbox of the
// team.
func (p *Provider) KillOrphans(ctx context.Context, held func(id string) bool, minAge time.Duration) (int, error) {
	if p.cfg.Install == "" {
		return 0, errors.New("e2b: orphans: no installation id configured")
	}
	list, err := p.api.List(ctx, map[string]string{MetaInstall: p.cfg.Install})
	if err != nil {
		return 0, fmt.Errorf("find orphaned sandboxes: %w", err)
	}
	n := 0
	var errs []error
	for _, sb := range list {
		if sb.Metadata[MetaInstall] != p.cfg.Install || held(sb.SandboxID) || time.Since(sb.StartedAt) < minAge {
			continue
		}
		if err := p.api.Kill(ctx, sb.SandboxID); err != nil {
			errs = append(errs, err)
			continue
		}
		p.log.Info("orphaned sandbox killed", "sandbox", sb.SandboxID, "labels", sb.Metadata)
		n++
	}
	return n, errors.Join(errs...)
}

// Sandbox is one E2B sandbox. It implements sandbox.Sandbox.
type Sandbox struct {
	p        *Provider
	id       string
	spec     sandbox.Spec
	envd     *envd
	lifetime time.Duration

	// envKey names environment files (an HMAC of their content): the
	// name travels in process-start requests, which E2B logs, so it must
	// not be a plain hash of the secrets.
	envKey [32]byte

	mu      sync.Mutex
	closed  bool
	envs    map[string]bool // environment files already written
	renewed time.Time
}

var (
	_ sandbox.Sandbox  = (*Sandbox)(nil)
	_ sandbox.Pausable = (*Sandbox)(nil)
	_ sandbox.Uploader = (*Sandbox)(nil)
)

// ID is E2B's sandbox id.
func (s *Sandbox) ID() string { return s.id }

func (s *Sandbox) check(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: sandbox %s: %w", op, s.id, sandbox.ErrClosed)
	}
	return nil
}

// gone turns "the sandbox is not there" into ErrClosed for callers.
func (s *Sandbox) gone(err error) error {
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %w", sandbox.ErrClosed, err)
	}
	return err
}

// setup makes /repo (owned by the command user) and the private
// directory for environment files. Paths are relative to the working
// directory given to envd, so the commands name no absolute path.
func (s *Sandbox) setup(ctx context.Context) error {
	for _, step := range []struct {
		user, cwd, script string
	}{
		{"root", "/", `mkdir -p repo && { chown "$1" repo 2>/dev/null || true; }`},
		{"", "", `mkdir -p "$HOME/.hero" && chmod 700 "$HOME/.hero"`},
	} {
		var out bytes.Buffer
		code, err := s.start(ctx, step.user, []string{"/bin/sh", "-c", step.script, "sh", s.envd.user}, step.cwd, nil, &out, &out, time.Minute)
		if err != nil {
			return fmt.Errorf("prepare the workspace: %w", err)
		}
		if code != 0 {
			return fmt.Errorf("prepare the workspace: exit %d: %s", code, strings.TrimSpace(out.String()))
		}
	}
	return nil
}

func abs(rel string) string { return path.Join(sandbox.WorkspaceRoot, rel) }

// wrapper is the start of every command: it loads the command's
// environment from its 0600 file (never part of the start request), then
// runs the command as the leader of a new session whose id it notes, so
// that a kill reaches every process the command started.
const wrapper = `if [ -n "$1" ]; then set -a; . "$HOME/.hero/$1" || exit 126; set +a; fi
s="$HOME/.hero/$2"; shift 2
exec setsid -w /bin/sh -c 'echo $$ > "$0"; exec "$@"' "$s" "$@"`

// killScript kills the session noted by the wrapper.
const killScript = `f="$HOME/.hero/$1"; [ -s "$f" ] || exit 0; sid=$(cat "$f"); pkill -KILL -s "$sid" 2>/dev/null || kill -KILL -- "-$sid" 2>/dev/null; rm -f "$f"`

// envFile writes env to a 0600 file in the sandbox (once per distinct
// environment) and returns its name.
func (s *Sandbox) envFile(ctx context.Context, env map[string]string) (string, error) {
	if len(env) == 0 {
		return "", nil
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		if !envName.MatchString(k) || strings.IndexByte(env[k], 0) >= 0 {
			return "", fmt.Errorf("environment variable %q is invalid", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "='" + strings.ReplaceAll(env[k], "'", `'\''`) + "'\n")
	}
	mac := hmac.New(sha256.New, s.envKey[:])
	mac.Write([]byte(b.String()))
	name := "env-" + hex.EncodeToString(mac.Sum(nil)[:12])
	s.mu.Lock()
	done := s.envs[name]
	s.mu.Unlock()
	if done {
		return name, nil
	}
	// Relative paths are under the user's home; .hero is 0700.
	if err := s.envd.upload(ctx, ".hero/"+name, []byte(b.String())); err != nil {
		return "", fmt.Errorf("write the command's environment: %w", err)
	}
	s.mu.Lock()
	s.envs[name] = true
	s.mu.Unlock()
	return name, nil
}

// Exec runs cmd in the sandbox, streaming its output.
func (s *Sandbox) Exec(ctx context.Context, c sandbox.Cmd) (sandbox.Result, error) {
	if len(c.Args) == 0 || c.Args[0] == "" {
		return sandbox.Result{}, errors.New("exec: empty command")
	}
	if err := s.check("exec"); err != nil {
		return sandbox.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return sandbox.Result{Killed: true}, fmt.Errorf("exec %s: %w", c.Args[0], err)
	}
	rel, err := sandbox.CleanRel(c.Dir)
	if err != nil {
		return sandbox.Result{}, fmt.Errorf("exec %s: dir %q: %w", c.Args[0], c.Dir, err)
	}
	env := map[string]string{}
	if !c.NoSecrets {
		maps.Copy(env, s.spec.Env)
	}
	maps.Copy(env, c.Env)
	name, err := s.envFile(ctx, env)
	if err != nil {
		return sandbox.Result{}, fmt.Errorf("exec %s: %w", c.Args[0], s.gone(err))
	}
	s.keepAlive(ctx)
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	sid := "sid-" + randomHex()
	argv := append([]string{"/bin/sh", "-c", wrapper, "hero", name, sid}, c.Args...)

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var timedOut, killed bool
	var once sync.Once
	kill := func() {
		once.Do(func() {
			kctx, kcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer kcancel()
			var sink bytes.Buffer
			_, _ = s.start(kctx, "", []string{"/bin/sh", "-c", killScript, "sh", sid}, "/", nil, &sink, &sink, 30*time.Second)
			cancel()
		})
	}
	timer := time.AfterFunc(timeout, func() { timedOut = true; kill() })
	stop := context.AfterFunc(ctx, func() { killed = true; kill() })
	start := time.Now()
	// envd's own deadline is a backstop past hero's.
	code, err := s.start(runCtx, "", argv, abs(rel), c.Stdin, c.Stdout, c.Stderr, timeout+30*time.Second)
	timer.Stop()
	stop()
	res := sandbox.Result{ExitCode: code, Duration: time.Since(start)}
	switch {
	case killed:
		res.Killed = true
		return res, fmt.Errorf("exec %s: %w", c.Args[0], ctx.Err())
	case timedOut:
		res.TimedOut = true
		return res, nil
	case err != nil:
		var re *rpcError
		if errors.As(err, &re) && re.Code == "deadline_exceeded" {
			res.TimedOut = true
			return res, nil
		}
		return res, fmt.Errorf("exec %s: %w", c.Args[0], s.gone(err))
	}
	return res, nil
}

// processEvent is envd's ProcessEvent (inside {"event": …}).
type processEvent struct {
	Event struct {
		Start *struct {
			Pid uint32 `json:"pid"`
		} `json:"start"`
		Data *struct {
			Stdout string `json:"stdout"`
			Stderr string `json:"stderr"`
		} `json:"data"`
		End *struct {
			ExitCode int    `json:"exitCode"`
			Exited   bool   `json:"exited"`
			Status   string `json:"status"`
			Error    string `json:"error"`
		} `json:"end"`
	} `json:"event"`
}

// start runs argv through process.Process/Start as user ("" for the
// configured one) and returns its exit code. stdin, when set, is sent
// with SendInput and closed at EOF.
func (s *Sandbox) start(ctx context.Context, user string, argv []string, cwd string, stdin io.Reader, stdout, stderr io.Writer, timeout time.Duration) (int, error) {
	e := s.envd
	if user != "" && user != e.user {
		cp := *e
		cp.user = user
		e = &cp
	}
	req := map[string]any{
		"process": map[string]any{"cmd": argv[0], "args": argv[1:], "envs": map[string]string{}, "cwd": cwd},
		"stdin":   stdin != nil,
	}
	code := -1
	ended := false
	var pumpErr chan error
	err := e.stream(ctx, "process.Process/Start", req, timeout, func(msg json.RawMessage) error {
		var ev processEvent
		if err := json.Unmarshal(msg, &ev); err != nil {
			return fmt.Errorf("e2b: process event does not parse: %w", err)
		}
		switch {
		case ev.Event.Start != nil:
			if stdin != nil && pumpErr == nil {
				pumpErr = make(chan error, 1)
				pid := ev.Event.Start.Pid
				go func() { pumpErr <- s.pump(ctx, e, pid, stdin) }()
			}
		case ev.Event.Data != nil:
			for _, d := range []struct {
				b64 string
				w   io.Writer
			}{{ev.Event.Data.Stdout, stdout}, {ev.Event.Data.Stderr, stderr}} {
				if d.b64 == "" || d.w == nil {
					continue
				}
				raw, err := base64.StdEncoding.DecodeString(d.b64)
				if err != nil {
					return fmt.Errorf("e2b: process output is not base64: %w", err)
				}
				if _, err := d.w.Write(raw); err != nil {
					return fmt.Errorf("e2b: write process output: %w", err)
				}
			}
		case ev.Event.End != nil:
			ended = true
			code = ev.Event.End.ExitCode
			if code < 0 && strings.HasPrefix(ev.Event.End.Status, "signal: killed") {
				code = 128 + 9
			}
		}
		return nil
	})
	if err != nil {
		return code, err
	}
	if !ended {
		return code, errors.New("e2b: the process stream ended without an end event")
	}
	return code, nil
}

// pump copies stdin to the process and closes its stdin at EOF.
func (s *Sandbox) pump(ctx context.Context, e *envd, pid uint32, r io.Reader) error {
	sel := map[string]any{"pid": pid}
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			in := map[string]any{"process": sel, "input": map[string]string{"stdin": base64.StdEncoding.EncodeToString(buf[:n])}}
			if uerr := e.unary(ctx, "process.Process/SendInput", in, nil); uerr != nil {
				return uerr
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return err
			}
			return e.unary(ctx, "process.Process/CloseStdin", map[string]any{"process": sel}, nil)
		}
	}
}

// keepAlive pushes the sandbox's E2B timeout forward while it is used,
// at most once a minute.
func (s *Sandbox) keepAlive(ctx context.Context) {
	s.mu.Lock()
	due := time.Since(s.renewed) > time.Minute
	if due {
		s.renewed = time.Now()
	}
	s.mu.Unlock()
	if due {
		if err := s.p.api.SetTimeout(ctx, s.id, s.lifetime); err != nil {
			s.p.log.Warn("renew the sandbox's timeout", "sandbox", s.id, "err", err)
		}
	}
}

// resolve checks, inside the sandbox, that rel does not lead out of the
// workspace through a symlink (realpath, relative to /repo, stays
// relative only inside it).
func (s *Sandbox) resolve(ctx context.Context, rel string) error {
	if rel == "." {
		return nil
	}
	var out, errb bytes.Buffer
	code, err := s.start(ctx, "", []string{"realpath", "-m", "--relative-base=.", "--", rel}, sandbox.WorkspaceRoot, nil, &out, &errb, time.Minute)
	if err != nil {
		return s.gone(err)
	}
	if code != 0 {
		return fmt.Errorf("resolve %s: %s", rel, strings.TrimSpace(errb.String()))
	}
	if got := strings.TrimSpace(out.String()); strings.HasPrefix(got, "/") {
		return fmt.Errorf("%s leads to %s: %w", rel, got, sandbox.ErrOutsideWorkspace)
	}
	return nil
}

// maxFile bounds ReadFile.
const maxFile = 64 << 20

// ReadFile reads a workspace file.
func (s *Sandbox) ReadFile(ctx context.Context, p string) ([]byte, error) {
	rel, err := s.path("read", p)
	if err != nil {
		return nil, err
	}
	if err := s.resolve(ctx, rel); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	st, err := s.Stat(ctx, rel)
	if err != nil {
		return nil, err
	}
	if !st.Mode.IsRegular() {
		return nil, fmt.Errorf("read %s: %w", p, sandbox.ErrNotRegularFile)
	}
	data, err := s.envd.download(ctx, abs(rel), maxFile)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, s.gone(err))
	}
	return data, nil
}

// WriteFile writes a workspace file, creating parent directories.
func (s *Sandbox) WriteFile(ctx context.Context, p string, data []byte, perm fs.FileMode) error {
	rel, err := s.path("write", p)
	if err != nil {
		return err
	}
	if rel == "." {
		return fmt.Errorf("write %s: %w", p, sandbox.ErrNotRegularFile)
	}
	if err := s.resolve(ctx, rel); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if st, err := s.Stat(ctx, rel); err == nil && !st.Mode.IsRegular() {
		return fmt.Errorf("write %s: %w", p, sandbox.ErrNotRegularFile)
	}
	if err := s.envd.upload(ctx, abs(rel), data); err != nil {
		return fmt.Errorf("write %s: %w", p, s.gone(err))
	}
	if perm&0o111 != 0 {
		var out bytes.Buffer
		if code, err := s.start(ctx, "", []string{"chmod", fmt.Sprintf("%o", perm.Perm()), "--", rel}, sandbox.WorkspaceRoot, nil, &out, &out, time.Minute); err != nil || code != 0 {
			return fmt.Errorf("write %s: chmod: %v %s", p, err, out.String())
		}
	}
	return nil
}

func (s *Sandbox) path(op, p string) (string, error) {
	if err := s.check(op); err != nil {
		return "", err
	}
	rel, err := sandbox.CleanRel(p)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", op, p, err)
	}
	return rel, nil
}

func (s *Sandbox) info(e entry) sandbox.FileInfo {
	rel := strings.TrimPrefix(strings.TrimPrefix(e.Path, sandbox.WorkspaceRoot), "/")
	mode := fs.FileMode(e.Mode & 0o777)
	switch e.Type {
	case "FILE_TYPE_DIRECTORY":
		mode |= fs.ModeDir
	case "FILE_TYPE_SYMLINK":
		mode |= fs.ModeSymlink
	}
	t, _ := time.Parse(time.RFC3339Nano, e.ModifiedTime)
	return sandbox.FileInfo{Path: rel, Size: e.size(), Mode: mode, ModTime: t, IsDir: e.Type == "FILE_TYPE_DIRECTORY"}
}

// Stat describes a workspace entry.
func (s *Sandbox) Stat(ctx context.Context, p string) (sandbox.FileInfo, error) {
	rel, err := s.path("stat", p)
	if err != nil {
		return sandbox.FileInfo{}, err
	}
	var out struct {
		Entry entry `json:"entry"`
	}
	if err := s.envd.unary(ctx, "filesystem.Filesystem/Stat", map[string]string{"path": abs(rel)}, &out); err != nil {
		return sandbox.FileInfo{}, fmt.Errorf("stat %s: %w", p, s.gone(err))
	}
	return s.info(out.Entry), nil
}

// List lists entries under p, recursively when asked, skipping .git's
// contents.
func (s *Sandbox) List(ctx context.Context, p string, recursive bool) ([]sandbox.FileInfo, error) {
	rel, err := s.path("list", p)
	if err != nil {
		return nil, err
	}
	if err := s.resolve(ctx, rel); err != nil {
		return nil, fmt.Errorf("list %s: %w", p, err)
	}
	depth := 1
	if recursive {
		depth = 64
	}
	var out struct {
		Entries []entry `json:"entries"`
	}
	if err := s.envd.unary(ctx, "filesystem.Filesystem/ListDir", map[string]any{"path": abs(rel), "depth": depth}, &out); err != nil {
		return nil, fmt.Errorf("list %s: %w", p, s.gone(err))
	}
	var infos []sandbox.FileInfo
	for _, e := range out.Entries {
		fi := s.info(e)
		if strings.HasPrefix(fi.Path, ".git/") || strings.Contains(fi.Path, "/.git/") {
			continue
		}
		infos = append(infos, fi)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Path < infos[j].Path })
	return infos, nil
}

// Remove deletes a file or empty directory, or a tree when recursive.
func (s *Sandbox) Remove(ctx context.Context, p string, recursive bool) error {
	rel, err := s.path("remove", p)
	if err != nil {
		return err
	}
	if rel == "." {
		return fmt.Errorf("remove %q: the workspace root cannot be removed: %w", p, sandbox.ErrOutsideWorkspace)
	}
	if err := s.resolve(ctx, path.Dir(rel)); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	st, err := s.Stat(ctx, rel)
	if err != nil {
		return err
	}
	if st.IsDir && !recursive {
		list, err := s.List(ctx, rel, false)
		if err != nil {
			return err
		}
		if len(list) > 0 {
			return fmt.Errorf("remove %s: the directory is not empty", p)
		}
	}
	if err := s.envd.unary(ctx, "filesystem.Filesystem/Remove", map[string]string{"path": abs(rel)}, nil); err != nil {
		return fmt.Errorf("remove %s: %w", p, s.gone(err))
	}
	return nil
}

// Alive asks envd whether the sandbox is up.
func (s *Sandbox) Alive(ctx context.Context) error {
	if err := s.check("alive"); err != nil {
		return err
	}
	if err := s.envd.health(ctx); err != nil {
		return fmt.Errorf("alive: %w", s.gone(err))
	}
	return nil
}

// Pause pauses the sandbox at E2B (an idle lease keeps its state and
// stops costing); Provider.Resume brings it back.
func (s *Sandbox) Pause(ctx context.Context) error {
	if err := s.check("pause"); err != nil {
		return err
	}
	return s.p.api.Pause(ctx, s.id)
}

// Upload streams r into a new file in the sandbox user's private .hero
// directory in one request (stdin goes in one request per chunk) and
// returns its path relative to $HOME.
func (s *Sandbox) Upload(ctx context.Context, r io.Reader) (string, func(context.Context), error) {
	if err := s.check("upload"); err != nil {
		return "", nil, err
	}
	rel := ".hero/up-" + randomHex()
	remove := func(ctx context.Context) {
		_ = s.envd.unary(ctx, "filesystem.Filesystem/Remove", map[string]string{"path": rel}, nil)
	}
	if err := s.envd.uploadFrom(ctx, rel, r); err != nil {
		remove(ctx)
		return "", nil, s.gone(err)
	}
	return rel, remove, nil
}

// Resume brings the paused sandbox back (E2B's connect) with a fresh
// lifetime.
func (s *Sandbox) Resume(ctx context.Context) error {
	if err := s.check("resume"); err != nil {
		return err
	}
	info, err := s.p.api.Connect(ctx, s.id, s.lifetime)
	if err != nil {
		return s.gone(err)
	}
	if info.EnvdAccessToken != "" {
		s.envd.token.set(info.EnvdAccessToken)
	}
	s.mu.Lock()
	s.renewed = time.Now()
	s.mu.Unlock()
	return nil
}

// Snapshot removes the environment files (secrets never go into a
// snapshot), then snapshots the sandbox; the id can be a later Spec's
// Template.
func (s *Sandbox) Snapshot(ctx context.Context, name string) (string, error) {
	if err := s.check("snapshot"); err != nil {
		return "", err
	}
	var out bytes.Buffer
	code, err := s.start(ctx, "", []string{"/bin/sh", "-c", `rm -f "$HOME"/.hero/env-* "$HOME"/.hero/sid-*`}, "/", nil, &out, &out, time.Minute)
	if err != nil || code != 0 {
		return "", fmt.Errorf("snapshot: remove the environment files first: %v %s", err, out.String())
	}
	s.mu.Lock()
	s.envs = map[string]bool{}
	s.mu.Unlock()
	return s.p.api.Snapshot(ctx, s.id, name)
}

// Close kills the sandbox at E2B. It is idempotent.
func (s *Sandbox) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if err := s.p.api.Kill(ctx, s.id); err != nil {
		return fmt.Errorf("close sandbox %s: %w", s.id, err)
	}
	return nil
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
