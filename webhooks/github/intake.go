// Package github is hero's GitHub surface: the signed webhook intake that
// persists every delivery before acknowledging it, the handler that turns
// issue comments, assignments and labels into runs (and `/hero approve`
// comments into decisions), the engine.Surface that reports a run as one
// progress comment edited in place, the engine.Forge that pushes branches
// and opens pull requests, and the credentials (a token, a GitHub App's
// installation tokens, or a user's OAuth token with refresh) they all use.
//
// Lifecycle: NewPublisher (needs no engine: the workspaces and the
// engine take its hooks) → NewService with it → Intake (mount on POST
// /github/webhook) → Run (inbox worker and periodic redelivery, until its
// context ends).
package github

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Source is the inbox source of GitHub deliveries.
const Source = "github"

// MaxBody is the largest webhook body accepted: GitHub caps payloads at
// 25 MB.
const MaxBody = 25 << 20

// Inbox stores a delivery durably; *store.InboxWriter implements it.
type Inbox interface {
	Write(ctx context.Context, source, deliveryID, event string, payload []byte) (inserted bool, err error)
}

// Intake is the http.Handler of POST /github/webhook. It verifies the
// signature before looking at anything else, stores the delivery in the
// inbox, and only then answers 2xx; the work happens later in the worker.
type Intake struct {
	secret  []byte
	inbox   Inbox
	kick    func()
	log     *slog.Logger
	maxBody int64
	timeout time.Duration
}

// NewIntake returns the webhook handler. secret is the webhook secret and
// must not be empty: an intake that accepts unsigned deliveries would let
// anyone start runs. kick (may be nil) wakes the worker after a new
// delivery is stored.
func NewIntake(secret []byte, inbox Inbox, kick func(), log *slog.Logger) (*Intake, error) {
	if len(secret) == 0 {
		return nil, errors.New("github intake: the webhook secret is empty; set GITHUB_WEBHOOK_SECRET (hero never accepts unsigned deliveries)")
	}
	if inbox == nil {
		return nil, errors.New("github intake: an inbox is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Intake{secret: secret, inbox: inbox, kick: kick, log: log, maxBody: MaxBody, timeout: 8 * time.Second}, nil
}

// VerifySignature checks an X-Hub-Signature-256 header ("sha256=<hex>")
// against body in constant time.
func VerifySignature(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign returns the X-Hub-Signature-256 value GitHub sends for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := readBody(w, r, in.maxBody)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("body larger than %d bytes", in.maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "could not read the body", http.StatusBadRequest)
		return
	}
	// The signature first: nothing about an unsigned request is trusted,
	// not even its headers.
	if !VerifySignature(in.secret, body, r.Header.Get("X-Hub-Signature-256")) {
		in.log.Warn("github webhook with a missing or bad signature", "remote", r.RemoteAddr)
		http.Error(w, "missing or bad X-Hub-Signature-256", http.StatusUnauthorized)
		return
	}
	event, delivery := r.Header.Get("X-GitHub-Event"), r.Header.Get("X-GitHub-Delivery")
	if event == "" || delivery == "" {
		http.Error(w, "X-GitHub-Event and X-GitHub-Delivery are required", http.StatusBadRequest)
		return
	}
	if len(event) > 255 || len(delivery) > 255 {
		http.Error(w, "X-GitHub-Event or X-GitHub-Delivery is too long", http.StatusBadRequest)
		return
	}
	payload, err := jsonPayload(r.Header.Get("Content-Type"), body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if event == "ping" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "pong")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), in.timeout)
	defer cancel()
	inserted, err := in.inbox.Write(ctx, Source, delivery, event, payload)
	if err != nil {
		in.log.Error("store github delivery", "delivery", delivery, "event", event, "err", err)
		http.Error(w, "could not store the delivery; redeliver it later", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !inserted {
		fmt.Fprintln(w, "duplicate delivery: already received")
		return
	}
	if in.kick != nil {
		in.kick()
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintln(w, "queued")
}

// jsonPayload returns the JSON document of a delivery: the body itself, or
// its payload field when the hook sends application/x-www-form-urlencoded.
func jsonPayload(contentType string, body []byte) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("form body does not parse: %v", err)
		}
		body = []byte(vals.Get("payload"))
	}
	if !validJSONObject(body) {
		return nil, errors.New("the payload is not a JSON object")
	}
	return body, nil
}

// readBody reads the whole body, at most limit bytes, in one allocation
// of exactly its size when the client sent Content-Length (the server's
// body reader stops there). bytes.Buffer.ReadFrom would not do: it grows
// (doubling) whenever less than 512 bytes of room are left.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength <= 0 {
		return io.ReadAll(body)
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
