package slack

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

// TestVerifyDocumentedVectors checks the verifier against Slack's own
// documented example and slack-go's test vector, with the clock set to
// their timestamps.
func TestVerifyDocumentedVectors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, secret, ts, sig, file string
	}{
		{"slack docs", "8f742231b10e8888abcd99yyyzzz85a5", "1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", "slash_command.slack-docs-signed.form.txt"},
		{"slack-go", "e6b19c573432dcc6b075501d51b51bb8", "1531431954", "v0=adada4ed31709aef585c2580ca3267678c6a8eaeb7e0c1aca3ee57b656886b2c", "event_callback.app_mention.signed.json"},
	}
	for _, c := range cases {
		body := fixture(t, c.file)
		h := http.Header{}
		h.Set("X-Slack-Request-Timestamp", c.ts)
		h.Set("X-Slack-Signature", c.sig)
		sec, _ := strconv.ParseInt(c.ts, 10, 64)
		at := time.Unix(sec, 0)
		if err := Verify(c.secret, h, body, at.Add(time.Minute)); err != nil {
			t.Errorf("%s: valid request refused: %v", c.name, err)
		}
		if got := Sign(c.secret, c.ts, body); got != c.sig {
			t.Errorf("%s: Sign = %s, want %s", c.name, got, c.sig)
		}
		if err := Verify(c.secret[:len(c.secret)-2]+"oo", h, body, at); !errors.Is(err, errBadSignature) {
			t.Errorf("%s: wrong secret: err = %v", c.name, err)
		}
		if err := Verify(c.secret, h, append(bytes.Clone(body), ' '), at); !errors.Is(err, errBadSignature) {
			t.Errorf("%s: altered body: err = %v", c.name, err)
		}
		if err := Verify(c.secret, h, body, at.Add(6*time.Minute)); !errors.Is(err, errStale) {
			t.Errorf("%s: 6 minutes late: err = %v", c.name, err)
		}
		if err := Verify(c.secret, h, body, at.Add(-6*time.Minute)); !errors.Is(err, errStale) {
			t.Errorf("%s: 6 minutes early: err = %v", c.name, err)
		}
	}
}

// TestRequestsRefused: bad signature, stale timestamp → 401, malformed →
// 400; none leaves anything in the inbox or in Slack.
func TestRequestsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body := fixture(t, "slash_command.form.txt")
	cases := []struct {
		name   string
		path   string
		body   []byte
		ts     time.Time
		header []string
		want   int
	}{
		{"bad signature", "/slack/commands", body, time.Now(), []string{"X-Slack-Signature", "v0=" + strings.Repeat("ab", 32)}, 401},
		{"no signature", "/slack/events", fixture(t, "event_callback.message.json"), time.Now(), []string{"X-Slack-Signature", ""}, 401},
		{"stale timestamp", "/slack/commands", body, time.Now().Add(-6 * time.Minute), nil, 401},
		{"future timestamp", "/slack/interactions", fixture(t, "block_actions.button.form.txt"), time.Now().Add(6 * time.Minute), nil, 401},
		{"event not JSON", "/slack/events", []byte("{not json"), time.Now(), nil, 400},
		{"command without team", "/slack/commands", []byte("text=hi&user_id=U1"), time.Now(), nil, 400},
		{"interaction without payload", "/slack/interactions", []byte("foo=bar"), time.Now(), nil, 400},
		{"interaction payload not JSON", "/slack/interactions", []byte("payload=%7Bnope"), time.Now(), nil, 400},
	}
	for _, c := range cases {
		if r := e.post(c.path, formType, c.body, c.ts, c.header...); r.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, r.StatusCode, c.want)
		}
	}
	// Slack's certificate check is answered and stores nothing.
	if r := e.post("/slack/commands", formType, []byte("ssl_check=1&token=x"), time.Now()); r.StatusCode != 200 {
		t.Errorf("ssl_check: status %d", r.StatusCode)
	}
	if n := e.deliveries(); n != 0 {
		t.Fatalf("%d deliveries stored from refused requests", n)
	}
	if calls := e.slack.snapshot(); len(calls) != 0 {
		t.Fatalf("refused requests reached Slack:\n%s", dumpCalls(calls))
	}
}

