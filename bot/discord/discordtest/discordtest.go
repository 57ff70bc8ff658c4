// Package discordtest is a fake Discord for tests: the REST API
// (messages, threads, edits, interaction responses and follow-ups,
// command registration, 429s with retry_after) on httptest, a gateway
// websocket speaking HELLO / IDENTIFY / READY / MESSAGE_CREATE, and
// builders for the payloads Discord sends, written from the documented
// fields. The real discordgo client talks to it through DISCORD_API_URL.
package discordtest

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Call is one request the fake received.
type Call struct {
	Method, Path string
	Auth         string
	Body         map[string]any
	At           time.Time
	Status       int
}

// Content is the request's "content" field.
func (c Call) Content() string { s, _ := c.Body["content"].(string); return s }

// JSON is the request body as JSON text.
func (c Call) JSON() string { b, _ := json.Marshal(c.Body); return string(b) }

// Message is a message as the fake holds it (after edits).
type Message struct {
	ID, ChannelID, Content string
	Components             []any
	Flags                  int
	Edits                  int
}

// Channel is a channel as the fake holds it: a text channel (type 0), a
// thread (11, with its parent), a forum (15, with its tags) or a forum
// post (a thread in a forum, with its applied tags).
type Channel struct {
	ID, GuildID, ParentID, Name string
	Type                        int
	AvailableTags               []Tag    // a forum's tags, in order
	AppliedTags                 []string // a post's tag ids
	Archived                    bool     // a thread Discord archived (inactive)
	OwnerID                     string   // a thread's creator
	Edits                       int      // PATCHes of the channel
}

// Tag is a forum tag.
type Tag struct {
	ID, Name  string
	Moderated bool
}

// Server is the fake REST API.
type Server struct {
	*httptest.Server
	t     testing.TB
	token string
	BotID string

	mu       sync.Mutex
	calls    []Call
	msgs     map[string]*Message
	order    []string
	threads  map[string]string // thread id → parent channel
	channels map[string]*Channel
	commands map[string][]any // "global" or guild id → last overwrite
	limits   []limit
	failures []failure
	lose     []failure // requests that take effect but whose reply is lost
	gateway  string
	starts   int // session_start_limit.remaining; -1: plenty
	nextID   int64
	changed  chan struct{}
	audit    []AuditEntry
	// onThreadUpdate hears every change of a thread's tags, as Discord's
	// THREAD_UPDATE (SetThreadUpdates).
	onThreadUpdate func(channel []byte)
}

// AuditEntry is a THREAD_UPDATE entry of a guild's audit log: who set a
// thread's applied tags.
type AuditEntry struct {
	ID, GuildID, UserID, ThreadID string
	Old, New                      []string
}

type failure struct {
	method, prefix string
	status         int // 0: the connection is dropped
}

type limit struct {
	method, prefix string
	retryAfter     float64
}

// NewServer starts a fake accepting the bot token token; hero's own user
// id is botID.
func NewServer(t testing.TB, token, botID string) *Server {
	s := &Server{t: t, token: token, BotID: botID, msgs: map[string]*Message{}, threads: map[string]string{}, channels: map[string]*Channel{},
		commands: map[string][]any{}, starts: -1, nextID: time.Now().UnixNano() % 1e9, changed: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// APIURL is what DISCORD_API_URL is set to.
func (s *Server) APIURL() string { return s.URL + "/api/v10" }

// SetGateway makes GET /gateway(/bot) point at a websocket URL.
func (s *Server) SetGateway(wsURL string) { s.mu.Lock(); s.gateway = wsURL; s.mu.Unlock() }

// SetSessionStarts sets session_start_limit.remaining.
func (s *Server) SetSessionStarts(n int) { s.mu.Lock(); s.starts = n; s.mu.Unlock() }

// RateLimitNext answers the next request whose method and path (under
// the API root) match with 429 and retry_after seconds.
func (s *Server) RateLimitNext(method, pathPrefix string, retryAfter float64) {
	s.mu.Lock()
	s.limits = append(s.limits, limit{method, pathPrefix, retryAfter})
	s.mu.Unlock()
}

// FailNext answers the next request whose method and path (under the
// API root) match with status and Discord's error body, as a passing
// outage does; status 0 drops the connection instead (a network error).
func (s *Server) FailNext(method, pathPrefix string, status int) {
	s.mu.Lock()
	s.failures = append(s.failures, failure{method, pathPrefix, status})
	s.mu.Unlock()
}

// LoseReplyNext makes the next request whose method and path match take
// effect but drops the connection instead of answering: a timeout after
// success, whose outcome the client never learns.
func (s *Server) LoseReplyNext(method, pathPrefix string) {
	s.mu.Lock()
	s.lose = append(s.lose, failure{method: method, prefix: pathPrefix})
	s.mu.Unlock()
}

// Calls returns every request so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Messages returns the messages posted in a channel (threads are
// channels), oldest first, as edited since.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, id := range s.order {
		if m := s.msgs[id]; m.ChannelID == channel {
			out = append(out, *m)
		}
	}
	return out
}

