package slack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
)

// fakeSlack speaks the Web API's wire format for the methods hero calls
// and records every call, the way Slack would have received it.
type fakeSlack struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	calls    []apiCall
	nextTS   int
	users    map[string]fakeUser // by user id
	limit429 map[string]int      // method → how many 429s to answer first
	// fail answers a method's next calls with these statuses, in order
	// (0 drops the connection: a network error).
	fail map[string][]int
	// loseReply makes a method's next calls succeed but drops the
	// connection instead of answering: hero never learns the outcome.
	loseReply map[string]int
	// posted holds the messages posted, by channel, oldest first (what
	// conversations.history answers).
	posted  map[string][]fakeMessage
	changed chan struct{}
	// notIn lists channels hero is not a member of.
	notIn map[string]bool
	// ws, when set, serves the Socket Mode websocket at /ws.
	ws http.HandlerFunc
}

// fakeMessage is a message as conversations.history returns it.
type fakeMessage struct {
	TS       string
	Text     string
	Metadata json.RawMessage // as posted, "" without
}

type fakeUser struct {
	email     string
	confirmed bool
}

// apiCall is one recorded Web API call.
type apiCall struct {
	Method   string
	Channel  string
	TS       string // the message ts (chat.update) or the posted ts (chat.postMessage)
	ThreadTS string
	User     string
	Text     string
	Blocks   string
	Token    string // the bearer token the call was made with
	Unfurl   string // unfurl_links/unfurl_media as sent ("false/false")
	Metadata string // the message metadata as sent (JSON)
	At       time.Time
}

func newFakeSlack(t testing.TB) *fakeSlack {
	f := &fakeSlack{t: t, users: map[string]fakeUser{}, notIn: map[string]bool{}, limit429: map[string]int{}, fail: map[string][]int{}, loseReply: map[string]int{}, posted: map[string][]fakeMessage{}, changed: make(chan struct{}, 1), nextTS: 1000}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) apiURL() string { return f.srv.URL + "/api/" }

func (f *fakeSlack) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ws" && f.ws != nil {
		f.ws(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/hooks/") {
		var msg map[string]any
		json.NewDecoder(r.Body).Decode(&msg)
		f.mu.Lock()
		f.calls = append(f.calls, apiCall{Method: "response_url", Text: fmt.Sprint(msg["text"]), User: fmt.Sprint(msg["response_type"]), At: time.Now()})
		f.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/upload/") {
		w.WriteHeader(http.StatusOK)
		return
	}
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var body map[string]any
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		json.NewDecoder(r.Body).Decode(&body)
	}
	get := func(k string) string {
		if v := r.Form.Get(k); v != "" {
			return v
		}
		if s, ok := body[k].(string); ok {
			return s
		}
		return ""
	}
	f.mu.Lock()
	if f.limit429[method] > 0 {
		f.limit429[method]--
		f.calls = append(f.calls, apiCall{Method: method + ":429", Channel: get("channel"), Text: get("text"), At: time.Now()})
		f.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if fs := f.fail[method]; len(fs) > 0 {
		status := fs[0]
		f.fail[method] = fs[1:]
		f.calls = append(f.calls, apiCall{Method: fmt.Sprintf("%s:%d", method, status), Channel: get("channel"), Text: get("text"), At: time.Now()})
		f.mu.Unlock()
		if status == 0 {
			if hangUp(w) {
				return
			}
			status = http.StatusBadGateway
		}
		w.WriteHeader(status)
		return
	}
	if f.notIn[get("channel")] && strings.HasPrefix(method, "chat.") {
		f.calls = append(f.calls, apiCall{Method: method + ":not_in_channel", Channel: get("channel"), At: time.Now()})
		f.mu.Unlock()
		f.reply(w, map[string]any{"ok": false, "error": "not_in_channel"})
		return
	}
	c := apiCall{Method: method, Channel: get("channel"), TS: get("ts"), ThreadTS: get("thread_ts"), User: get("user"), Text: get("text"), Blocks: get("blocks"), At: time.Now(),
		Token: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), Unfurl: get("unfurl_links") + "/" + get("unfurl_media"), Metadata: get("metadata")}
	if c.Token == "" {
		c.Token = get("token")
	}
	var resp any
	switch method {
	case "chat.postMessage":
		f.nextTS++
		c.TS = fmt.Sprintf("%d.%06d", time.Now().Unix(), f.nextTS) // a real clock: history's oldest filters by it
		resp = map[string]any{"ok": true, "channel": c.Channel, "ts": c.TS}
		f.posted[c.Channel] = append(f.posted[c.Channel], fakeMessage{TS: c.TS, Text: c.Text, Metadata: json.RawMessage(c.Metadata)})
	case "conversations.history":
		// Newest first, from oldest on, metadata only when asked for
		// (as Slack does); no paging needed at the fake's sizes.
		var msgs []map[string]any
		ms := f.posted[c.Channel]
		for i := len(ms) - 1; i >= 0; i-- {
			if o, err := strconv.ParseFloat(get("oldest"), 64); err == nil && tsSeconds(ms[i].TS) < o {
				continue
			}
			m := map[string]any{"type": "message", "user": "UHERO", "bot_id": "BHERO", "ts": ms[i].TS, "text": ms[i].Text}
			if get("include_all_metadata") == "1" && len(ms[i].Metadata) > 0 {
				m["metadata"] = ms[i].Metadata
			}
			msgs = append(msgs, m)
		}
		resp = map[string]any{"ok": true, "messages": msgs, "has_more": false}
	case "chat.update":
		resp = map[string]any{"ok": true, "channel": c.Channel, "ts": c.TS, "text": c.Text}
	case "chat.postEphemeral":
		resp = map[string]any{"ok": true, "message_ts": "1700000000.000001"}
	case "auth.test":
		resp = map[string]any{"ok": true, "user_id": "UHERO", "team_id": "T1", "bot_id": "BHERO"}
	case "users.info":
		u, ok := f.users[get("user")]
		if !ok {
			resp = map[string]any{"ok": false, "error": "user_not_found"}
			break
		}
		resp = map[string]any{"ok": true, "user": map[string]any{"id": get("user"), "is_email_confirmed": u.confirmed, "profile": map[string]any{"email": u.email}}}
	case "files.getUploadURLExternal":
		resp = map[string]any{"ok": true, "upload_url": f.srv.URL + "/upload/F1", "file_id": "F1"}
	case "files.completeUploadExternal":
		var files []map[string]any
		json.Unmarshal([]byte(get("files")), &files)
		c.ThreadTS = get("thread_ts")
		c.Channel = get("channel_id")
		resp = map[string]any{"ok": true, "files": []map[string]any{{"id": "F1", "title": "output"}}}
	case "oauth.v2.access":
		if get("code") != "good-code" {
			resp = map[string]any{"ok": false, "error": "invalid_code"}
			break
		}
		resp = map[string]any{"ok": true, "access_token": "xoxb-installed", "token_type": "bot", "bot_user_id": "UBOT2",
			"team": map[string]any{"id": "T2", "name": "Second"}, "authed_user": map[string]any{"id": "U9"}}
	case "views.publish":
		c.User = get("user_id")
		view, _ := json.Marshal(body["view"])
		c.Blocks = string(view)
		resp = map[string]any{"ok": true, "view": map[string]any{"id": "V1"}}
	case "apps.connections.open":
		resp = map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws"}
	default:
		resp = map[string]any{"ok": false, "error": "unknown_method"}
	}
	f.calls = append(f.calls, c)
	lose := f.loseReply[method] > 0
	if lose {
		f.loseReply[method]--
	}
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
	if lose && hangUp(w) {
		return
	}
	f.reply(w, resp)
}

