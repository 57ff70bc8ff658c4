package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// IdentitiesOfUser returns the platform accounts linked to a user, by
// provider and external id, for the settings page.
func (db *DB) IdentitiesOfUser(ctx context.Context, userID int64) ([]Identity, error) {
	var ids []Identity
	err := db.bun.NewSelect().Model(&ids).Where("user_id = ?", userID).
		Order("provider", "external_id").Scan(ctx)
	if err != nil {
		return nil, wrap(err, "identities of user %d", userID)
	}
	return ids, nil
}

// LinkCodeTTL is how long a chat-account link code stays valid.
const LinkCodeTTL = 15 * time.Minute

// linkCodeAlphabet has no 0/O, 1/I/L or U: a code read off a screen is
// typed right the first time.
const linkCodeAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"

// linkCodeLen is a link code's length: 30^8 ≈ 6.6e11 codes for a code
// that lives 15 minutes and works once.
const linkCodeLen = 8

// NewLinkCode returns a fresh random link code ("K7M2XQ9D").
func NewLinkCode() string {
	b := make([]byte, linkCodeLen)
	for i := range b {
		b[i] = linkCodeAlphabet[randIndex(len(linkCodeAlphabet))]
	}
	return string(b)
}

// randIndex is a uniform random number in [0, n), n < 256, by rejection
// sampling so no letter is likelier than another.
func randIndex(n int) int {
	limit := 256 - 256%n
	var b [1]byte
	for {
		rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

// NormalizeLinkCode is a code as typed, the way it is compared: upper
// case, without the spaces, dashes and backticks people copy along.
func NormalizeLinkCode(code string) string {
	code = strings.ToUpper(strings.TrimSpace(code))
	return strings.NewReplacer(" ", "", "-", "", "`", "").Replace(code)
}

// linkCodeHash is how a link code is stored in web_login_tokens. The
// "link:" prefix keeps link codes and admin login tokens (stored as the
// bare hex SHA-256 of the token) apart in both directions: a hex digest
// never contains ':', so no admin login token can hash to a link code's
// row and no link code can hash to an admin token's row.
func linkCodeHash(code string) string {
	sum := sha256.Sum256([]byte("hero link code\x00" + NormalizeLinkCode(code)))
	return "link:" + hex.EncodeToString(sum[:])
}

// CreateLinkCode stores a one-time link code for a user (only its hash),
// valid until expires. It replaces the user's earlier link codes, used or
// not: only the newest code works, and each user has at most one row.
func (db *DB) CreateLinkCode(ctx context.Context, userID int64, code string, expires time.Time) error {
	if NormalizeLinkCode(code) == "" || userID == 0 || expires.IsZero() {
		return errors.New("create link code: code, user and expiry are required")
	}
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewDelete().Model((*LoginToken)(nil)).
			Where("user_id = ? AND token_hash LIKE ?", userID, "link:%").Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewInsert().Model(&LoginToken{TokenHash: linkCodeHash(code), UserID: userID,
			CreatedAt: now(), ExpiresAt: expires.UTC()}).Exec(ctx)
		return err
	})
	return wrap(err, "create link code for user %d", userID)
}

// UseLinkCode spends a link code and returns the user who made it; of two
// concurrent uses exactly one wins. ErrNotFound if the code is unknown,
// used or expired. The error never contains the code.
func (db *DB) UseLinkCode(ctx context.Context, code string, at time.Time) (int64, error) {
	c := NormalizeLinkCode(code)
	if len(c) != linkCodeLen || strings.Trim(c, linkCodeAlphabet) != "" {
		return 0, wrap(ErrNotFound, "link code is unknown, used or expired")
	}
	uid, err := db.UseLoginToken(ctx, linkCodeHash(c), at)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return 0, wrap(ErrNotFound, "link code is unknown, used or expired")
		}
		return 0, wrap(err, "use link code")
	}
	return uid, nil
}

// Limits on guessing link codes: a chat account may type LinkFailsPerAccount
// wrong codes per LinkFailWindow, and everyone together LinkFailsPerHour
// per hour. Counted in the database, so restarts and replicas agree.
const (
	LinkFailsPerAccount = 5
	LinkFailWindow      = 15 * time.Minute
	LinkFailsPerHour    = 60
	// LimitLinkFail is the limit_events kind of a wrong link code.
	LimitLinkFail = "link-fail"
)

// Errors of UseLinkCodeLimited when a limit is reached.
var (
	ErrLinkAccountLimit = errors.New("too many wrong link codes from this account")
	ErrLinkGlobalLimit  = errors.New("too many wrong link codes from everyone in the last hour")
)

// UseLinkCodeLimited is UseLinkCode for a code typed by a chat account
// (subject, "slack:T1/U2"). Once the account or everyone reached the
// limits above it refuses, before looking at the code, with
// ErrLinkAccountLimit or ErrLinkGlobalLimit; a wrong code (ErrNotFound)
// counts against both.
func (db *DB) UseLinkCodeLimited(ctx context.Context, code, subject string, at time.Time) (int64, error) {
	n, err := db.CountLimitEvents(ctx, LimitLinkFail, subject, at.Add(-LinkFailWindow))
	if err != nil {
		return 0, err
	}
	if n >= LinkFailsPerAccount {
		return 0, ErrLinkAccountLimit
	}
	if n, err = db.CountLimitEvents(ctx, LimitLinkFail, "", at.Add(-time.Hour)); err != nil {
		return 0, err
	}
	if n >= LinkFailsPerHour {
		return 0, ErrLinkGlobalLimit
	}
	uid, err := db.UseLinkCode(ctx, code, at)
	if errors.Is(err, ErrNotFound) {
		if rerr := db.RecordLimitEvent(ctx, LimitLinkFail, subject, at); rerr != nil {
			return 0, rerr
		}
	}
	return uid, err
}