// Message returns one message by id.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.msgs[id]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// Threads returns thread id → parent channel.
func (s *Server) Threads() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.threads {
		out[k] = v
	}
	return out
}

// AddChannel makes a channel known (GET /channels/{id} finds it).
func (s *Server) AddChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := c
	s.channels[c.ID] = &cp
	if c.ParentID != "" && (c.Type == 11 || c.Type == 12) {
		s.threads[c.ID] = c.ParentID
	}
}

// Archive archives a thread, as Discord does after its inactivity
// period.
func (s *Server) Archive(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.channels[id]; c != nil {
		c.Archived = true
	}
}

// Channel returns a channel as it is now.
func (s *Server) Channel(id string) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[id]
	if !ok {
		return Channel{}, false
	}
	out := *c
	out.AvailableTags = append([]Tag(nil), c.AvailableTags...)
	out.AppliedTags = append([]string(nil), c.AppliedTags...)
	return out, true
}

// SetThreadUpdates makes every change of a thread's tags (hero's or a
// person's) call f with the thread as a THREAD_UPDATE carries it (pass
// it to Gateway.DispatchEvent).
func (s *Server) SetThreadUpdates(f func(channel []byte)) {
	s.mu.Lock()
	s.onThreadUpdate = f
	s.mu.Unlock()
}

// SetTags is a person (user) changing a forum post's tags in Discord:
// the post changes, the audit log records who did it, and the thread
// update is sent.
func (s *Server) SetTags(thread, user string, tags []string) {
	s.mu.Lock()
	c := s.channels[thread]
	if c == nil {
		s.mu.Unlock()
		s.t.Fatalf("discordtest: SetTags on unknown thread %s", thread)
		return
	}
	f, ev := s.setTagsLocked(c, user, tags)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if f != nil {
		f(ev)
	}
}

// setTagsLocked applies tags to a post and records the audit entry; it
// returns the update hook and its event, to be called unlocked.
func (s *Server) setTagsLocked(c *Channel, user string, tags []string) (func([]byte), []byte) {
	old := c.AppliedTags
	c.AppliedTags = append([]string{}, tags...)
	c.Edits++
	s.audit = append(s.audit, AuditEntry{ID: s.id(), GuildID: s.guildOf(c), UserID: user, ThreadID: c.ID, Old: old, New: c.AppliedTags})
	ev, _ := json.Marshal(channelJSON(c))
	return s.onThreadUpdate, ev
}

// Commands returns the commands last installed globally ("") or in a
// guild.
func (s *Server) Commands(guild string) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if guild == "" {
		guild = "global"
	}
	return s.commands[guild]
}