// hangUp drops the request's connection without an answer (a network
// error); false when it cannot, and nothing was written.
func hangUp(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// failNext answers method's next calls with statuses, in order (0 drops
// the connection).
func (f *fakeSlack) failNext(method string, statuses ...int) {
	f.mu.Lock()
	f.fail[method] = append(f.fail[method], statuses...)
	f.mu.Unlock()
}

func tsSeconds(ts string) float64 {
	v, _ := strconv.ParseFloat(ts, 64)
	return v
}

// loseNextReply makes method's next n calls take effect but drop the
// connection instead of answering (a timeout after success).
func (f *fakeSlack) loseNextReply(method string, n int) {
	f.mu.Lock()
	f.loseReply[method] += n
	f.mu.Unlock()
}

// snapshot returns the calls so far.
func (f *fakeSlack) snapshot() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiCall(nil), f.calls...)
}

// waitFor polls the recorded calls until match finds what it wants
// (failing after enginetest.Patience: a loaded machine is slow, not wrong).
func (f *fakeSlack) waitFor(t testing.TB, what string, match func([]apiCall) bool) []apiCall {
	t.Helper()
	deadline := time.After(enginetest.Patience)
	for {
		calls := f.snapshot()
		if match(calls) {
			return calls
		}
		select {
		case <-f.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; Slack saw:\n%s", what, dumpCalls(calls))
		}
	}
}

func dumpCalls(calls []apiCall) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "  %s ch=%s ts=%s thread=%s user=%s text=%q\n", c.Method, c.Channel, c.TS, c.ThreadTS, c.User, trunc(c.Text, 160))
	}
	return b.String()
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func has(calls []apiCall, method string, pred func(apiCall) bool) bool {
	for _, c := range calls {
		if c.Method == method && (pred == nil || pred(c)) {
			return true
		}
	}
	return false
}

func count(calls []apiCall, method string, pred func(apiCall) bool) int {
	n := 0
	for _, c := range calls {
		if c.Method == method && (pred == nil || pred(c)) {
			n++
		}
	}
	return n
}
