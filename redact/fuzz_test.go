package redact_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hero-dev/hero/redact"
)

// FuzzRedact checks the redactor's promises on any secret and any text:
// it never panics; the secret, in every encoding it claims to catch
// (encodings), never survives String when placed anywhere in the text;
// Contains agrees with String; and a Writer fed the text in two writes
// produces exactly what String does. Its seeds run in every `go test`.
func FuzzRedact(f *testing.F) {
	// Secrets shaped like real ones, and text like what hero scrubs
	// (command output, the recorded Slack and GitHub payloads' texts).
	for _, seed := range []struct {
		secret, text string
		at           uint16
	}{
		{"ghp_0123456789abcdefABCDEF", "remote: Invalid username or password.\nfatal: Authentication failed", 10},
		{"sk-live-0123456789ABCDEF", "curl -H 'Authorization: Bearer ' https://api.example.com", 31},
		{"s3cr3t/Val+ue?&=\"<x>", "<@EEEEEEEEE> hello world", 5},
		{"pa55-w0rd-9c8b7a6", "Hey there \r\n\r\nthis is another test issue", 0},
		{"dev1", "It looks like you accidently spelled 'commit' with two 't's.", 20},
		{"correct horse battery staple", "ok  \tgithub.com/hero-dev/hero/redact\t0.012s\n", 3},
		{"—ünïcödé-sécret—", "Maybe you should use more emoji on this line. 🎉", 9},
		{"-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----\n", "key:\n", 4},
	} {
		f.Add(seed.secret, seed.text, seed.at)
	}
	f.Fuzz(func(t *testing.T, secret, text string, at uint16) {
		r := redact.New()
		r.AddNamed("S", secret)
		// Never panics, whatever the input (valid UTF-8 or not).
		got := r.String(text)
		_ = r.Bytes([]byte(text))
		if r.Contains(text) != (got != text) {
			t.Fatalf("Contains(%q) = %v but String = %q", text, r.Contains(text), got)
		}
		split := int(at) % (len(text) + 1)
		var out bytes.Buffer
		w := r.Writer(&out)
		_, _ = w.Write([]byte(text[:split]))
		_, _ = w.Write([]byte(text[split:]))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != got {
			t.Fatalf("Writer split at %d = %q, String = %q", split, out.String(), got)
		}

		// The claims hold for valid UTF-8 secrets of MinSecretLen bytes
		// or more; a label-like value could rebuild itself around a label.
		if len(secret) < redact.MinSecretLen || squeezedLen(secret) == 0 || !utf8.ValidString(secret) || strings.ContainsAny(secret, "[]") {
			return
		}
		claims := map[string]string{"raw": secret}
		if squeezedLen(secret) >= 8 {
			claims = encodings(secret)
			claims["raw"] = secret
		}
		k := int(at) % (len(text) + 1)
		for name, form := range claims {
			if strings.Contains(name, "payload") {
				continue // the payload around the secret stays; checked in TestEncodedFormsAreRedacted
			}
			in := text[:k] + form + text[k:]
			if out := r.String(in); strings.Contains(out, form) {
				t.Fatalf("%s form %q of secret %q survives in %q", name, form, secret, out)
			}
		}
	})
}

// squeezedLen counts what the redactor matches loosely: the value's bytes
// without separators and invisible characters.
func squeezedLen(s string) int {
	n := 0
	for _, c := range s {
		if strings.ContainsRune(" \t\n\r\v\f-_.:,;|\u200b\u200c\u200d\u2060\ufeff\u00ad", c) {
			continue
		}
		n += utf8.RuneLen(c)
	}
	return n
}
