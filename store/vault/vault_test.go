package vault_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hero-dev/hero/store/vault"
)

const (
	keyA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	keyB = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"
	salt = "00112233445566778899aabbccddeeff"
)

func mustParse(t *testing.T, key, salt string) *vault.Keyring {
	t.Helper()
	k, err := vault.Parse(key, salt)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return k
}

func TestRoundTripAndBinding(t *testing.T) {
	t.Parallel()
	k := mustParse(t, keyA, salt)
	plain := []byte("ghp_supersecretvalue")
	blob, err := k.Seal(7, "GITHUB_TOKEN", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, plain) {
		t.Fatal("blob contains the plaintext")
	}
	got, err := k.Open(7, "GITHUB_TOKEN", blob)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := k.Seal(7, "GITHUB_TOKEN", plain)
	if bytes.Equal(again, blob) {
		t.Fatal("two seals of the same value are identical: nonce not random")
	}

	cases := map[string]func() ([]byte, error){
		"other project": func() ([]byte, error) { return k.Open(8, "GITHUB_TOKEN", blob) },
		"other name":    func() ([]byte, error) { return k.Open(7, "NPM_TOKEN", blob) },
		"other key":     func() ([]byte, error) { return mustParse(t, keyB, salt).Open(7, "GITHUB_TOKEN", blob) },
		"other salt": func() ([]byte, error) {
			return mustParse(t, keyA, "ffeeddccbbaa99887766554433221100").Open(7, "GITHUB_TOKEN", blob)
		},
	}
	for i := range blob {
		tampered := bytes.Clone(blob)
		tampered[i] ^= 0x01
		if i < 2 {
			continue // version bytes: covered by "unknown version" below
		}
		cases[fmt.Sprintf("flip byte %d", i)] = func() ([]byte, error) { return k.Open(7, "GITHUB_TOKEN", tampered) }
	}
	for name, open := range cases {
		pt, err := open()
		if !errors.Is(err, vault.ErrDecrypt) {
			t.Errorf("%s: Open = %q, %v; want ErrDecrypt", name, pt, err)
		}
		if err != nil && strings.Contains(err.Error(), string(plain)) {
			t.Errorf("%s: error leaks plaintext: %v", name, err)
		}
	}

	badVersion := bytes.Clone(blob)
	badVersion[1] = 9
	if _, err := k.Open(7, "GITHUB_TOKEN", badVersion); err == nil || !strings.Contains(err.Error(), "key version 9") {
		t.Errorf("unknown version: err = %v, want it to name version 9", err)
	}
	if _, err := k.Open(7, "GITHUB_TOKEN", blob[:5]); err == nil {
		t.Error("short blob opened")
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	old := mustParse(t, keyA, salt)
	blob, err := old.Seal(1, "API_KEY", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustParse(t, "2:"+keyB+", 1:"+keyA, salt)
	if rotated.Version() != 2 {
		t.Fatalf("Version = %d, want 2", rotated.Version())
	}
	if got, err := rotated.Open(1, "API_KEY", blob); err != nil || string(got) != "v" {
		t.Fatalf("rotated keyring cannot open an old blob: %q %v", got, err)
	}
	fresh, err := rotated.Seal(1, "API_KEY", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := vault.BlobVersion(fresh); v != 2 {
		t.Fatalf("new blob version = %d, want 2", v)
	}
	if _, err := old.Open(1, "API_KEY", fresh); err == nil {
		t.Fatal("the old keyring opened a blob sealed with the new key")
	}
	// Dropping the old key after rotation: old blobs no longer open, clearly.
	onlyNew := mustParse(t, "2:"+keyB, salt)
	if _, err := onlyNew.Open(1, "API_KEY", blob); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("err = %v, want one naming key version 1", err)
	}
}

func TestParseErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := []struct{ key, salt, want string }{
		{"zz", salt, "SECRETS_ENCRYPTION_KEY"},
		{keyA[:62], salt, "SECRETS_ENCRYPTION_KEY"},
		{keyA, "abc", "SECRETS_KDF_SALT"},
		{keyA, salt + "00", "SECRETS_KDF_SALT"},
		{"x:" + keyA, salt, "SECRETS_ENCRYPTION_KEY"},
		{"1:" + keyA + ",1:" + keyB, salt, "given twice"},
		{keyA + "," + keyB, salt, "VERSION:HEX"},
	}
	for _, c := range cases {
		_, err := vault.Parse(c.key, c.salt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q, %q) = %v, want an error mentioning %q", c.key, c.salt, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), c.key) && len(c.key) > 8 {
			t.Errorf("error echoes the key value: %v", err)
		}
	}
	for _, c := range []struct{ key, salt, want string }{
		{keyA, "", "SECRETS_KDF_SALT"},
		{"", salt, "SECRETS_ENCRYPTION_KEY"},
		{"nothex", salt, "SECRETS_ENCRYPTION_KEY"},
	} {
		_, err := vault.LoadOrCreate(t.TempDir(), c.key, c.salt, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadOrCreate(%q, %q) = %v, want an error mentioning %q", c.key, c.salt, err, c.want)
		}
	}
}

func TestLoadOrCreateFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	k1, err := vault.LoadOrCreate(dir, "", "", log)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"level=WARN", "SECRETS_ENCRYPTION_KEY", "SECRETS_KDF_SALT"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q lacks %q", logs.String(), want)
		}
	}
	path := filepath.Join(dir, vault.KeyFileName)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	dst, _ := os.Stat(dir)
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode = %v, want 0700", dst.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	var keyLine string
	for l := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(l, "SECRETS_ENCRYPTION_KEY="); ok {
			keyLine = strings.TrimSpace(v)
		}
	}
	if _, err := hex.DecodeString(keyLine); err != nil || len(keyLine) != 64 {
		t.Fatalf("key file line = %q", keyLine)
	}
	if strings.Contains(logs.String(), keyLine) {
		t.Fatal("the log contains the generated key")
	}

	blob, _ := k1.Seal(3, "X", []byte("hello"))
	k2, err := vault.LoadOrCreate(dir, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k2.Open(3, "X", blob); err != nil || string(got) != "hello" {
		t.Fatalf("reloaded keyring: %q %v", got, err)
	}

	if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.LoadOrCreate(dir, "", "", nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt key file: err = %v, want one naming %s", err, path)
	}
}
