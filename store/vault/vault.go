// Package vault encrypts project secrets at rest.
//
// Every secret is sealed with AES-256-GCM under a key derived per project
// with HKDF-SHA256 from a master key and a salt, and the ciphertext is bound
// (as additional authenticated data) to its project id and secret name, so a
// blob copied into another project's row or under another name does not
// decrypt. Blobs carry the version of the master key that sealed them: a
// Keyring holds the current version (used to seal) and older ones (used only
// to open), which is what lets the store re-encrypt everything after a key
// rotation.
//
// Blob layout: 2-byte big-endian key version | 12-byte random nonce |
// AES-GCM ciphertext and 16-byte tag.
//
// No error produced here contains key material or plaintext.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Sizes of the master key and the KDF salt, in bytes.
const (
	KeySize  = 32
	SaltSize = 16
)

// Environment variable names operators set in production; used in errors and
// in the key file so both speak the same language.
const (
	EnvKey  = "SECRETS_ENCRYPTION_KEY"
	EnvSalt = "SECRETS_KDF_SALT"
)

// KeyFileName is the file LoadOrCreate keeps in the data directory when no
// key is configured.
const KeyFileName = "secrets.key"

const (
	versionSize = 2
	nonceSize   = 12
	tagSize     = 16
	maxVersion  = 65535
)

// ErrDecrypt is returned by Open when a blob does not authenticate: it was
// tampered with, copied from another project or name, or sealed with a key
// this keyring does not hold.
var ErrDecrypt = errors.New("vault: secret does not decrypt (tampered, moved, or wrong key)")

// Keyring holds the master keys (by version) and the salt. It is immutable
// and safe for concurrent use.
type Keyring struct {
	salt    []byte
	keys    map[int][]byte
	current int
}

// New builds a keyring from a salt and master keys by version (1..65535).
// The highest version is the current one, used to seal; the others only open.
func New(salt []byte, keys map[int][]byte) (*Keyring, error) {
	if len(salt) != SaltSize {
		return nil, fmt.Errorf("vault: salt must be %d bytes, got %d", SaltSize, len(salt))
	}
	if len(keys) == 0 {
		return nil, errors.New("vault: no master key")
	}
	k := &Keyring{salt: slices.Clone(salt), keys: make(map[int][]byte, len(keys))}
	for v, key := range keys {
		if v < 1 || v > maxVersion {
			return nil, fmt.Errorf("vault: key version %d out of range 1..%d", v, maxVersion)
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("vault: master key version %d must be %d bytes, got %d", v, KeySize, len(key))
		}
		k.keys[v] = slices.Clone(key)
		k.current = max(k.current, v)
	}
	return k, nil
}

// Parse builds a keyring from the values of SECRETS_ENCRYPTION_KEY and
// SECRETS_KDF_SALT. The key value is either 64 hex characters (version 1) or,
// during a rotation, a comma-separated list of VERSION:HEX entries such as
// "2:ab…,1:cd…" — the highest version seals, the others still open old blobs.
// The salt is 32 hex characters. Errors name the variable that is wrong.
func Parse(keyValue, saltHex string) (*Keyring, error) {
	salt, err := hex.DecodeString(strings.TrimSpace(saltHex))
	if err != nil || len(salt) != SaltSize {
		return nil, fmt.Errorf("vault: %s must be %d hex characters (%d random bytes)", EnvSalt, 2*SaltSize, SaltSize)
	}
	keys := map[int][]byte{}
	entries := strings.Split(strings.TrimSpace(keyValue), ",")
	for _, entry := range entries {
		entry = strings.TrimSpace(entry)
		version := 1
		hexPart := entry
		if vs, rest, ok := strings.Cut(entry, ":"); ok {
			v, err := strconv.Atoi(vs)
			if err != nil || v < 1 || v > maxVersion {
				return nil, fmt.Errorf("vault: %s: key version %q must be a number in 1..%d", EnvKey, vs, maxVersion)
			}
			version, hexPart = v, rest
		} else if len(entries) > 1 {
			return nil, fmt.Errorf("vault: %s: with several keys every entry needs a version, as VERSION:HEX", EnvKey)
		}
		key, err := hex.DecodeString(hexPart)
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("vault: %s: key version %d must be %d hex characters (%d random bytes)", EnvKey, version, 2*KeySize, KeySize)
		}
		if _, dup := keys[version]; dup {
			return nil, fmt.Errorf("vault: %s: key version %d given twice", EnvKey, version)
		}
		keys[version] = key
	}
	return New(salt, keys)
}

