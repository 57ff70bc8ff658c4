package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot/discord"
	"github.com/hero-dev/hero/bot/discord/discordtest"
	"github.com/hero-dev/hero/bot/slack"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	ghsurface "github.com/hero-dev/hero/webhooks/github"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// buildHero builds the hero binary the way `make build` does.
func buildHero(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hero")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=replicas-test", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// replica is one `hero serve` process.
type replica struct {
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	base string // http://127.0.0.1:PORT
	done chan struct{}
}

// owner is the name the replica uses in run leases (host-pid).
func (r *replica) owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, r.cmd.Process.Pid)
}

func (r *replica) alive() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// startReplica starts `hero serve` with env; waitListening waits for it.
func startReplica(t testing.TB, bin, name string, env map[string]string) *replica {
	t.Helper()
	r := &replica{name: name, logs: &syncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(bin, "serve")
	r.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "HERO_DATA_DIR=" + filepath.Join(t.TempDir(), name)}
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		if r.alive() {
			r.cmd.Process.Signal(os.Interrupt)
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				r.cmd.Process.Kill()
				<-r.done
			}
		}
		if t.Failed() {
			t.Logf("logs of replica %s:\n%s", r.name, r.logs.String())
		}
	})
	return r
}

var listening = regexp.MustCompile(`hero is listening.*addr=(http://127\.0\.0\.1:\d+)`)

func (r *replica) waitListening(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := listening.FindStringSubmatch(r.logs.String()); m != nil {
			r.base = m[1]
			return
		}
		if !r.alive() || time.Now().After(deadline) {
			t.Fatalf("replica %s did not start listening:\n%s", r.name, r.logs.String())
		}
	}
}

func (r *replica) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(r.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
	}
}

