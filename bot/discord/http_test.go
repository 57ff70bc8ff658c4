package discord

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot/discord/discordtest"
)

// A request whose signature does not verify gets 401 and leaves nothing
// behind: Discord probes the endpoint exactly this way when its URL is
// saved. PING is answered with PONG.
func TestInteractionSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.user("200", "requester@example.com", "member")
	e.bind("300")

	id := discordtest.NewID()
	body := discordtest.Command(testApp, id, "tok", discordtest.Actor{Guild: testGuild, Channel: "300", User: "200"}, "fix the tests")
	forger := discordtest.NewKey(t)
	sign := func(k discordtest.Key, b []byte, ts time.Time) http.Header {
		req, _ := http.NewRequest("POST", "/", nil)
		k.Sign(req, b, ts)
		return req.Header
	}
	cases := []struct {
		name string
		h    http.Header
		body []byte
	}{
		{"missing", http.Header{}, body},
		{"forged key", sign(forger, body, time.Now()), body},
		{"body changed after signing", sign(e.key, body, time.Now()), []byte(strings.Replace(string(body), "fix the tests", "rm -rf the tests", 1))},
		{"stale timestamp", sign(e.key, body, time.Now().Add(-10*time.Minute)), body},
		{"not hex", http.Header{"X-Signature-Ed25519": {"zz"}, "X-Signature-Timestamp": {"1"}}, body},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/discord/interactions", strings.NewReader(string(c.body)))
		for k, v := range c.h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", c.name, resp.StatusCode)
		}
	}
	if n := e.deliveries(); n != 0 {
		t.Fatalf("%d deliveries stored from badly signed requests, want 0", n)
	}
	if calls := e.discord.Calls(); len(calls) != 0 {
		t.Fatalf("badly signed requests reached Discord's API: %+v", calls)
	}

	code, resp := e.post(discordtest.Ping(testApp), time.Now(), true)
	if code != 200 || strings.TrimSpace(resp) != `{"type":1}` {
		t.Fatalf("PING: %d %s, want PONG", code, resp)
	}
	if n := e.deliveries(); n != 0 {
		t.Fatalf("PING stored %d deliveries", n)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(nil)
	key, err := ParsePublicKey(hex.EncodeToString(pub))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":1}`)
	h := http.Header{"X-Signature-Timestamp": {"1800000000"}, "X-Signature-Ed25519": {Sign(priv, "1800000000", body)}}
	if err := Verify(key, h, body, now); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	// The timestamp is signed: moving it breaks the signature.
	h.Set("X-Signature-Timestamp", "1800000001")
	if err := Verify(key, h, body, now); err == nil {
		t.Fatal("a changed timestamp verified")
	}
	if _, err := ParsePublicKey("abc"); err == nil || !strings.Contains(err.Error(), "DISCORD_PUBLIC_KEY") {
		t.Fatalf("short key: %v", err)
	}
	if k, err := ParsePublicKey(hex.EncodeToString(pub)); err != nil || !k.Equal(pub) {
		t.Fatalf("parse key: %v", err)
	}
}

// A command is stored before it is answered, and answered within
// Discord's 3 s with a deferred response (private unless it starts work
// or binds the channel); a replayed interaction (same id, validly
// signed) is stored and handled once.
func TestInteractionAckAndReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.user("200", "requester@example.com", "member")

	start := time.Now()
	id, code, body := e.command("200", "300", "status")
	if code != 200 || time.Since(start) > 3*time.Second {
		t.Fatalf("command: %d after %s", code, time.Since(start))
	}
	var ack struct {
		Type int `json:"type"`
		Data struct {
			Flags int `json:"flags"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &ack); err != nil || ack.Type != 5 || ack.Data.Flags != 64 {
		t.Fatalf("ack %s: want a deferred ephemeral response (type 5, flags 64)", body)
	}
	e.waitHandled("ia:" + id)
	// The deferred response was replaced with the answer.
	e.discord.WaitFor(t, "the answer", 5*time.Second, func(s *discordtest.Server) bool {
		for _, c := range s.Calls() {
			if c.Method == "PATCH" && c.Path == "/webhooks/"+testApp+"/tok-"+id+"/messages/@original" && strings.Contains(c.Content(), "not bound to a project") {
				return true
			}
		}
		return false
	})

	_, _, body = e.command("200", "300", "fix the flaky test")
	ack.Data.Flags = 0
	if err := json.Unmarshal([]byte(body), &ack); err != nil || ack.Type != 5 || ack.Data.Flags != 0 {
		t.Fatalf("ack of a task %s: want a public deferred response", body)
	}

	// The same interaction again, signed: acknowledged, not stored again,
	// not handled again.
	raw := discordtest.Command(testApp, id, "tok-"+id, discordtest.Actor{Guild: testGuild, Channel: "300", User: "200"}, "status")
	if code, _ := e.post(raw, time.Now(), true); code != 200 {
		t.Fatalf("replay: %d", code)
	}
	n, err := e.db.Bun().NewSelect().Table("deliveries").Where("source = ? AND delivery_id = ?", Surface, "ia:"+id).Count(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("interaction stored %d times (%v), want once", n, err)
	}
	time.Sleep(300 * time.Millisecond) // give a wrong second handling time to show
	if k := e.timesHandled("ia:" + id); k != 1 {
		t.Fatalf("interaction handled %d times, want once", k)
	}
	answers := 0
	for _, c := range e.discord.Calls() {
		if strings.Contains(c.Path, "tok-"+id) {
			answers++
		}
	}
	if answers != 1 {
		t.Fatalf("the replayed interaction was answered %d times, want once", answers)
	}
}

// The answer comes only after the interaction is stored: when the inbox
// cannot store it, Discord gets a 500 (the person sees that it failed)
// and nothing is acknowledged, answered or done; once it can, an
// acknowledged interaction is in the database by the time the ack
// arrives.
func TestInteractionNotAcknowledgedUnlessStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.user("200", "requester@example.com", "member")
	ctx := t.Context()
	if _, err := e.db.Bun().ExecContext(ctx, `ALTER TABLE deliveries RENAME TO deliveries_away`); err != nil {
		t.Fatal(err)
	}
	lost, code, body := e.command("200", "300", "status")
	if code != http.StatusInternalServerError || strings.Contains(body, `"type"`) {
		t.Fatalf("interaction that could not be stored: %d %s, want 500 and no interaction response", code, body)
	}
	if _, err := e.db.Bun().ExecContext(ctx, `ALTER TABLE deliveries_away RENAME TO deliveries`); err != nil {
		t.Fatal(err)
	}
	stored := func(id string) int {
		n, err := e.db.Bun().NewSelect().Table("deliveries").Where("source = ? AND delivery_id = ?", Surface, "ia:"+id).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}
	id, code, _ := e.command("200", "300", "status")
	if code != 200 || stored(id) != 1 {
		t.Fatalf("acknowledged (%d) with %d stored rows, want the row committed before the ack", code, stored(id))
	}
	e.waitHandled("ia:" + id)
	if n := stored(lost); n != 0 {
		t.Fatalf("the refused interaction was stored %d times", n)
	}
	for _, c := range e.discord.Calls() {
		if strings.Contains(c.Path, "tok-"+lost) {
			t.Fatalf("the refused interaction was answered: %s %s", c.Method, c.Path)
		}
	}
}