func TestURLVerification(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for file, want := range map[string]string{"url_verification.json": "here-comes-a-challenge", "url_verification.python-slack-events-api.json": "valid_challenge_token"} {
		body := fixture(t, file)
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/slack/events", bytes.NewReader(body))
		stamp := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("X-Slack-Request-Timestamp", stamp)
		req.Header.Set("X-Slack-Signature", Sign(testSecret, stamp, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		got.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || got.String() != want {
			t.Errorf("%s: %d %q, want the challenge %q", file, resp.StatusCode, got.String(), want)
		}
	}
}

// TestRetriesDoNothingTwice: Slack's retries of an event, and the same
// event_id again, are processed once.
func TestRetriesDoNothingTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.user("U1", "u1@example.com", "owner")
	mention := eventJSON("EvRetry", "app_mention", "U1", "C9", "<@UHERO> help", "1700000300.000001", "")
	for i := range 3 {
		h := []string{}
		if i > 0 {
			h = []string{"X-Slack-Retry-Num", strconv.Itoa(i), "X-Slack-Retry-Reason", "http_timeout"}
		}
		if r := e.post("/slack/events", "application/json", mention, time.Now(), h...); r.StatusCode != 200 {
			t.Fatalf("attempt %d: status %d", i, r.StatusCode)
		}
	}
	e.waitHandled("ev:EvRetry")
	// A later, unrelated delivery is processed after it: by then any
	// duplicate would have been too.
	e.post("/slack/events", "application/json", eventJSON("EvAfter", "message", "U1", "C9", "hi", "1700000300.000002", ""), time.Now())
	e.waitHandled("ev:EvAfter")
	if n := e.timesHandled("ev:EvRetry"); n != 1 {
		t.Fatalf("event processed %d times", n)
	}
	if n := e.deliveries(); n != 2 {
		t.Fatalf("%d deliveries stored, want 2", n)
	}
	calls := e.slack.waitFor(t, "the help reply", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Text, "/hero run") })
	})
	if n := count(calls, "chat.postMessage", nil); n != 1 {
		t.Fatalf("%d messages posted for one event:\n%s", n, dumpCalls(calls))
	}
	// The same slash command twice (same trigger_id) runs once too.
	e.command("U1", "C9", "help", "trig-dup")
	e.command("U1", "C9", "help", "trig-dup")
	e.waitHandled("cmd:trig-dup")
	if n := e.deliveries(); n != 3 {
		t.Fatalf("%d deliveries stored, want 3", n)
	}
}

// TestFixturesReplay feeds the recorded payloads through the signed HTTP
// routes: each is stored and processed, and hero's answers make sense.
func TestFixturesReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// The recorded payloads come from several workspaces: installed by a
	// site administrator, as hero requires.
	e.allowTeams("T01ND2P8N91", "T1DC2JH3J", "XXXXXXXXX", "T0JFD6M53")
	// slash_command.form.txt: /testcommand with empty text in an unbound
	// channel → help (empty text asks for help), only to that person.
	if r := e.post("/slack/commands", formType, fixture(t, "slash_command.form.txt"), time.Now()); r.StatusCode != 200 {
		t.Fatalf("slash command fixture: %d", r.StatusCode)
	}
	e.waitHandled("cmd:2093168434705.1761091294307.7f8d01a322363a013721e32e83af484b")
	e.slack.waitFor(t, "help as an ephemeral", func(cs []apiCall) bool {
		return has(cs, "chat.postEphemeral", func(c apiCall) bool {
			return c.User == "U01NK1K9L68" && c.Channel == "C01N639ECTY" && strings.Contains(c.Text, "/hero run")
		})
	})
	// Buttons that are not hero's are ignored.
	for _, f := range []string{"block_actions.button.form.txt", "block_actions.static_select.form.txt", "block_actions.overflow.form.txt"} {
		if r := e.post("/slack/interactions", formType, fixture(t, f), time.Now()); r.StatusCode != 200 {
			t.Fatalf("%s: %d", f, r.StatusCode)
		}
	}
	// Events: a top-level message, a bot message, an edit, a reaction —
	// none is for hero.
	for _, f := range []string{"event_callback.message.json", "event_callback.message.bot_message.json", "event_callback.message.message_changed.json", "event_callback.reaction_added.json", "event_callback.app_mention.signed.json"} {
		if r := e.post("/slack/events", "application/json", fixture(t, f), time.Now()); r.StatusCode != 200 {
			t.Fatalf("%s: %d", f, r.StatusCode)
		}
	}
	e.waitHandled("ev:Ev01NA3KCXSR")
	e.waitHandled("ev:TvBP7LRED7")
	// The signed app_mention ("hello world") from an unknown user in an
	// unbound channel asks for /hero use, in the mention's thread.
	e.slack.waitFor(t, "the unbound-channel reply", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool {
			return c.Channel == "TTTTTTTTT" && c.ThreadTS == "1531431954.000073" && strings.Contains(c.Text, "/hero use")
		})
	})
	var failed int
	e.db.Bun().NewSelect().Table("deliveries").ColumnExpr("count(*)").Where("status = 'failed'").Scan(context.Background(), &failed)
	if failed != 0 {
		t.Fatalf("%d fixture deliveries failed", failed)
	}
}

