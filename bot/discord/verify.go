package discord

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// replayWindow is how far an interaction's timestamp may be from now. A
// signed request captured on the way is refused once it is older.
const replayWindow = 5 * time.Minute

var (
	errBadSignature = errors.New("invalid Discord signature")
	errStale        = errors.New("request timestamp is outside the 5-minute window")
)

// ParsePublicKey reads the application's public key as the developer
// portal shows it (64 hex digits).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("DISCORD_PUBLIC_KEY must be the application's public key, %d hex digits (got %d characters)", 2*ed25519.PublicKeySize, len(s))
	}
	return ed25519.PublicKey(b), nil
}

// Verify checks Discord's request signature: X-Signature-Ed25519 is the
// Ed25519 signature of X-Signature-Timestamp followed by the raw body,
// made with the application's key. The timestamp must be within five
// minutes of now.
func Verify(key ed25519.PublicKey, h http.Header, body []byte, now time.Time) error {
	sig, ts := h.Get("X-Signature-Ed25519"), h.Get("X-Signature-Timestamp")
	if sig == "" || ts == "" {
		return fmt.Errorf("%w: missing X-Signature-Ed25519 or X-Signature-Timestamp", errBadSignature)
	}
	raw, err := hex.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("%w: malformed signature", errBadSignature)
	}
	msg := make([]byte, 0, len(ts)+len(body))
	msg = append(append(msg, ts...), body...)
	if !ed25519.Verify(key, msg, raw) {
		return errBadSignature
	}
	// Checked after the signature, so the timestamp is Discord's own.
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not a number", errBadSignature, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > replayWindow || d < -replayWindow {
		return errStale
	}
	return nil
}

// Sign returns the X-Signature-Ed25519 value Discord would send for a
// body at a timestamp (tests, tools).
func Sign(key ed25519.PrivateKey, timestamp string, body []byte) string {
	return hex.EncodeToString(ed25519.Sign(key, append([]byte(timestamp), body...)))
}
