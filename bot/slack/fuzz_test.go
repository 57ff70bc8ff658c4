package slack

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/inbox"
)

// slackSeeds are the recorded payloads in testdata, as (kind, body) the
// way the intake stores them: a slash command's form, an interaction's
// JSON payload (out of its form), an event's JSON.
func slackSeeds(f *testing.F) (kinds []string, bodies [][]byte) {
	f.Helper()
	names, err := filepath.Glob("testdata/*")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		base := filepath.Base(name)
		if strings.HasPrefix(base, "render.") {
			continue // hero's own output, not a payload
		}
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		switch {
		case strings.HasPrefix(base, "slash_command."):
			kinds, bodies = append(kinds, kindCommand), append(bodies, b)
		case strings.HasPrefix(base, "block_actions."):
			form, err := url.ParseQuery(strings.TrimSpace(string(b)))
			if err != nil {
				f.Fatalf("%s: %v", base, err)
			}
			kinds, bodies = append(kinds, kindInteraction), append(bodies, []byte(form.Get("payload")))
		case strings.HasSuffix(base, ".json"):
			kinds, bodies = append(kinds, kindEvent), append(bodies, b)
		}
	}
	if len(bodies) < 10 {
		f.Fatalf("only %d recorded payloads in testdata", len(bodies))
	}
	return kinds, bodies
}

var fuzzKinds = []string{kindCommand, kindInteraction, kindEvent}

// FuzzDecodeDelivery: whatever a stored delivery holds, decoding it never
// panics; what does not decode is a permanent error (parked, not retried
// forever); what decodes as JSON was valid JSON, and the workspace it
// names is the one in the payload.
func FuzzDecodeDelivery(f *testing.F) {
	kinds, bodies := slackSeeds(f)
	for i := range bodies {
		f.Add(uint8(slicesIndex(fuzzKinds, kinds[i])), bodies[i])
	}
	f.Add(uint8(0), []byte("team_id=%zz&text=%"))
	f.Add(uint8(1), []byte(`{"type":"block_actions","team":5}`))
	f.Add(uint8(2), []byte(`{"type":"event_callback","event":{"type":"app_mention","text":"<@U1|x> <@"}}`))
	f.Add(uint8(3), []byte(`{}`))
	f.Fuzz(func(t *testing.T, k uint8, payload []byte) {
		kind := "bogus"
		if int(k) < len(fuzzKinds) {
			kind = fuzzKinds[k]
		}
		d, err := decode(kind, payload)
		if err != nil {
			if !errors.Is(err, inbox.ErrPermanent) {
				t.Fatalf("decode(%s) failed without being permanent: %v", kind, err)
			}
			return
		}
		if kind == "bogus" {
			t.Fatal("an unknown kind decoded")
		}
		team := d.team()
		switch kind {
		case kindCommand:
			form, _ := url.ParseQuery(string(payload))
			if team != form.Get("team_id") {
				t.Fatalf("command team %q, form says %q", team, form.Get("team_id"))
			}
		case kindInteraction, kindEvent:
			if !json.Valid(payload) {
				t.Fatalf("%s decoded from invalid JSON %q", kind, payload)
			}
		}
		if kind == kindEvent {
			// The mention stripping onEvent does on the text.
			_ = mentionRE.ReplaceAllString(d.ev.Event.Text, "")
		}
	})
}

func slicesIndex(s []string, v string) int {
	for i := range s {
		if s[i] == v {
			return i
		}
	}
	return len(s)
}

// FuzzIntake: a correctly signed request to any of the three request
// URLs, with any body, is stored and acknowledged (200), or refused as
// malformed (400) — never a server error, never a panic.
func FuzzIntake(f *testing.F) {
	kinds, bodies := slackSeeds(f)
	paths := map[string]string{kindCommand: "/slack/commands", kindInteraction: "/slack/interactions", kindEvent: "/slack/events"}
	for i := range bodies {
		body := bodies[i]
		if kinds[i] == kindInteraction {
			body = []byte(url.Values{"payload": {string(body)}}.Encode())
		}
		f.Add(uint8(slicesIndex(fuzzKinds, kinds[i])), body)
	}
	f.Add(uint8(0), []byte("ssl_check=1"))
	f.Add(uint8(1), []byte("payload=%7B%7D"))
	f.Add(uint8(2), []byte(`{"type":"url_verification","challenge":"<script>"}`))
	e := newEnv(f, nil)
	handlers := map[string]http.HandlerFunc{kindCommand: e.a.serveCommand, kindInteraction: e.a.serveInteraction, kindEvent: e.a.serveEvent}
	f.Fuzz(func(t *testing.T, k uint8, body []byte) {
		kind := fuzzKinds[int(k)%len(fuzzKinds)]
		req := httptest.NewRequest(http.MethodPost, paths[kind], bytes.NewReader(body))
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", Sign(testSecret, ts, body))
		rec := httptest.NewRecorder()
		handlers[kind](rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("%s with %q: status %d %s", paths[kind], body, rec.Code, rec.Body)
		}
	})
}