// WaitFor polls cond over the calls until it holds or timeout passes.
func (s *Server) WaitFor(t testing.TB, what string, timeout time.Duration, cond func(*Server) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond(s) {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, c := range s.Calls() {
				fmt.Fprintf(&b, "  %d %s %s %s\n", c.Status, c.Method, c.Path, oneLine(c.JSON()))
			}
			t.Fatalf("timed out waiting for %s; calls:\n%s", what, b.String())
		}
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func oneLine(s string) string {
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (s *Server) id() string {
	s.nextID++
	return strconv.FormatInt(Snowflake(time.Now())+s.nextID%4096, 10)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/api/v10")
	s.mu.Lock()
	_, lose := take(&s.lose, r.Method, path)
	s.mu.Unlock()
	if !lose {
		s.handle(w, r)
		return
	}
	s.handle(&discardWriter{header: http.Header{}}, r)
	if !hangUp(w) {
		w.WriteHeader(http.StatusBadGateway)
	}
}

// take removes and returns the first of *fs that the request matches.
func take(fs *[]failure, method, path string) (failure, bool) {
	for i, f := range *fs {
		if f.method == method && strings.HasPrefix(path, f.prefix) {
			*fs = append((*fs)[:i], (*fs)[i+1:]...)
			return f, true
		}
	}
	return failure{}, false
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

// discardWriter takes a reply nobody receives.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(raw) > 0 {
		json.Unmarshal(raw, &body)
	}
	path := strings.TrimPrefix(r.URL.Path, "/api/v10")
	s.mu.Lock()
	defer func() {
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}()
	rec := func(status int) {
		s.calls = append(s.calls, Call{Method: r.Method, Path: path, Auth: r.Header.Get("Authorization"), Body: body, At: time.Now(), Status: status})
	}
	w.Header().Set("Content-Type", "application/json")
	bucket := r.Method + " " + routeOf(path)
	w.Header().Set("X-RateLimit-Limit", "5")
	w.Header().Set("X-RateLimit-Remaining", "4")
	w.Header().Set("X-RateLimit-Reset-After", "0.001")
	w.Header().Set("X-RateLimit-Bucket", hex.EncodeToString([]byte(bucket))[:16])
	for i, l := range s.limits {
		if l.method == r.Method && strings.HasPrefix(path, l.prefix) {
			s.limits = append(s.limits[:i], s.limits[i+1:]...)
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset-After", strconv.FormatFloat(l.retryAfter, 'f', 3, 64))
			w.Header().Set("Retry-After", strconv.Itoa(int(l.retryAfter)+1))
			w.WriteHeader(http.StatusTooManyRequests)
			json.NewEncoder(w).Encode(map[string]any{"message": "You are being rate limited.", "retry_after": l.retryAfter, "global": false})
			rec(429)
			return
		}
	}
	if f, ok := take(&s.failures, r.Method, path); ok {
		rec(f.status)
		if f.status == 0 {
			if hangUp(w) {
				return
			}
			f.status = http.StatusBadGateway
		}
		w.WriteHeader(f.status)
		json.NewEncoder(w).Encode(map[string]any{"message": "500: Internal Server Error", "code": 0})
		return
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	botAuth := r.Header.Get("Authorization") == "Bot "+s.token
	reply := func(status int, v any) {
		rec(status)
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	str := func(k string) string { v, _ := body[k].(string); return v }
	comps := func() []any { c, _ := body["components"].([]any); return c }
	switch {
	case parts[0] == "webhooks" && len(parts) >= 3:
		// Interaction webhooks authenticate with their token in the path.
		switch {
		case r.Method == http.MethodPatch && len(parts) == 5 && parts[3] == "messages":
			key := "wh:" + parts[2] + ":" + parts[4]
			m := s.msgs[key]
			if m == nil {
				m = &Message{ID: s.id()}
				s.msgs[key] = m
				s.msgs[m.ID] = m
				s.order = append(s.order, m.ID)
			}
			if _, ok := body["content"]; ok {
				m.Content = str("content")
			}
			if _, ok := body["components"]; ok {
				m.Components = comps()
			}
			m.Edits++
			reply(200, s.messageJSON(m))
		case r.Method == http.MethodPost && len(parts) == 3:
			m := &Message{ID: s.id(), Content: str("content"), Components: comps()}
			if f, ok := body["flags"].(float64); ok {
				m.Flags = int(f)
			}
			s.msgs[m.ID] = m
			s.order = append(s.order, m.ID)
			reply(200, s.messageJSON(m))
		default:
			reply(404, map[string]any{"message": "Unknown Webhook", "code": 10015})
		}
		return
	case !botAuth:
		reply(401, map[string]any{"message": "401: Unauthorized", "code": 0})
		return
	}
	switch {
	case r.Method == http.MethodGet && path == "/users/@me":
		reply(200, map[string]any{"id": s.BotID, "username": "hero", "discriminator": "0", "bot": true})
	case r.Method == http.MethodGet && (path == "/gateway" || path == "/gateway/bot"):
		remaining := s.starts
		if remaining < 0 {
			remaining = 1000
		}
		reply(200, map[string]any{"url": s.gateway, "shards": 1,
			"session_start_limit": map[string]any{"total": 1000, "remaining": remaining, "reset_after": 3_600_000, "max_concurrency": 1}})
	case len(parts) >= 3 && parts[0] == "applications" && r.Method == http.MethodPut:
		var cmds []any
		json.Unmarshal(raw, &cmds)
		body = map[string]any{"commands": cmds}
		key := "global"
		if len(parts) == 5 && parts[2] == "guilds" {
			key = parts[3]
		}
		out := make([]any, 0, len(cmds))
		for _, c := range cmds {
			m, _ := c.(map[string]any)
			m["id"], m["application_id"] = s.id(), parts[1]
			out = append(out, m)
		}
		s.commands[key] = out
		reply(200, out)
	case len(parts) == 3 && parts[0] == "channels" && parts[2] == "messages" && r.Method == http.MethodPost:
		m := &Message{ID: s.id(), ChannelID: parts[1], Content: str("content"), Components: comps()}
		s.msgs[m.ID] = m
		s.order = append(s.order, m.ID)
		reply(200, s.messageJSON(m))
	case len(parts) == 4 && parts[0] == "channels" && parts[2] == "messages" && r.Method == http.MethodPatch:
		m := s.msgs[parts[3]]
		if m == nil || (m.ChannelID != parts[1] && m.ChannelID != "") {
			reply(404, map[string]any{"message": "Unknown Message", "code": 10008})
			return
		}
		if _, ok := body["content"]; ok {
			m.Content = str("content")
		}
		if _, ok := body["components"]; ok {
			m.Components = comps()
		}
		m.Edits++
		reply(200, s.messageJSON(m))
	case len(parts) == 5 && parts[0] == "channels" && parts[2] == "messages" && parts[4] == "threads" && r.Method == http.MethodPost:
		if _, inThread := s.threads[parts[1]]; inThread {
			// As Discord: a thread cannot have threads.
			reply(400, map[string]any{"message": "Cannot execute action on this channel type", "code": 50024})
			return
		}
		id := s.id()
		s.threads[id] = parts[1]
		s.channels[id] = &Channel{ID: id, Type: 11, ParentID: parts[1], Name: str("name")}
		reply(201, channelJSON(s.channels[id]))
	case len(parts) == 3 && parts[0] == "channels" && parts[2] == "threads" && r.Method == http.MethodPost:
		// A forum post: a thread in the forum with its first message
		// (whose id is the thread's).
		forum := s.channels[parts[1]]
		if forum == nil || forum.Type != 15 {
			reply(400, map[string]any{"message": "Cannot execute action on this channel type", "code": 50024})
			return
		}
		if len(str("name")) == 0 || len(str("name")) > 100 {
			reply(400, map[string]any{"message": "Invalid Form Body", "code": 50035, "errors": map[string]any{"name": "1 to 100 characters"}})
			return
		}
		tags := stringsOf(body["applied_tags"])
		if len(tags) > 5 {
			reply(400, map[string]any{"message": "Invalid Form Body", "code": 50035, "errors": map[string]any{"applied_tags": "at most 5"}})
			return
		}
		id := s.id()
		c := &Channel{ID: id, GuildID: forum.GuildID, Type: 11, ParentID: forum.ID, Name: str("name"), AppliedTags: tags, OwnerID: s.BotID}
		s.channels[id] = c
		s.threads[id] = forum.ID
		msg, _ := body["message"].(map[string]any)
		content, _ := msg["content"].(string)
		m := &Message{ID: id, ChannelID: id, Content: content}
		s.msgs[id] = m
		s.order = append(s.order, id)
		out := channelJSON(c)
		out["message"] = s.messageJSON(m)
		reply(201, out)
	case len(parts) == 2 && parts[0] == "channels" && r.Method == http.MethodPatch:
		c := s.channels[parts[1]]
		if c == nil {
			reply(404, map[string]any{"message": "Unknown Channel", "code": 10003})
			return
		}
		if c.Archived {
			// As Discord: an archived thread takes changes only with
			// archived false.
			if a, ok := body["archived"].(bool); !ok || a {
				reply(400, map[string]any{"message": "Thread is archived", "code": 50083})
				return
			}
			c.Archived = false
		}
		if raw, ok := body["available_tags"].([]any); ok {
			if c.Type != 15 || len(raw) > 20 {
				reply(400, map[string]any{"message": "Invalid Form Body", "code": 50035, "errors": map[string]any{"available_tags": "a forum's, at most 20"}})
				return
			}
			var tags []Tag
			for _, x := range raw {
				t, _ := x.(map[string]any)
				id, _ := t["id"].(string)
				if id == "" {
					id = s.id()
				}
				name, _ := t["name"].(string)
				mod, _ := t["moderated"].(bool)
				tags = append(tags, Tag{ID: id, Name: name, Moderated: mod})
			}
			c.AvailableTags = tags
			c.Edits++
		}
		var hook func([]byte)
		var ev []byte
		if raw, ok := body["applied_tags"].([]any); ok {
			hook, ev = s.setTagsLocked(c, s.BotID, stringsOf(raw))
		}
		reply(200, channelJSON(c))
		if hook != nil {
			// Discord sends the update after answering, as its own event.
			go hook(ev)
		}
	case len(parts) == 3 && parts[0] == "guilds" && parts[2] == "audit-logs" && r.Method == http.MethodGet:
		q := r.URL.Query()
		var entries []any
		for i := len(s.audit) - 1; i >= 0; i-- { // newest first, as Discord
			e := s.audit[i]
			if e.GuildID != parts[1] || (q.Get("action_type") != "" && q.Get("action_type") != "111") || (q.Get("user_id") != "" && q.Get("user_id") != e.UserID) {
				continue
			}
			entries = append(entries, map[string]any{"id": e.ID, "user_id": e.UserID, "target_id": e.ThreadID, "action_type": 111,
				"changes": []any{map[string]any{"key": "applied_tags", "old_value": e.Old, "new_value": e.New}}})
		}
		if entries == nil {
			entries = []any{}
		}
		reply(200, map[string]any{"audit_log_entries": entries, "users": []any{}, "threads": []any{}, "webhooks": []any{}, "integrations": []any{}})
	case len(parts) == 4 && parts[0] == "guilds" && parts[2] == "threads" && parts[3] == "active" && r.Method == http.MethodGet:
		// The guild's threads that are not archived, with the members
		// list Discord sends (the bot's own memberships: none here).
		threads := []any{}
		for _, c := range s.channels {
			if (c.Type == 11 || c.Type == 12) && !c.Archived && s.guildOf(c) == parts[1] {
				threads = append(threads, channelJSON(c))
			}
		}
		reply(200, map[string]any{"threads": threads, "members": []any{}})
	case len(parts) == 4 && parts[0] == "channels" && parts[2] == "messages" && r.Method == http.MethodGet:
		m := s.msgs[parts[3]]
		if m == nil || m.ChannelID != parts[1] {
			reply(404, map[string]any{"message": "Unknown Message", "code": 10008})
			return
		}
		reply(200, s.messageJSON(m))
	case len(parts) == 2 && parts[0] == "channels" && r.Method == http.MethodGet:
		c := s.channels[parts[1]]
		if c == nil {
			reply(404, map[string]any{"message": "Unknown Channel", "code": 10003})
			return
		}
		reply(200, channelJSON(c))
	default:
		reply(404, map[string]any{"message": "404: Not Found", "code": 0})
	}
}

// stringsOf is the strings of a JSON list (none when v is no list).
func stringsOf(v any) []string {
	xs, _ := v.([]any)
	out := []string{}
	for _, x := range xs {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// guildOf is a channel's guild, or its parent's.
func (s *Server) guildOf(c *Channel) string {
	if c.GuildID == "" && s.channels[c.ParentID] != nil {
		return s.channels[c.ParentID].GuildID
	}
	return c.GuildID
}

func channelJSON(c *Channel) map[string]any {
	out := map[string]any{"id": c.ID, "type": c.Type, "name": c.Name}
	if c.OwnerID != "" {
		out["owner_id"] = c.OwnerID
	}
	if c.GuildID != "" {
		out["guild_id"] = c.GuildID
	}
	if c.ParentID != "" {
		out["parent_id"] = c.ParentID
	}
	if c.Type == 15 {
		tags := []any{}
		for _, t := range c.AvailableTags {
			tags = append(tags, map[string]any{"id": t.ID, "name": t.Name, "moderated": t.Moderated, "emoji_id": nil, "emoji_name": nil})
		}
		out["available_tags"] = tags
	}
	if c.Type == 11 || c.Type == 12 {
		out["applied_tags"] = append([]string{}, c.AppliedTags...)
		out["thread_metadata"] = map[string]any{"archived": c.Archived, "auto_archive_duration": 1440, "locked": false}
	}
	return out
}

func (s *Server) messageJSON(m *Message) map[string]any {
	c := m.Components
	if c == nil {
		c = []any{}
	}
	return map[string]any{"id": m.ID, "channel_id": m.ChannelID, "content": m.Content, "components": c, "flags": m.Flags,
		"author": map[string]any{"id": s.BotID, "username": "hero", "bot": true}, "timestamp": time.Now().UTC().Format(time.RFC3339)}
}

// routeOf is a path with ids replaced, for the bucket header.
func routeOf(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if _, err := strconv.ParseInt(s, 10, 64); err == nil && i > 2 {
			parts[i] = "id"
		}
	}
	return strings.Join(parts, "/")
}

// discordEpoch is the first millisecond of 2015, where snowflakes count
// from.
const discordEpoch = 1420070400000

// Snowflake is a Discord id made at t.
func Snowflake(t time.Time) int64 { return (t.UnixMilli() - discordEpoch) << 22 }

// NewID returns a fresh snowflake string for now (distinct per call).
func NewID() string {
	idMu.Lock()
	defer idMu.Unlock()
	idSeq++
	return strconv.FormatInt(Snowflake(time.Now())+idSeq%(1<<22), 10)
}

var (
	idMu  sync.Mutex
	idSeq int64
)

// Key is an application's signing key pair.
type Key struct {
	Public  ed25519.PublicKey
	Private ed25519.PrivateKey
}

// NewKey makes a key pair; PublicHex is DISCORD_PUBLIC_KEY.
func NewKey(t testing.TB) Key {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Key{pub, priv}
}

// PublicHex is the public key as the developer portal shows it.
func (k Key) PublicHex() string { return hex.EncodeToString(k.Public) }

// Sign sets Discord's signature headers on req for body, at time ts.
func (k Key) Sign(req *http.Request, body []byte, ts time.Time) {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	req.Header.Set("X-Signature-Timestamp", stamp)
	req.Header.Set("X-Signature-Ed25519", hex.EncodeToString(ed25519.Sign(k.Private, append([]byte(stamp), body...))))
}

// Actor is who sends an interaction or message, and where: Guild ""
// is a direct message with the bot; Parent set makes Channel a public
// thread of that channel.
type Actor struct{ Guild, Channel, User, Parent string }

func member(user string) map[string]any {
	return map[string]any{"user": map[string]any{"id": user, "username": "user" + user, "discriminator": "0", "global_name": nil},
		"roles": []any{}, "joined_at": "2026-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false, "permissions": "2248473465835073"}
}

// Command is an APPLICATION_COMMAND interaction for `/hero text` (type 2,
// data.type 1, one string option "text"); id is the interaction id and
// token its webhook token.
func Command(appID, id, token string, a Actor, text string) []byte {
	data := map[string]any{"id": "1", "name": "hero", "type": 1}
	if text != "" {
		data["options"] = []any{map[string]any{"name": "text", "type": 3, "value": text}}
	}
	return interaction(appID, id, token, 2, a, data, nil)
}

// Click is a MESSAGE_COMPONENT interaction (type 3) for a button with
// customID on message messageID.
func Click(appID, id, token string, a Actor, messageID, customID string) []byte {
	msg := map[string]any{"id": messageID, "channel_id": a.Channel, "content": "", "type": 0,
		"author": map[string]any{"id": "0", "username": "hero", "bot": true}}
	return interaction(appID, id, token, 3, a, map[string]any{"custom_id": customID, "component_type": 2}, msg)
}

func interaction(appID, id, token string, typ int, a Actor, data, msg map[string]any) []byte {
	in := map[string]any{"id": id, "application_id": appID, "type": typ, "data": data, "guild_id": a.Guild,
		"channel_id": a.Channel, "channel": map[string]any{"id": a.Channel, "type": 0, "guild_id": a.Guild},
		"member": member(a.User), "token": token, "version": 1, "locale": "en-US", "guild_locale": "en-US",
		"app_permissions": "2248473465835073", "entitlements": []any{}, "authorizing_integration_owners": map[string]any{"0": a.Guild}, "context": 0}
	switch {
	case a.Guild == "":
		// A direct message: the user, not a member; no guild.
		delete(in, "guild_id")
		delete(in, "guild_locale")
		delete(in, "member")
		in["user"] = member(a.User)["user"]
		in["channel"] = map[string]any{"id": a.Channel, "type": 1, "recipients": []any{member(a.User)["user"]}}
		in["authorizing_integration_owners"] = map[string]any{"0": "0"}
		in["context"] = 1
	case a.Parent != "":
		in["channel"] = map[string]any{"id": a.Channel, "type": 11, "guild_id": a.Guild, "parent_id": a.Parent, "name": "a thread",
			"thread_metadata": map[string]any{"archived": false, "auto_archive_duration": 1440, "locked": false}}
	}
	if msg != nil {
		in["message"] = msg
	}
	b, _ := json.Marshal(in)
	return b
}

// Ping is the PING interaction Discord sends to check the endpoint.
func Ping(appID string) []byte {
	b, _ := json.Marshal(map[string]any{"id": NewID(), "application_id": appID, "type": 1, "token": "ping-token", "version": 1})
	return b
}
