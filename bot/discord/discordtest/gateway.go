package discordtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Gateway is a fake gateway websocket: HELLO on connect, READY after the
// client's IDENTIFY, HEARTBEAT_ACK for heartbeats, and MESSAGE_CREATE
// dispatches for what the test sends.
type Gateway struct {
	*httptest.Server
	t     testing.TB
	botID string

	mu         sync.Mutex
	identifies []map[string]any
	conns      []*gwConn
	changed    chan struct{}
}

type gwConn struct {
	mu  sync.Mutex
	c   *websocket.Conn
	seq int
}

func (c *gwConn) send(v map[string]any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v["op"] == 0 {
		c.seq++
		v["s"] = c.seq
	}
	return c.c.WriteJSON(v)
}

// NewGateway starts a fake gateway for the bot user botID.
func NewGateway(t testing.TB, botID string) *Gateway {
	g := &Gateway{t: t, botID: botID, changed: make(chan struct{})}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &gwConn{c: ws}
		defer ws.Close()
		if c.send(map[string]any{"op": 10, "d": map[string]any{"heartbeat_interval": 41250}}) != nil {
			return
		}
		for {
			var f struct {
				Op int             `json:"op"`
				D  json.RawMessage `json:"d"`
			}
			if err := ws.ReadJSON(&f); err != nil {
				g.drop(c)
				return
			}
			switch f.Op {
			case 1:
				c.send(map[string]any{"op": 11})
			case 2:
				var d map[string]any
				json.Unmarshal(f.D, &d)
				g.mu.Lock()
				g.identifies = append(g.identifies, d)
				g.conns = append(g.conns, c)
				g.notify()
				g.mu.Unlock()
				c.send(map[string]any{"op": 0, "t": "READY", "d": map[string]any{"v": 10, "session_id": "session-1",
					"resume_gateway_url": g.URL(), "guilds": []any{},
					"user":        map[string]any{"id": botID, "username": "hero", "discriminator": "0", "bot": true},
					"application": map[string]any{"id": "app", "flags": 0}}})
			}
		}
	}))
	t.Cleanup(g.Server.Close)
	return g
}

// URL is the websocket URL to hand out from GET /gateway/bot.
func (g *Gateway) URL() string { return "ws" + strings.TrimPrefix(g.Server.URL, "http") }

func (g *Gateway) notify() {
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *Gateway) drop(c *gwConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.conns {
		if x == c {
			g.conns = append(g.conns[:i], g.conns[i+1:]...)
		}
	}
	g.notify()
}

// Identifies returns the IDENTIFY payloads received.
func (g *Gateway) Identifies() []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]map[string]any(nil), g.identifies...)
}

// Connections is how many identified sessions are open.
func (g *Gateway) Connections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// WaitConnections waits until n identified sessions are open.
func (g *Gateway) WaitConnections(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		g.mu.Lock()
		got, ch := len(g.conns), g.changed
		g.mu.Unlock()
		if got == n {
			return
		}
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("gateway: %d identified sessions, want %d", got, n)
		}
	}
}

// Dispatch sends a MESSAGE_CREATE with message to every open session.
func (g *Gateway) Dispatch(message []byte) { g.DispatchEvent("MESSAGE_CREATE", message) }

// DispatchEvent sends a dispatch (op 0) of type name with data d, such
// as THREAD_UPDATE, to every open session.
func (g *Gateway) DispatchEvent(name string, d []byte) {
	g.mu.Lock()
	conns := append([]*gwConn(nil), g.conns...)
	g.mu.Unlock()
	for _, c := range conns {
		c.send(map[string]any{"op": 0, "t": name, "d": json.RawMessage(d)})
	}
}

// CloseAll drops every session (a network failure).
func (g *Gateway) CloseAll() {
	g.mu.Lock()
	conns := append([]*gwConn(nil), g.conns...)
	g.mu.Unlock()
	for _, c := range conns {
		c.c.Close()
	}
}

// MessageCreate is a MESSAGE_CREATE payload: a guild message by a.User in
// a.Channel, mentioning the users in mentions; replyTo, when set, is the
// id of the message it replies to and replyAuthor that message's author.
func MessageCreate(id string, a Actor, content string, mentions []string, replyTo, replyAuthor string) []byte {
	var ms []any
	for _, u := range mentions {
		ms = append(ms, map[string]any{"id": u, "username": "u" + u, "discriminator": "0"})
	}
	if ms == nil {
		ms = []any{}
	}
	m := map[string]any{"id": id, "channel_id": a.Channel, "guild_id": a.Guild, "content": content, "type": 0,
		"author":   map[string]any{"id": a.User, "username": "user" + a.User, "discriminator": "0"},
		"member":   map[string]any{"roles": []any{}, "joined_at": "2026-01-01T00:00:00.000000+00:00"},
		"mentions": ms, "mention_roles": []any{}, "mention_everyone": false, "attachments": []any{}, "embeds": []any{},
		"timestamp": time.Now().UTC().Format(time.RFC3339), "tts": false, "pinned": false}
	if a.Guild == "" { // a direct message
		delete(m, "guild_id")
		delete(m, "member")
	}
	if replyTo != "" {
		m["type"] = 19
		m["message_reference"] = map[string]any{"message_id": replyTo, "channel_id": a.Channel, "guild_id": a.Guild}
		m["referenced_message"] = map[string]any{"id": replyTo, "channel_id": a.Channel, "content": "", "type": 0,
			"author": map[string]any{"id": replyAuthor, "username": "x", "discriminator": "0"}}
	}
	b, _ := json.Marshal(m)
	return b
}
