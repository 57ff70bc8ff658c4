package discord

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// replayWindow is how far an interaction's timestamp may be from now. A
// signed request captured on the way is refused once it is older.
const replayWindow = 5 * time.Minute

var (
	errBadSignature = errors.New("invalid Discord signature")
	errStale        = errors.New("request timestamp is outside the 5-minute window")
)

// PublicKey is the application's Ed25519 public key, expanded once: the
// decoded point and its multiplication table are kept, so a verification
// costs about half of crypto/ed25519.Verify, which redoes that work for
// every request (39 µs instead of 70 µs here, the largest share of an
// acknowledgement's CPU). It accepts exactly what crypto/ed25519 accepts.
type PublicKey struct {
	raw      ed25519.PublicKey
	expanded *voi.ExpandedPublicKey
}

// verifyStdLib is crypto/ed25519's acceptance rules (cofactorless, S and R
// canonical), which Discord's own libraries follow.
var verifyStdLib = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// ParsePublicKey reads the application's public key as the developer
// portal shows it (64 hex digits).
func ParsePublicKey(s string) (PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("DISCORD_PUBLIC_KEY must be the application's public key, %d hex digits (got %d characters)", 2*ed25519.PublicKeySize, len(s))
	}
	x, err := voi.NewExpandedPublicKey(voi.PublicKey(b))
	if err != nil {
		return PublicKey{}, fmt.Errorf("DISCORD_PUBLIC_KEY is not an Ed25519 public key (%v): copy it again from the application's General Information page", err)
	}
	return PublicKey{raw: ed25519.PublicKey(b), expanded: x}, nil
}

// Equal reports whether k is the key pub.
func (k PublicKey) Equal(pub ed25519.PublicKey) bool { return k.raw.Equal(pub) }

// Verify checks Discord's request signature: X-Signature-Ed25519 is the
// Ed25519 signature of X-Signature-Timestamp followed by the raw body,
// made with the application's key. The timestamp must be within five
// minutes of now.
func Verify(key PublicKey, h http.Header, body []byte, now time.Time) error {
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
	if key.expanded == nil || !voi.VerifyExpandedWithOptions(key.expanded, msg, raw, verifyStdLib) {
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