// TestReplicas runs two (then three) real `hero serve` processes on one
// MariaDB database with the fake model and the fake GitHub, and checks what
// several replicas promise: they migrate an empty database together; a
// GitHub delivery, a Slack slash command and a Slack event sent to both
// (as Slack's retries are) are each handled once; the settings page works through
// either; each /metrics shows its own runs; a run whose replica is killed
// (-9) while it waits for a confirmation is taken over after the lease
// lapses, the approval given meanwhile is honoured, and nothing is posted
// twice; the redelivery job runs on one replica and moves when it dies.
func TestReplicas(t *testing.T) {
	enginetest.RequireBwrap(t)
	dbURL := storetest.FreshMySQL(t, "replicas")
	bin := buildHero(t)

	const secret, token = "replica-secret", "ghp_replicasTOKEN0123456789"
	api := githubtest.NewServer(t, token)
	git := githubtest.NewGitServer(t, "Codertocat", "Hello-World", map[string]string{"README.md": "hi\n"}, api.ValidToken)
	git.AnonymousRead()
	// GitHub serves its API and git on one host: hero sends its token only
	// there, so the fakes sit behind one address.
	apiProxy, gitProxy := httputil.NewSingleHostReverseProxy(mustURL(t, api.URL)), httputil.NewSingleHostReverseProxy(mustURL(t, git.URL))
	github := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/Codertocat/") {
			gitProxy.ServeHTTP(w, r)
			return
		}
		apiProxy.ServeHTTP(w, r)
	}))
	t.Cleanup(github.Close)
	repoURL := github.URL + "/Codertocat/Hello-World"
	model := openaitest.NewServerFunc(t, func(req openaitest.Request) openaitest.Turn {
		task := req.FirstUserMessage()
		switch {
		case strings.Contains(task, "open a pull request") && req.Round() == 0:
			return openaitest.Tools(openaitest.Call("git_push", `{}`))
		case strings.Contains(task, "open a pull request") && req.Round() == 1:
			return openaitest.Tools(openaitest.Call("create_pull_request", `{"title":"Takeover","body":"Opened after a replica died."}`))
		case strings.Contains(task, "open a pull request"):
			return openaitest.Tools(openaitest.Call("finish", `{"summary":"pull request opened"}`))
		}
		m := regexp.MustCompile(`greet (\w+)`).FindStringSubmatch(task)
		if m == nil {
			return openaitest.Tools(openaitest.Call("finish", `{"summary":"nothing to do"}`))
		}
		return openaitest.Tools(openaitest.Call("finish", `{"summary":"hello `+m[1]+`"}`))
	})
	// Discord: the gateway session is a singleton (interactions are not
	// exercised here; TestServeDiscord does that).
	discordKey := discordtest.NewKey(t)
	discordAPI := discordtest.NewServer(t, "discord-bot-token", "4242")
	gateway := discordtest.NewGateway(t, "4242")
	discordAPI.SetGateway(gateway.URL())
	// Slack's Web API: what hero posts, in order.
	var slackMu sync.Mutex
	var slackCalls []slackPost
	slackTS := 0
	slackAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		r.ParseForm()
		slackMu.Lock()
		defer slackMu.Unlock()
		method := strings.TrimPrefix(r.URL.Path, "/api/")
		slackTS++
		p := slackPost{channel: r.Form.Get("channel"), thread: r.Form.Get("thread_ts"), ts: fmt.Sprintf("1700000000.%06d", slackTS), text: r.Form.Get("text")}
		switch method {
		case "auth.test":
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "team_id": "T1", "user_id": "UHERO", "bot_id": "BHERO", "team": "Acme"})
			return
		case "chat.postMessage":
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": p.channel, "ts": p.ts})
		default:
			p.ts = r.Form.Get("ts")
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": p.channel, "ts": p.ts})
		}
		p.text = method + " " + p.text
		slackCalls = append(slackCalls, p)
	}))
	t.Cleanup(slackAPI.Close)
	const slackSecret = "replica-slack-secret"
	env := map[string]string{
		"SLACK_BOT_TOKEN": "xoxb-replicas", "SLACK_SIGNING_SECRET": slackSecret, "SLACK_API_URL": slackAPI.URL + "/api/",
		"DISCORD_APP_ID": "777", "DISCORD_PUBLIC_KEY": discordKey.PublicHex(), "DISCORD_BOT_TOKEN": "discord-bot-token", "DISCORD_API_URL": discordAPI.APIURL(),
		"DATABASE_URL": dbURL, "HERO_ADDR": "127.0.0.1:0", "HERO_SANDBOX_POOL": "0",
		"SECRETS_ENCRYPTION_KEY": strings.Repeat("ab", 32), "SECRETS_KDF_SALT": strings.Repeat("cd", 16),
		"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini",
		"GITHUB_WEBHOOK_SECRET": secret, "GITHUB_TOKEN": token, "GITHUB_API_URL": github.URL + "/", "GITHUB_BOT_LOGIN": "hero-bot",
		// Short leases so the test takes seconds, not the 40 s of the defaults.
		"HERO_RUN_LEASE": "6s", "HERO_TAKEOVER_INTERVAL": "2s", "GITHUB_REDELIVERY_INTERVAL": "1s",
	}

	// HERO_TEST_DEFAULT_LEASES=1 measures the takeover with the defaults
	// (30 s lease, 10 s check) instead, for the README's number.
	lease, every := 6*time.Second, 2*time.Second
	if os.Getenv("HERO_TEST_DEFAULT_LEASES") != "" {
		delete(env, "HERO_RUN_LEASE")
		delete(env, "HERO_TAKEOVER_INTERVAL")
		lease, every = 30*time.Second, 10*time.Second
	}

	// Both start at the same moment on the empty database.
	a, b := startReplica(t, bin, "a", env), startReplica(t, bin, "b", env)
	a.waitListening(t)
	b.waitListening(t)
	all := []*replica{a, b}
	top := t // replicas started in a subtest outlive it
	meta, err := store.Open(t.Context(), dbURL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	var names []string
	if err := meta.Bun().NewSelect().Table("hero_migrations").Column("name").Scan(t.Context(), &names); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Fatalf("migration %s recorded twice: %v", n, names)
		}
		seen[n] = true
	}
	if len(names) < 10 {
		t.Fatalf("migrations recorded: %v", names)
	}
	cli := exec.Command(bin, "project", "add", "hello", "--repo", repoURL)
	cli.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "HERO_DATA_DIR=" + t.TempDir()},
		"DATABASE_URL="+dbURL, "SECRETS_ENCRYPTION_KEY="+env["SECRETS_ENCRYPTION_KEY"], "SECRETS_KDF_SALT="+env["SECRETS_KDF_SALT"])
	if out, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("hero project add: %v\n%s", err, out)
	}

	t.Run("settings page through either replica", func(t *testing.T) {
		// Each replica printed its own one-time admin link; neither start
		// revoked the other's. A session made on a is good on b.
		links := map[*replica]string{}
		for _, r := range []*replica{a, b} {
			m := regexp.MustCompile(`/auth/admin\?token=([\w%-]+)`).FindStringSubmatch(r.logs.String())
			if m == nil {
				t.Fatalf("replica %s logged no admin link", r.name)
			}
			links[r] = "/auth/admin?token=" + m[1]
		}
		for _, r := range []*replica{b, a} {
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar}
			resp, err := c.Get(r.base + links[r])
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			other := a
			if r == a {
				other = b
			}
			// The cookie is for 127.0.0.1 (any port), so it goes to the
			// other replica too.
			resp, err = c.Get(other.base + "/settings/projects")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "hello") {
				t.Fatalf("logged in through %s's link, %s's settings page: %d\n%.500s", r.name, other.name, resp.StatusCode, body)
			}
		}
	})

	raw, err := os.ReadFile("testdata/issue_comment.created.json")
	if err != nil {
		t.Fatal(err)
	}
	// deliver posts an @hero comment on an issue, as one delivery, to
	// each of to (at the same time).
	var nextComment int64 = 7000
	deliver := func(issue int, body string, to ...*replica) int64 {
		t.Helper()
		var m map[string]any
		json.Unmarshal(raw, &m)
		m["repository"].(map[string]any)["html_url"] = repoURL
		m["issue"].(map[string]any)["number"] = issue
		nextComment++
		c := m["comment"].(map[string]any)
		c["body"], c["author_association"], c["id"] = body, "OWNER", nextComment
		payload, _ := json.Marshal(m)
		id := fmt.Sprintf("delivery-%d", nextComment)
		var wg sync.WaitGroup
		for _, r := range to {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, r.base+"/github/webhook", bytes.NewReader(payload))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "issue_comment")
				req.Header.Set("X-GitHub-Delivery", id)
				req.Header.Set("X-Hub-Signature-256", ghsurface.Sign([]byte(secret), payload))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					t.Errorf("delivery %s to %s: %d", id, r.name, resp.StatusCode)
				}
			})
		}
		wg.Wait()
		return nextComment
	}
	runs := func() []store.Execution {
		var exs []store.Execution
		if err := meta.Bun().NewSelect().Model(&exs).Order("created_at").Scan(t.Context()); err != nil {
			t.Fatal(err)
		}
		return exs
	}
	finished := func(ex store.Execution) bool {
		return ex.Status == store.StatusSucceeded || ex.Status == store.StatusFailed
	}

	t.Run("each delivery sent to both is handled once", func(t *testing.T) {
		people := []string{"ada", "grace", "linus", "barbara"}
		comments := map[string]int64{}
		for i, p := range people {
			comments[p] = deliver(10+i, "@hero greet "+p, a, b)
		}
		waitFor(t, 120*time.Second, "four runs finished", func() bool {
			exs := runs()
			n := 0
			for _, ex := range exs {
				if finished(ex) {
					n++
				}
			}
			return n >= len(people)
		})
		// hero paces its GitHub writes, so replies trickle in.
		count := func(p string) (eyes, progress, replies int) {
			for _, r := range api.Reactions() {
				if r.CommentID == comments[p] && r.Content == "eyes" {
					eyes++
				}
			}
			for _, c := range api.Comments() {
				if c.Author == "" && strings.Contains(c.Body, "hello "+p) {
					if strings.Contains(c.Body, "hero finished") {
						replies++
					} else {
						progress++
					}
				}
			}
			return
		}
		waitFor(t, 60*time.Second, "every run's reply is posted", func() bool {
			for _, p := range people {
				if _, _, r := count(p); r == 0 {
					return false
				}
			}
			return true
		})
		time.Sleep(3 * time.Second) // room for a duplicate to show up
		exs := runs()
		if len(exs) != len(people) {
			t.Fatalf("%d runs for %d deliveries", len(exs), len(people))
		}
		for _, p := range people {
			if eyes, progress, replies := count(p); eyes != 1 || progress != 1 || replies != 1 {
				t.Errorf("%s: %d 👀, %d progress comments, %d replies (want one each)", p, eyes, progress, replies)
			}
		}
		// Each /metrics counts the runs its replica drove, and only those.
		for _, r := range []*replica{a, b} {
			mine := 0
			for _, ex := range exs {
				if ex.Owner == r.owner() && ex.Status == store.StatusSucceeded {
					mine++
				}
			}
			got := 0
			if m := regexp.MustCompile(`(?m)^hero_runs_finished_total\{status="succeeded"\} (\d+)$`).FindStringSubmatch(r.get(t, "/metrics")); m != nil {
				fmt.Sscan(m[1], &got)
			}
			if got != mine {
				t.Errorf("replica %s's /metrics says %d runs succeeded; it drove %d", r.name, got, mine)
			}
		}
	})

	t.Run("each Slack request sent to both is handled once", func(t *testing.T) {
		snapshot := func() []slackPost {
			slackMu.Lock()
			defer slackMu.Unlock()
			return append([]slackPost(nil), slackCalls...)
		}
		// Mia is an admin of the project, linked to her Slack account.
		ctx := t.Context()
		p, err := meta.ProjectByName(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		storetest.User(t, meta, p.ID, "mia@example.com", store.RoleAdmin, "slack", "T1/U1")
		// send posts one signed request to each of to at the same moment,
		// as Slack's retry does: same body, timestamp and signature.
		send := func(path, contentType string, body []byte, to ...*replica) {
			t.Helper()
			stamp := strconv.FormatInt(time.Now().Unix(), 10)
			sig := slack.Sign(slackSecret, stamp, body)
			var wg sync.WaitGroup
			for i, r := range to {
				wg.Go(func() {
					req, _ := http.NewRequest(http.MethodPost, r.base+path, bytes.NewReader(body))
					req.Header.Set("Content-Type", contentType)
					req.Header.Set("X-Slack-Request-Timestamp", stamp)
					req.Header.Set("X-Slack-Signature", sig)
					if i > 0 {
						req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(i))
						req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("%s to %s: %d", path, r.name, resp.StatusCode)
					}
				})
			}
			wg.Wait()
		}
		command := func(text, trigger string, to ...*replica) {
			t.Helper()
			form := url.Values{"team_id": {"T1"}, "channel_id": {"C9"}, "channel_name": {"dev"}, "user_id": {"U1"}, "command": {"/hero"},
				"text": {text}, "trigger_id": {trigger}, "response_url": {"https://hooks.slack.com/commands/T1/1/x"}}
			send("/slack/commands", "application/x-www-form-urlencoded", []byte(form.Encode()), to...)
		}
		// The channel is bound through a, with a slash command.
		command("use hello", "trig-use", a)
		waitFor(t, 60*time.Second, "the channel is bound", func() bool {
			bound, err := meta.ChannelProject(ctx, "slack", "T1/C9")
			return err == nil && bound != nil && bound.ID == p.ID
		})

		command("greet zoe", "trig-zoe", a, b)
		event, _ := json.Marshal(map[string]any{"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "Ev0REPLICAS", "event_time": time.Now().Unix(),
			"authorizations": []map[string]any{{"team_id": "T1", "user_id": "UHERO", "is_bot": true}},
			"event":          map[string]any{"type": "app_mention", "user": "U1", "text": "<@UHERO> greet yuki", "ts": "1700000100.000100", "channel": "C9", "team": "T1", "event_ts": "1700000100.000100"}})
		send("/slack/events", "application/json", event, b, a)

		// The slash command's run opens a thread of its own; the mention's
		// is answered in the mention's thread.
		openers := func(calls []slackPost) []slackPost {
			var out []slackPost
			for _, c := range calls {
				if c.thread == "" && strings.HasPrefix(c.text, "chat.postMessage <@U1> asked hero (project *hello*):\n>greet zoe") {
					out = append(out, c)
				}
			}
			return out
		}
		inThread := func(calls []slackPost, thread string) []string {
			var out []string
			for _, c := range calls {
				if c.thread == thread && strings.HasPrefix(c.text, "chat.postMessage ") {
					out = append(out, strings.TrimPrefix(c.text, "chat.postMessage "))
				}
			}
			return out
		}
		answered := func(calls []slackPost, thread, who string) bool {
			for _, m := range inThread(calls, thread) {
				if strings.HasSuffix(m, "succeeded. hello "+who) {
					return true
				}
			}
			return false
		}
		const mention = "1700000100.000100"
		waitFor(t, 120*time.Second, "both runs answered in Slack", func() bool {
			calls := snapshot()
			o := openers(calls)
			return len(o) > 0 && answered(calls, o[0].ts, "zoe") && answered(calls, mention, "yuki")
		})
		time.Sleep(3 * time.Second) // room for a duplicate to show up
		calls := snapshot()
		dump := func() string {
			var b strings.Builder
			for _, c := range calls {
				fmt.Fprintf(&b, "  ch=%s thread=%s ts=%s %.160q\n", c.channel, c.thread, c.ts, c.text)
			}
			return b.String()
		}
		o := openers(calls)
		if len(o) != 1 {
			t.Fatalf("%d threads opened for one slash command\n%s", len(o), dump())
		}
		// Each thread: "On it", the progress card and the answer, once;
		// nothing else (a duplicate mention would be taken for steering).
		for who, thread := range map[string]string{"zoe": o[0].ts, "yuki": mention} {
			var ids []string
			for _, ex := range runs() {
				if strings.Contains(ex.Task, "greet "+who) {
					ids = append(ids, ex.ID)
				}
			}
			if len(ids) != 1 {
				t.Errorf("%s: %d runs %v (want one)", who, len(ids), ids)
				continue
			}
			want := []string{"On it: run `" + ids[0] + "`", "Run " + ids[0] + ": running", "Run " + ids[0] + " succeeded. hello " + who}
			got := inThread(calls, thread)
			ok := len(got) == len(want)
			for _, w := range want {
				n := 0
				for _, m := range got {
					if strings.HasPrefix(m, w) {
						n++
					}
				}
				ok = ok && n == 1
			}
			if !ok {
				t.Errorf("%s's thread: %q\nwant one each of %q\n%s", who, got, want, dump())
			}
		}
		// hero does not react in Slack: a reaction would be a duplicate's.
		for _, c := range calls {
			if strings.HasPrefix(c.text, "reactions.add") {
				t.Errorf("hero reacted in Slack: %+v", c)
			}
		}
	})

	var survivor *replica
	t.Run("a killed replica's run is taken over", func(t *testing.T) {
		deliver(40, "@hero push and open a pull request", a)
		var ex store.Execution
		var conf []store.Confirmation
		waitFor(t, 90*time.Second, "the run waits for its push to be approved", func() bool {
			for _, e := range runs() {
				if strings.Contains(e.Task, "open a pull request") && e.Status == store.StatusWaiting {
					ex = e
					conf, _ = meta.PendingConfirmations(t.Context(), e.ID)
					return len(conf) == 1
				}
			}
			return false
		})
		driver, other := a, b
		if ex.Owner == b.owner() {
			driver, other = b, a
		} else if ex.Owner != a.owner() {
			t.Fatalf("run owned by %q, neither replica", ex.Owner)
		}
		if err := driver.cmd.Process.Kill(); err != nil { // SIGKILL: no drain, no lease release
			t.Fatal(err)
		}
		<-driver.done
		killed := time.Now()
		// Approved while nobody drives the run.
		deliver(40, "@hero approve "+conf[0].ID, other)
		waitFor(t, 30*time.Second, "the approval is recorded", func() bool {
			c, err := meta.Confirmation(t.Context(), conf[0].ID)
			return err == nil && c.Status != store.ConfirmPending
		})
		var resumedAfter time.Duration
		approvedPR := false
		waitFor(t, 90*time.Second+lease, "the survivor finishes the run", func() bool {
			// The pull request is asked for after the push: approve it too.
			if !approvedPR {
				if pending, _ := meta.PendingConfirmations(t.Context(), ex.ID); len(pending) == 1 && pending[0].Tool == "create_pull_request" {
					deliver(40, "@hero approve "+pending[0].ID, other)
					approvedPR = true
				}
			}
			e, err := meta.Execution(t.Context(), ex.ID)
			if err != nil {
				return false
			}
			// The lease is cleared when the run ends.
			if resumedAfter == 0 && (e.Owner == other.owner() || finished(*e)) {
				resumedAfter = time.Since(killed)
			}
			return finished(*e)
		})
		e, _ := meta.Execution(t.Context(), ex.ID)
		if e.Status != store.StatusSucceeded || !strings.Contains(other.logs.String(), `msg="took over unfinished runs" resumed=1`) {
			t.Fatalf("run after takeover: %s: %s", e.Status, e.Error)
		}
		t.Logf("replica %s killed; %s took the run over after %s (lease %s, takeover check every %s)", driver.name, other.name, resumedAfter.Round(100*time.Millisecond), lease, every)
		if resumedAfter > lease+every+5*time.Second {
			t.Errorf("takeover took %s; lease + interval is %s", resumedAfter, lease+every)
		}
		time.Sleep(2 * time.Second) // room for a duplicate to show up
		if prs := api.Pulls(); len(prs) != 1 || prs[0].Title != "Takeover" {
			t.Errorf("pull requests: %+v (want one)", prs)
		}
		bodies := map[string]int{}
		for _, c := range api.Comments() {
			if c.Issue == 40 && c.Author == "" {
				bodies[c.Body]++
			}
		}
		for body, n := range bodies {
			if n > 1 {
				t.Errorf("hero posted %d times: %q", n, body)
			}
		}
		if _, _, pushes := git.Counts(); pushes != 1 {
			t.Errorf("%d pushes (want the approved one, once)", pushes)
		}
		if !approvedPR {
			t.Error("the pull request was never asked for")
		}
		survivor = other
	})
	if survivor == nil {
		return
	}

	t.Run("the redelivery job runs on one replica and moves when it dies", func(t *testing.T) {
		c := startReplica(top, bin, "c", env)
		c.waitListening(t)
		all = append(all, c)
		holder := func() string {
			l, err := meta.Singleton(t.Context(), redeliveryLease)
			if err != nil || !time.Now().Before(l.Until) {
				return ""
			}
			return l.Holder
		}
		// The dead replica's lease lapses after 3 intervals.
		waitFor(t, 15*time.Second, "a live replica holds the redelivery job", func() bool {
			h := holder()
			return h == survivor.owner() || h == c.owner()
		})
		first := survivor
		if holder() == c.owner() {
			first = c
		}
		next := c
		if first == c {
			next = survivor
		}
		if err := first.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-first.done
		// It logs the claim just after the database has it: wait for both.
		waitFor(t, 15*time.Second, "the job moves to "+next.name+", which logs that it runs it", func() bool {
			return holder() == next.owner() && strings.Contains(next.logs.String(), "this replica runs the singleton job")
		})
	})

	t.Run("the Discord gateway is held by one replica and moves when it dies", func(t *testing.T) {
		// Whoever holds it now, fresh replicas d and e join; the holder dies.
		var live []*replica
		for _, r := range all {
			if r.alive() {
				live = append(live, r)
			}
		}
		d, e := startReplica(t, bin, "d", env), startReplica(t, bin, "e", env)
		d.waitListening(t)
		e.waitListening(t)
		live = append(live, d, e)
		gatewayHolder := func() string {
			l, err := meta.Singleton(t.Context(), discord.GatewayLease)
			if err != nil || !time.Now().Before(l.Until) {
				return ""
			}
			return l.Holder
		}
		var holder *replica
		waitFor(t, 60*time.Second, "one live replica holds the gateway, with one session", func() bool {
			for _, r := range live {
				if r.alive() && gatewayHolder() == r.owner() && gateway.Connections() == 1 {
					holder = r
					return true
				}
			}
			return false
		})
		if err := holder.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-holder.done
		killed := time.Now()
		waitFor(t, 60*time.Second, "another replica opens the gateway", func() bool {
			h := gatewayHolder()
			return h != "" && h != holder.owner() && gateway.Connections() == 1
		})
		t.Logf("gateway moved %s after its holder %s was killed (30 s lease)", time.Since(killed).Round(100*time.Millisecond), holder.name)
		if n := len(gateway.Identifies()); n < 2 {
			t.Errorf("%d gateway sessions identified; the new holder did not open its own", n)
		}

		// The new holder stops cleanly: it gives the lease back on its
		// way out, and another replica opens the gateway at its next
		// claim (a third of the lease) instead of when the lease lapses.
		var second *replica
		for _, r := range live {
			if r.alive() && gatewayHolder() == r.owner() {
				second = r
			}
		}
		if second == nil {
			t.Fatal("no live replica holds the gateway")
		}
		l, err := meta.Singleton(t.Context(), discord.GatewayLease)
		if err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-second.done
		if h := gatewayHolder(); h == second.owner() {
			t.Errorf("%s exited after SIGTERM still holding the gateway lease", second.name)
		}
		waitFor(t, 30*time.Second, "another replica opens the gateway after a clean stop", func() bool {
			h := gatewayHolder()
			return h != "" && h != second.owner() && gateway.Connections() == 1
		})
		if moved := time.Now(); !moved.Before(l.Until) {
			t.Errorf("the gateway moved %s after %s stopped cleanly, not before its lease would have lapsed (%s): it was not given back",
				moved.Sub(stopped).Round(100*time.Millisecond), second.name, l.Until.Sub(stopped).Round(100*time.Millisecond))
		}
		t.Logf("gateway moved %s after its holder %s stopped cleanly", time.Since(stopped).Round(100*time.Millisecond), second.name)
	})
}