// LoadOrCreate returns the keyring hero uses. When keyValue or saltHex is
// set (from SECRETS_ENCRYPTION_KEY and SECRETS_KDF_SALT) both must be valid
// and are used. Otherwise the keyring is read from <dataDir>/secrets.key, or
// generated there (file 0600, directory 0700) on first start, and a warning
// says which variables to set in production: a key that lives next to the
// database it protects only helps against leaked database dumps.
func LoadOrCreate(dataDir, keyValue, saltHex string, log *slog.Logger) (*Keyring, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if keyValue != "" || saltHex != "" {
		if keyValue == "" {
			return nil, fmt.Errorf("vault: %s is set but %s is empty; set both", EnvSalt, EnvKey)
		}
		if saltHex == "" {
			return nil, fmt.Errorf("vault: %s is set but %s is empty; set both", EnvKey, EnvSalt)
		}
		return Parse(keyValue, saltHex)
	}
	path := filepath.Join(dataDir, KeyFileName)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := parseFile(data)
		if err != nil {
			return nil, fmt.Errorf("vault: read %s: %w", path, err)
		}
		log.Warn("secrets key read from the data directory; set SECRETS_ENCRYPTION_KEY and SECRETS_KDF_SALT in production (copy them from this file)",
			"file", path)
		return k, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("vault: read %s: %w", path, err)
	}

	key := make([]byte, KeySize)
	salt := make([]byte, SaltSize)
	rand.Read(key)
	rand.Read(salt)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: create data directory: %w", err)
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: restrict data directory: %w", err)
	}
	content := fmt.Sprintf("# hero secrets master key. Keep it secret and back it up: without it no\n"+
		"# stored secret can be decrypted. In production set these as environment variables.\n"+
		"%s=%s\n%s=%s\n", EnvKey, hex.EncodeToString(key), EnvSalt, hex.EncodeToString(salt))
	// Write a temporary file, then link it into place: the link fails if
	// another process won the race, and then its (complete) file is used.
	tmp, err := os.CreateTemp(dataDir, ".secrets.key.*")
	if err != nil {
		return nil, fmt.Errorf("vault: create key file in %s: %w", dataDir, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("vault: restrict key file: %w", err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("vault: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("vault: sync key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("vault: close key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return LoadOrCreate(dataDir, "", "", log)
	} else if err != nil {
		return nil, fmt.Errorf("vault: install key file %s: %w", path, err)
	}
	log.Warn("generated a secrets master key in the data directory; set SECRETS_ENCRYPTION_KEY and SECRETS_KDF_SALT in production (copy them from this file)",
		"file", path)
	return New(salt, map[int][]byte{1: key})
}

// parseFile reads the KEY=VALUE lines LoadOrCreate writes.
func parseFile(data []byte) (*Keyring, error) {
	var keyValue, salt string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, errors.New("malformed line (want NAME=VALUE)")
		}
		switch strings.TrimSpace(name) {
		case EnvKey:
			keyValue = strings.TrimSpace(value)
		case EnvSalt:
			salt = strings.TrimSpace(value)
		default:
			return nil, fmt.Errorf("unknown setting %q", strings.TrimSpace(name))
		}
	}
	if keyValue == "" || salt == "" {
		return nil, fmt.Errorf("need both %s and %s", EnvKey, EnvSalt)
	}
	return Parse(keyValue, salt)
}

// Version is the current key version, the one Seal uses.
func (k *Keyring) Version() int { return k.current }

// Versions lists the key versions this keyring can open, ascending.
func (k *Keyring) Versions() []int {
	vs := make([]int, 0, len(k.keys))
	for v := range k.keys {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// Seal encrypts plaintext for the secret name of project projectID with the
// current key.
func (k *Keyring) Seal(projectID int64, name string, plaintext []byte) ([]byte, error) {
	aead, err := k.aead(k.current, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]byte, versionSize+nonceSize, versionSize+nonceSize+len(plaintext)+tagSize)
	binary.BigEndian.PutUint16(out, uint16(k.current))
	rand.Read(out[versionSize:])
	nonce := out[versionSize : versionSize+nonceSize]
	return aead.Seal(out, nonce, plaintext, aad(out[:versionSize], projectID, name)), nil
}

// Open decrypts a blob made by Seal for the same project and name. It
// returns ErrDecrypt (wrapped) when the blob does not authenticate and an
// error naming the version when the keyring lacks that key.
func (k *Keyring) Open(projectID int64, name string, blob []byte) ([]byte, error) {
	v, err := BlobVersion(blob)
	if err != nil {
		return nil, err
	}
	if len(blob) < versionSize+nonceSize+tagSize {
		return nil, fmt.Errorf("vault: secret blob too short (%d bytes)", len(blob))
	}
	aead, err := k.aead(v, projectID)
	if err != nil {
		return nil, err
	}
	nonce := blob[versionSize : versionSize+nonceSize]
	pt, err := aead.Open(nil, nonce, blob[versionSize+nonceSize:], aad(blob[:versionSize], projectID, name))
	if err != nil {
		return nil, fmt.Errorf("vault: open secret %q of project %d: %w", name, projectID, ErrDecrypt)
	}
	return pt, nil
}

// BlobVersion reports which key version sealed blob.
func BlobVersion(blob []byte) (int, error) {
	if len(blob) < versionSize {
		return 0, fmt.Errorf("vault: secret blob too short (%d bytes)", len(blob))
	}
	return int(binary.BigEndian.Uint16(blob)), nil
}

// aead derives the per-project AES-256-GCM for a key version.
func (k *Keyring) aead(version int, projectID int64) (cipher.AEAD, error) {
	master, ok := k.keys[version]
	if !ok {
		return nil, fmt.Errorf("vault: secret sealed with key version %d, which is not configured (have %v)", version, k.Versions())
	}
	key, err := hkdf.Key(sha256.New, master, k.salt, "hero project "+strconv.FormatInt(projectID, 10), KeySize)
	if err != nil {
		return nil, fmt.Errorf("vault: derive project key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("vault: aes: %w", err)
	}
	return cipher.NewGCM(block)
}

// aad binds a blob to its key version, project and secret name.
func aad(version []byte, projectID int64, name string) []byte {
	b := make([]byte, 0, 16+len(version)+8+len(name))
	b = append(b, "hero secret\x00"...)
	b = append(b, version...)
	b = binary.BigEndian.AppendUint64(b, uint64(projectID))
	return append(b, name...)
}