// TestCommands covers the verbs that do not start runs.
func TestCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.user("U1", "owner@example.com", "owner")
	e.user("U2", "member@example.com", "member")
	ephemeral := func(user, want string) {
		t.Helper()
		e.slack.waitFor(t, "an ephemeral with "+want, func(cs []apiCall) bool {
			return has(cs, "chat.postEphemeral", func(c apiCall) bool { return c.User == user && strings.Contains(c.Text, want) })
		})
	}
	e.command("U2", "C5", "run fix it", "t1")
	ephemeral("U2", "Run `/hero use <project>` here first")
	e.command("U2", "C5", "aprove c123", "t2")
	ephemeral("U2", "Did you mean `/hero approve`?")
	e.command("U2", "C5", "use web", "t3")
	ephemeral("U2", "Only an owner or admin")
	e.command("U1", "C5", "use nope", "t4")
	ephemeral("U1", "no project named `nope`")
	e.command("U1", "C5", "use web", "t5")
	e.slack.waitFor(t, "the binding announcement", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return strings.Contains(c.Text, "bound to project *web*") })
	})
	if p, err := e.db.ChannelProject(context.Background(), Surface, "T1/C5"); err != nil || p.ID != e.project.ID {
		t.Fatalf("binding: %v %v", p, err)
	}
	e.command("U2", "C5", "projects", "t6")
	ephemeral("U2", "← here")
	e.command("U2", "C5", "budget", "t7")
	ephemeral("U2", "per day (spent today: $0.0000")
	e.command("U2", "C5", "status", "t8")
	ephemeral("U2", "No runs yet")
	e.command("U2", "C5", "approve cnope", "t9")
	ephemeral("U2", "There is no confirmation `cnope`")
	e.command("U9", "C5", "fix it", "t10") // a Slack user hero does not know
	ephemeral("U9", "hero does not know you yet")
	// Outsiders see no project names, budgets or runs.
	e.user("U7", "outsider@example.com", "")
	e.command("U7", "C5", "projects", "t11")
	ephemeral("U7", "not a member of any project")
	e.command("U7", "C5", "budget", "t12")
	ephemeral("U7", "You are not a member of project *web*")
	// A direct message to hero is a command without a mention.
	e.post("/slack/events", "application/json", eventJSON("EvDM", "message", "U1", "D1", "projects", "1700000900.000001", ""), time.Now())
	e.slack.waitFor(t, "the answer to a direct message", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool { return c.Channel == "D1" && strings.Contains(c.Text, "`web`") })
	})
}

// TestNotInChannel: where hero was not invited, the person still hears
// back, through the slash command's response_url.
func TestNotInChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, func(_ *Config, fs *fakeSlack) { fs.notIn["CX"] = true })
	e.a.hooks = append(e.a.hooks, e.slack.srv.URL+"/hooks/")
	e.user("U1", "u1@example.com", "owner")
	e.bind("CX")
	f := url.Values{"team_id": {"T1"}, "channel_id": {"CX"}, "user_id": {"U1"}, "command": {"/hero"}, "text": {"run fix it"},
		"trigger_id": {"nic-1"}, "response_url": {e.slack.srv.URL + "/hooks/T1/1/x"}}
	e.post("/slack/commands", formType, []byte(f.Encode()), time.Now())
	e.slack.waitFor(t, "the invite hint via response_url", func(cs []apiCall) bool {
		return has(cs, "response_url", func(c apiCall) bool { return c.User == "ephemeral" && strings.Contains(c.Text, "/invite @hero") })
	})
}
