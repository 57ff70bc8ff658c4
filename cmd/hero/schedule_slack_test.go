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

	"github.com/uptrace/bun"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// slackPost is a chat.postMessage Slack received.
type slackPost struct{ channel, thread, ts, text string }

// TestServeSchedulesReportToSlack runs `hero serve` with Slack on (its Web
// API faked at SLACK_API_URL) and a project bound to a channel: a due
// digest is posted there, with a card title that tries to ping everyone
// escaped, and a due scheduled run opens a thread in the channel whose
// replies are the run's progress and end.
func TestServeSchedulesReportToSlack(t *testing.T) {
	var mu sync.Mutex
	var posts []slackPost
	ts := 1000
	slackAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		r.ParseForm()
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/api/auth.test":
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "team_id": "T1", "user_id": "UB", "team": "Acme"})
		case "/api/chat.postMessage":
			ts++
			p := slackPost{channel: r.Form.Get("channel"), thread: r.Form.Get("thread_ts"), ts: fmt.Sprintf("%d.0001", ts), text: r.Form.Get("text")}
			posts = append(posts, p)
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": p.channel, "ts": p.ts})
		default:
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "ts": fmt.Sprintf("%d.0001", ts)})
		}
	}))
	t.Cleanup(slackAPI.Close)

	dir := t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": dir, "HERO_ADDR": "127.0.0.1:0", "HERO_SANDBOX_POOL": "0", "HERO_SCHEDULE_TICK": "100ms",
		"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "sign", "SLACK_API_URL": slackAPI.URL + "/api/"}
	if _, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", "http://127.0.0.1:1/web.git"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := hero(t, env, "", false, "card", "add", "--project", "web", "Fix the login loop"); err != nil {
		t.Fatal(err)
	}
	db := storetest.OpenIn(t, dir)
	ctx := t.Context()
	p, err := db.ProjectByName(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.BindChannel(ctx, "slack", "T1/C9", p.ID, "slack:T1/U1"); err != nil {
		t.Fatal(err)
	}
	// Made with the command line (as the operator), then made due.
	var ids []string
	for _, args := range [][]string{{"@daily", "--kind", "digest"}, {"@daily", "hunt", "flaky", "tests", "<!here>"}} {
		out, _, err := hero(t, env, "", false, append([]string{"schedule", "add", "--project", "web"}, args...)...)
		if err != nil || !strings.Contains(out, "reports to slack T1/C9") {
			t.Fatalf("schedule add %v: %v %q", args, err, out)
		}
		ids = append(ids, strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "schedule "))
	}
	if res, err := db.Bun().NewUpdate().Table("schedules").Set("next_at = ?", time.Now().UTC().Add(-time.Second)).Where("id IN (?)", bun.In(ids)).Exec(ctx); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("made %d schedules due, want 2 (%v)", n, ids)
	}

	base, logs := startServe(t, env)
	snapshot := func() []slackPost {
		mu.Lock()
		defer mu.Unlock()
		return append([]slackPost(nil), posts...)
	}
	var digest, opened, closing *slackPost
	for deadline := time.Now().Add(60 * time.Second); digest == nil || opened == nil || closing == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Slack got %+v\n%s", snapshot(), logs.String())
		}
		for _, ps := range snapshot() {
			switch {
			case strings.HasPrefix(ps.text, "Board digest for project web"):
				digest = &ps
			case strings.HasPrefix(ps.text, "Scheduled run (schedule "+ids[1]):
				opened = &ps
			case opened != nil && ps.thread == opened.ts && ps.ts != opened.ts && strings.Contains(strings.ToLower(ps.text), "fail"):
				closing = &ps
			}
		}
	}
	// Text from the board and tasks is escaped: it never pings the channel.
	if digest.channel != "C9" || digest.thread != "" || !strings.Contains(digest.text, "Cards per column: Backlog: 0, To do: 1, In progress: 0, Review: 0, Done: 0\nNo card stuck longer than 3 days.") {
		t.Errorf("digest: %+v", *digest)
	}
	if opened.channel != "C9" || opened.thread != "" || !strings.Contains(opened.text, "hunt flaky tests &lt;!here&gt;") || strings.Contains(opened.text, "<!here>") {
		t.Errorf("the run's thread: %+v", *opened)
	}

	// A member makes a schedule with the slash command in the channel.
	u := storetest.User(t, db, p.ID, "mia@example.com", store.RoleMember, "slack", "T1/U1")
	form := url.Values{"team_id": {"T1"}, "channel_id": {"C9"}, "user_id": {"U1"}, "command": {"/hero"},
		"text": {"schedule @daily check the backups"}, "trigger_id": {"tr1"}, "response_url": {slackAPI.URL + "/respond"}}
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
	var made *slackPost
	for deadline := time.Now().Add(30 * time.Second); made == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no answer to /hero schedule; Slack got %+v\n%s", snapshot(), logs.String())
		}
		for _, ps := range snapshot() {
			if strings.Contains(ps.text, "runs “check the backups” and reports here") {
				made = &ps
			}
		}
	}
	if made.channel != "C9" || !strings.Contains(made.text, "made in project *web*: `@daily` (UTC)") {
		t.Errorf("answer: %+v", *made)
	}
	scs, err := db.ListSchedules(ctx, p.ID)
	if err != nil || len(scs) != 3 || scs[2].Creator != "slack:T1/U1" || scs[2].CreatorUserID != u.ID || scs[2].ReportSurface != "slack" || scs[2].ReportTo != "T1/C9" {
		t.Fatalf("schedules: %+v %v", scs, err)
	}
}
