package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Delivery event kinds stored in the inbox.
const (
	kindCommand     = "command"     // a slash command, as its form body
	kindInteraction = "interaction" // an interactivity payload (JSON)
	kindEvent       = "event"       // an Events API event_callback (JSON)
)

// maxBody bounds a request body from Slack.
const maxBody = 1 << 20

// replayWindow is how far a request's timestamp may be from now.
const replayWindow = 5 * time.Minute

var (
	errBadSignature = errors.New("invalid Slack signature")
	errStale        = errors.New("request timestamp is outside the 5-minute window")
)

// Verify checks Slack's v0 request signature: HMAC-SHA256 of
// "v0:<timestamp>:<raw body>" with the signing secret, compared in
// constant time, with the timestamp within five minutes of now.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	ts := h.Get("X-Slack-Request-Timestamp")
	sig := h.Get("X-Slack-Signature")
	if secret == "" {
		return errors.New("no signing secret configured")
	}
	if ts == "" || sig == "" {
		return fmt.Errorf("%w: missing X-Slack-Signature or X-Slack-Request-Timestamp", errBadSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not a number", errBadSignature, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > replayWindow || d < -replayWindow {
		return errStale
	}
	got, err := hex.DecodeString(strings.TrimPrefix(sig, "v0="))
	if err != nil || !strings.HasPrefix(sig, "v0=") {
		return fmt.Errorf("%w: malformed signature", errBadSignature)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", ts)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return errBadSignature
	}
	return nil
}

// Sign returns the X-Slack-Signature value Slack would send (tests, tools).
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", timestamp)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// Mount adds Slack's routes to mux: the three request URLs (only with a
// signing secret) and, when OAuth is configured, Add to Slack.
func (a *Adapter) Mount(mux *http.ServeMux) {
	if a.cfg.SigningSecret != "" {
		mux.HandleFunc("POST /slack/commands", a.serveCommand)
		mux.HandleFunc("POST /slack/interactions", a.serveInteraction)
		mux.HandleFunc("POST /slack/events", a.serveEvent)
	} else {
		a.log.Warn("SLACK_SIGNING_SECRET is not set: /slack/commands, /slack/interactions and /slack/events are not mounted (Socket Mode still works with SLACK_APP_TOKEN)")
	}
	if a.cfg.ClientID != "" && a.cfg.ClientSecret != "" && a.cfg.Sessions != nil {
		mux.HandleFunc("GET /slack/install", a.serveInstall)
		mux.HandleFunc("GET /slack/oauth/callback", a.serveOAuthCallback)
	}
}

// readVerified reads the body and checks the signature; it answers the
// request itself and returns nil when it fails.
func (a *Adapter) readVerified(w http.ResponseWriter, r *http.Request) []byte {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "request body too large or unreadable", http.StatusBadRequest)
		return nil
	}
	if err := Verify(a.cfg.SigningSecret, r.Header, body, a.cfg.Now()); err != nil {
		a.log.Warn("rejected a Slack request", "path", r.URL.Path, "err", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return nil
	}
	return body
}

// persist stores a delivery before Slack gets its 200.
func (a *Adapter) persist(w http.ResponseWriter, r *http.Request, id, kind string, body []byte) bool {
	if _, err := a.inbox.Write(r.Context(), Surface, id, kind, body); err != nil {
		a.log.Error("persist slack delivery", "delivery", id, "err", err)
		http.Error(w, "could not store the request; Slack will retry", http.StatusInternalServerError)
		return false
	}
	a.worker.Kick()
	return true
}

func contentHash(prefix string, body []byte) string {
	s := sha256.Sum256(body)
	return prefix + hex.EncodeToString(s[:16])
}

func (a *Adapter) serveCommand(w http.ResponseWriter, r *http.Request) {
	body := a.readVerified(w, r)
	if body == nil {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err == nil && form.Get("ssl_check") == "1" {
		w.WriteHeader(http.StatusOK) // Slack checking the certificate
		return
	}
	if err != nil || form.Get("team_id") == "" || form.Get("channel_id") == "" || form.Get("user_id") == "" {
		http.Error(w, "malformed slash command: want a form with team_id, channel_id and user_id", http.StatusBadRequest)
		return
	}
	id := contentHash("cmd:", body)
	if t := strings.TrimSpace(form.Get("trigger_id")); t != "" {
		id = "cmd:" + t
	}
	if a.persist(w, r, id, kindCommand, body) {
		w.WriteHeader(http.StatusOK)
	}
}

func (a *Adapter) serveInteraction(w http.ResponseWriter, r *http.Request) {
	body := a.readVerified(w, r)
	if body == nil {
		return
	}
	form, err := url.ParseQuery(string(body))
	payload := form.Get("payload")
	var head struct {
		Type      string `json:"type"`
		TriggerID string `json:"trigger_id"`
		ActionTS  string `json:"action_ts"`
	}
	if err != nil || payload == "" || json.Unmarshal([]byte(payload), &head) != nil || head.Type == "" {
		http.Error(w, "malformed interaction: want a form with a JSON payload", http.StatusBadRequest)
		return
	}
	id := contentHash("ia:", []byte(payload))
	if head.TriggerID != "" {
		id = "ia:" + head.TriggerID
	}
	if a.persist(w, r, id, kindInteraction, []byte(payload)) {
		w.WriteHeader(http.StatusOK)
	}
}

func (a *Adapter) serveEvent(w http.ResponseWriter, r *http.Request) {
	body := a.readVerified(w, r)
	if body == nil {
		return
	}
	var head struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
		EventID   string `json:"event_id"`
	}
	if err := json.Unmarshal(body, &head); err != nil || head.Type == "" {
		http.Error(w, "malformed event: want a JSON object with a type", http.StatusBadRequest)
		return
	}
	switch head.Type {
	case "url_verification":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, head.Challenge)
		return
	case "event_callback":
	default:
		w.WriteHeader(http.StatusOK) // app_rate_limited and the like: nothing to do
		return
	}
	id := contentHash("ev:", body)
	if head.EventID != "" {
		id = "ev:" + head.EventID
	}
	if a.persist(w, r, id, kindEvent, body) {
		w.WriteHeader(http.StatusOK)
	}
}
