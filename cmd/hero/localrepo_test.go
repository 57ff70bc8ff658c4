package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// A project whose repository is a directory on this machine outside
// HERO_LOCAL_REPO_ROOT is the terminal's alone: `hero project add` says
// chat and GitHub refuse it, and a member's /hero in the project's Slack
// channel under `hero serve` starts a run that fails with the reason
// before any sandbox holds the files (the run says so in its thread).
// `hero serve` is built for chat, GitHub and schedules, never as the
// local operator's terminal, whatever the run's surface is called.
func TestServeRefusesTerminalOnlyProject(t *testing.T) {
	enginetest.RequireBwrap(t)
	var mu sync.Mutex
	var posts []slackPost
	ts := 1000
	slackAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		r.ParseForm()
		mu.Lock()
		defer mu.Unlock()
		ts++
		switch r.URL.Path {
		case "/api/auth.test":
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "team_id": "T1", "user_id": "UB", "team": "Acme"})
		case "/api/chat.postMessage", "/api/chat.update", "/api/chat.postEphemeral", "/respond":
			p := slackPost{channel: r.Form.Get("channel"), thread: r.Form.Get("thread_ts"), ts: fmt.Sprintf("%d.0001", ts), text: r.Form.Get("text") + r.Form.Get("blocks")}
			if r.URL.Path == "/respond" {
				var body map[string]any
				json.NewDecoder(r.Body).Decode(&body)
				p.text = fmt.Sprint(body["text"])
			}
			posts = append(posts, p)
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": p.channel, "ts": p.ts})
		default:
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "ts": fmt.Sprintf("%d.0001", ts)})
		}
	}))
	t.Cleanup(slackAPI.Close)

	dir, checkout := t.TempDir(), gitRepo(t)
	env := map[string]string{"HERO_DATA_DIR": dir, "HERO_ADDR": "127.0.0.1:0", "HERO_SANDBOX_POOL": "0",
		"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "sign", "SLACK_API_URL": slackAPI.URL + "/api/"}
	out, _, err := hero(t, env, "", false, "project", "add", "mine", "--repo", checkout)
	if err != nil || !strings.Contains(out, "chat and GitHub refuse it") {
		t.Fatalf("project add: %v %q", err, out)
	}
	db := storetest.OpenIn(t, dir)
	ctx := t.Context()
	p, err := db.ProjectByName(ctx, "mine")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.BindChannel(ctx, "slack", "T1/C9", p.ID, "slack:T1/U1"); err != nil {
		t.Fatal(err)
	}
	storetest.User(t, db, p.ID, "mia@example.com", store.RoleMember, "slack", "T1/U1")

	base, logs := startServe(t, env)
	form := url.Values{"team_id": {"T1"}, "channel_id": {"C9"}, "user_id": {"U1"}, "command": {"/hero"},
		"text": {"fix the sum in calc.go"}, "trigger_id": {"tr1"}, "response_url": {slackAPI.URL + "/respond"}}
	body := form.Encode()
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte("sign"))
	mac.Write([]byte("v0:" + stamp + ":" + body))
	req, _ := http.NewRequest("POST", base+"/slack/commands", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("slash command: %v %v", resp, err)
	}
	resp.Body.Close()

	const why = "only `hero run --repo PATH` in a terminal may use a directory on this machine"
	var ex *store.Execution
	for deadline := time.Now().Add(60 * time.Second); ex == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no refused run; Slack got %+v\n%s", posts, logs.String())
		}
		exs, err := db.ListExecutions(ctx, store.ExecutionFilter{ProjectID: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(exs) == 1 && exs[0].Status == store.StatusFailed {
			ex = &exs[0]
		}
	}
	if ex.Surface != "slack" || !strings.Contains(ex.Error, why) {
		t.Fatalf("run %s on %s failed with %q, want %q", ex.ID, ex.Surface, ex.Error, why)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		told := false
		for _, ps := range posts {
			told = told || (ps.channel == "C9" && strings.Contains(ps.text, "HERO_LOCAL_REPO_ROOT"))
		}
		mu.Unlock()
		if told {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("Slack was not told why; it got %+v", posts)
		}
	}
}
