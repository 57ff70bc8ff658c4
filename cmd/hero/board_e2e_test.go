package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	ghsurface "github.com/hero-dev/hero/webhooks/github"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// slackAPI is Slack's Web API at its edge, for hero serve: it records the
// messages hero posts and edits.
type slackAPI struct {
	*httptest.Server
	mu   sync.Mutex
	ts   int
	msgs []slackMsg
}

type slackMsg struct {
	method, channel, ts, thread, text, blocks string
}

func newSlackAPI(t *testing.T) *slackAPI {
	s := &slackAPI{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			var m map[string]any
			json.NewDecoder(r.Body).Decode(&m)
			for k, v := range m {
				if str, ok := v.(string); ok {
					r.Form.Set(k, str)
				} else {
					b, _ := json.Marshal(v)
					r.Form.Set(k, string(b))
				}
			}
		}
		method := strings.TrimPrefix(r.URL.Path, "/api/")
		w.Header().Set("Content-Type", "application/json")
		s.mu.Lock()
		defer s.mu.Unlock()
		m := slackMsg{method: method, channel: r.Form.Get("channel"), ts: r.Form.Get("ts"), thread: r.Form.Get("thread_ts"), text: r.Form.Get("text"), blocks: r.Form.Get("blocks")}
		switch method {
		case "chat.postMessage":
			s.ts++
			m.ts = fmt.Sprintf("1700000000.%06d", s.ts)
			s.msgs = append(s.msgs, m)
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": m.channel, "ts": m.ts})
		case "chat.update", "chat.postEphemeral":
			s.msgs = append(s.msgs, m)
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": m.channel, "ts": m.ts, "message_ts": "1"})
		case "auth.test":
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "user_id": "UHERO", "team_id": "T1", "bot_id": "BHERO"})
		default:
			json.NewEncoder(w).Encode(map[string]any{"ok": true})
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// find returns the recorded messages that match.
func (s *slackAPI) find(match func(slackMsg) bool) []slackMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []slackMsg
	for _, m := range s.msgs {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

// TestBoardEndToEnd: hero serve with GitHub, Slack and the settings page.
// A card added on the command line is an issue on GitHub and, once hero
// serve runs, a message in the project's Slack channel; moved to In progress on the page, it
// starts a run whose progress shows in the card's Slack thread and on
// its issue; the push and the pull request are approved with Slack's
// buttons; a real push reaches the git remote, the card lands in Review
// with the link, and the merged pull request's delivery moves it to Done
// (and closes its issue).
func TestBoardEndToEnd(t *testing.T) {
	enginetest.RequireBwrap(t)
	const ghToken, hookSecret, slackSecret = "ghp_boardE2E0123456789abcdef", "board-hook-secret", "board-slack-signing-secret"
	api := githubtest.NewServer(t, ghToken)
	git := githubtest.NewGitServer(t, "acme", "web", map[string]string{"README.md": "# web\n\nHelo\n"}, api.ValidToken)
	apiURL, _ := url.Parse(api.URL)
	gitURL, _ := url.Parse(git.URL)
	toAPI, toGit := httputil.NewSingleHostReverseProxy(apiURL), httputil.NewSingleHostReverseProxy(gitURL)
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok {
			r.URL.Path = p
			toAPI.ServeHTTP(w, r)
			return
		}
		toGit.ServeHTTP(w, r)
	}))
	t.Cleanup(gh.Close)
	slk := newSlackAPI(t)
	model := openaitest.NewServer(t,
		openaitest.Tools(openaitest.Call("edit_file", `{"path":"README.md","old":"Helo","new":"Hello"}`)),
		openaitest.Tools(openaitest.Call("git_commit", `{"message":"Fix the README typo"}`)),
		openaitest.Tools(openaitest.Call("git_push", `{}`)),
		openaitest.Tools(openaitest.Call("create_pull_request", `{"title":"Fix the README typo","body":"Helo → Hello."}`)),
		openaitest.Tools(openaitest.Call("finish", `{"summary":"Fixed the typo and opened a pull request."}`)),
	)
	dir := t.TempDir()
	env := map[string]string{"HERO_DATA_DIR": dir, "HERO_ADDR": "127.0.0.1:0",
		"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini",
		"GITHUB_TOKEN": ghToken, "GITHUB_API_URL": gh.URL + "/api/v3/", "GITHUB_WEBHOOK_SECRET": hookSecret, "GITHUB_BOT_LOGIN": "hero-bot",
		"SLACK_BOT_TOKEN": "xoxb-board", "SLACK_SIGNING_SECRET": slackSecret, "SLACK_API_URL": slk.URL + "/api/"}
	if _, _, err := hero(t, env, "", false, "project", "add", "web", "--repo", gh.URL+"/acme/web"); err != nil {
		t.Fatal(err)
	}
	// The Slack channel is bound to the project; U1 is an approver linked
	// to their Slack account.
	db := storetest.OpenIn(t, dir)
	p, _ := db.ProjectByName(t.Context(), "web")
	u, _ := db.UpsertUser(t.Context(), "approver@example.com", "Approver")
	for _, err := range []error{db.LinkIdentity(t.Context(), "slack", "T1/U1", u.ID), db.SetMember(t.Context(), p.ID, u.ID, store.RoleApprover),
		db.BindChannel(t.Context(), "slack", "T1/C1", p.ID, "slack:T1/U1")} {
		if err != nil {
			t.Fatal(err)
		}
	}

	// The card is added on the command line, before hero serve starts:
	// its issue is opened at once, its Slack message when serve starts.
	if out, _, err := hero(t, env, "", false, "card", "add", "--project", "web", "Fix the README typo", "--body", "It says Helo."); err != nil || !strings.Contains(out, "created in To do: https://github.com/acme/web/issues/1") {
		t.Fatalf("card add: %v %q", err, out)
	}

	base, logs := startServe(t, env)
	link := adminLink(t, logs)

	// The settings page, logged in with the admin link.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(path string) string {
		t.Helper()
		resp, err := browser.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	get(link)
	page := get("/settings/projects/web/board")
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("no board page:\n%s\n%s", page, logs.String())
	}
	postForm := func(path string, f url.Values) *http.Response {
		t.Helper()
		f.Set("csrf", csrf[1])
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	var card *store.KanbanCard
	enginetest.Eventually(t, "the card", func() bool {
		cs, _ := db.ProjectBoards(t.Context(), p.ID)
		if len(cs) == 0 {
			return false
		}
		cards, _ := db.BoardCards(t.Context(), cs[0].ID)
		if len(cards) == 1 && cards[0].IssueNumber > 0 {
			card = &cards[0]
		}
		return card != nil
	})
	// On GitHub: an issue labelled with the column. In Slack: a message.
	if is, ok := api.Issue("acme/web", card.IssueNumber); !ok || is.Title != "Fix the README typo" || len(is.Labels) != 1 || is.Labels[0] != "hero:to-do" {
		t.Fatalf("issue: %+v", is)
	}
	var cardMsg slackMsg
	enginetest.Eventually(t, "the card in Slack", func() bool {
		ms := slk.find(func(m slackMsg) bool {
			return m.method == "chat.postMessage" && m.channel == "C1" && strings.Contains(m.blocks, card.ID)
		})
		if len(ms) > 0 {
			cardMsg = ms[0]
		}
		return len(ms) > 0
	})

	// Moved to In progress on the web page: a run starts.
	postForm("/settings/projects/web/board/cards/"+card.ID+"/move", url.Values{"column": {"in-progress"}})
	approve := func(n int) {
		t.Helper()
		var conf string
		enginetest.Eventually(t, fmt.Sprintf("question %d in the card's Slack thread", n), func() bool {
			ms := slk.find(func(m slackMsg) bool {
				return m.method == "chat.postMessage" && m.thread == cardMsg.ts && strings.Contains(m.blocks, "hero_approve")
			})
			if len(ms) >= n {
				conf = regexp.MustCompile(`"action_id":"hero_approve"[^}]*"value":"([^"]+)"`).FindStringSubmatch(ms[n-1].blocks)[1]
				return true
			}
			return false
		})
		payload := fmt.Sprintf(`{"type":"block_actions","user":{"id":"U1","username":"u","team_id":"T1"},"api_app_id":"A1","token":"x",`+
			`"container":{"type":"message","message_ts":"1","channel_id":"C1","is_ephemeral":false},"trigger_id":"tr%d",`+
			`"team":{"id":"T1","domain":"acme"},"channel":{"id":"C1","name":"dev"},"message":{"type":"message","ts":"1","text":"x"},`+
			`"actions":[{"action_id":"hero_approve","block_id":"b","text":{"type":"plain_text","text":"Approve"},"value":%q,"type":"button","action_ts":"1700000001.000001"}]}`, n, conf)
		body := []byte(url.Values{"payload": {payload}}.Encode())
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, []byte(slackSecret))
		mac.Write([]byte("v0:" + ts + ":" + string(body)))
		req, _ := http.NewRequest(http.MethodPost, base+"/slack/interactions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	approve(1) // git_push
	approve(2) // create_pull_request
	cols, _ := db.BoardColumns(t.Context(), card.BoardID)
	colName := func(id int64) string {
		for _, c := range cols {
			if c.ID == id {
				return c.Name
			}
		}
		return ""
	}
	enginetest.EventuallyWithin(t, 90*time.Second, "the card in Review with its pull request", func() bool {
		c, err := db.Card(t.Context(), card.ID)
		if err == nil {
			card = c
		}
		return err == nil && card.PRURL != "" && colName(card.ColumnID) == "Review"
	})
	enginetest.Eventually(t, "the issue labelled hero:review", func() bool {
		is, _ := api.Issue("acme/web", card.IssueNumber)
		return len(is.Labels) == 1 && is.Labels[0] == "hero:review"
	})
	if refs, err := git.Git("for-each-ref", "--format=%(refname)", "refs/heads/hero/"); err != nil || !strings.Contains(refs, "refs/heads/hero/") {
		t.Fatalf("no branch pushed: %q %v", refs, err)
	}
	// The run reported on the issue too.
	onIssue := false
	for _, c := range api.Comments() {
		if c.Issue == card.IssueNumber && strings.Contains(c.Body, "pull") {
			onIssue = true
		}
	}
	if !onIssue {
		t.Errorf("no progress on issue #%d: %+v", card.IssueNumber, api.Comments())
	}
	enginetest.Eventually(t, "the card's Slack message showing Review", func() bool {
		return len(slk.find(func(m slackMsg) bool {
			return m.method == "chat.update" && m.ts == cardMsg.ts && strings.Contains(m.text, "(Review)")
		})) > 0
	})

	// The pull request is merged on GitHub.
	merged := fmt.Sprintf(`{"action":"closed","number":9,"pull_request":{"number":9,"html_url":%q,"merged":true,"title":"x","user":{"login":"hero-bot"},"head":{"ref":"hero/x"},"base":{"ref":"main"}},`+
		`"repository":{"full_name":"acme/web","html_url":%q,"name":"web","owner":{"login":"acme"}},"sender":{"login":"maint","type":"User"}}`, card.PRURL, gh.URL+"/acme/web")
	req, _ := http.NewRequest(http.MethodPost, base+"/github/webhook", strings.NewReader(merged))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", "merge-1")
	req.Header.Set("X-Hub-Signature-256", ghsurface.Sign([]byte(hookSecret), []byte(merged)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	enginetest.Eventually(t, "the card in Done", func() bool {
		c, err := db.Card(t.Context(), card.ID)
		return err == nil && colName(c.ColumnID) == "Done"
	})
	enginetest.Eventually(t, "the issue closed", func() bool {
		is, _ := api.Issue("acme/web", card.IssueNumber)
		return is.State == "closed" && len(is.Labels) == 1 && is.Labels[0] == "hero:done"
	})
}
