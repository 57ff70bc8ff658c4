package redact_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/hero-dev/hero/redact"
)

const secret = "s3cr3t/Val+ue?&=\"<x>"

func TestStringForms(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.AddNamed("DB_PASSWORD", secret)
	jsonEsc, _ := json.Marshal(secret)
	basicAuth := base64.StdEncoding.EncodeToString([]byte("admin:" + secret))
	tests := []struct {
		name, form string
	}{
		{"raw", secret},
		{"base64 std", base64.StdEncoding.EncodeToString([]byte(secret))},
		{"base64 std raw", base64.RawStdEncoding.EncodeToString([]byte(secret))},
		{"base64 url", base64.URLEncoding.EncodeToString([]byte(secret))},
		{"base64 url raw", base64.RawURLEncoding.EncodeToString([]byte(secret))},
		{"query escaped", url.QueryEscape(secret)},
		{"path escaped", url.PathEscape(secret)},
		{"json escaped", string(jsonEsc[1 : len(jsonEsc)-1])},
		{"json escaped without html escaping", `s3cr3t/Val+ue?&=\"<x>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := "before " + tc.form + " after"
			got := r.String(in)
			if got != "before [REDACTED:DB_PASSWORD] after" {
				t.Errorf("String(%q) = %q", in, got)
			}
			if got := string(r.Bytes([]byte(in))); got != "before [REDACTED:DB_PASSWORD] after" {
				t.Errorf("Bytes(%q) = %q", in, got)
			}
		})
	}
	t.Run("inside longer base64", func(t *testing.T) {
		got := r.String("Authorization: Basic " + basicAuth)
		if strings.Contains(got, basicAuth) || !strings.Contains(got, "[REDACTED:DB_PASSWORD]") {
			t.Errorf("basic auth header not redacted: %q", got)
		}
	})
}

func TestUnnamedAndShortValues(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.Add("abc", "", "tokenvalue")
	if got := r.String("abc tokenvalue abc"); got != "abc [REDACTED] abc" {
		t.Errorf("got %q", got)
	}
	// Naming a known value later gives it the name.
	r.AddNamed("TOKEN", "tokenvalue")
	if got := r.String("x tokenvalue"); got != "x [REDACTED:TOKEN]" {
		t.Errorf("got %q", got)
	}
}

func TestAddMap(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.AddMap(map[string]string{"GITHUB_TOKEN": "ghp_abcdefgh", "SHORT": "ab"})
	if got := r.String("token ghp_abcdefgh ab"); got != "token [REDACTED:GITHUB_TOKEN] ab" {
		t.Errorf("got %q", got)
	}
}

func TestNoSecretsPassesThrough(t *testing.T) {
	t.Parallel()
	r := redact.New()
	s := "nothing to see " + secret
	if got := r.String(s); got != s {
		t.Errorf("empty redactor changed text: %q", got)
	}
	b := []byte(s)
	if got := r.Bytes(b); &got[0] != &b[0] {
		t.Error("Bytes copied although nothing was redacted")
	}
	r.Add("unrelated-secret")
	if got := r.Bytes(b); &got[0] != &b[0] {
		t.Error("Bytes copied although no secret matched")
	}
}

func TestOverlappingSecrets(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.AddNamed("A", "abcdefgh")
	r.AddNamed("B", "efghijkl")
	r.AddNamed("C", "xxabcd")
	r.AddNamed("LONG", "0123456789abcdefgh")
	tests := []struct{ in, want string }{
		{"..abcdefghijkl..", "..[REDACTED:A].."},    // A and B overlap: one span, longest label
		{"xxabcdefgh", "[REDACTED:A]"},              // C overlaps A
		{"0123456789abcdefgh!", "[REDACTED:LONG]!"}, // A inside LONG
		{"abcdefgh abcdefgh", "[REDACTED:A] [REDACTED:A]"},
		{"abcdefg", "abcdefg"},
	}
	for _, tc := range tests {
		got := r.String(tc.in)
		if got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, s := range []string{"abcd", "efgh", "ijkl"} {
			if strings.Contains(tc.in, "h") && strings.Contains(got, s) && tc.in != "abcdefg" {
				t.Errorf("String(%q) = %q leaks %q", tc.in, got, s)
			}
		}
	}
	// Chain of three pairwise overlapping secrets reaching back over
	// an earlier span.
	r2 := redact.New()
	r2.AddNamed("P", "pppp")
	r2.AddNamed("Q", "qqqq")
	r2.AddNamed("PQ", "zpppppqqqqz")
	if got := r2.String("[zpppppqqqqz]"); got != "[[REDACTED:PQ]]" {
		t.Errorf("got %q", got)
	}
}

func TestMultiLineSecret(t *testing.T) {
	t.Parallel()
	r := redact.New()
	key := "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END KEY-----\n"
	r.AddNamed("KEY", key)
	got := r.String("line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\r\n")
	if strings.Contains(got, "MIIEvQ") {
		t.Errorf("line of a multi-line secret leaked: %q", got)
	}
}

func TestWriterSplitWrites(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.AddNamed("TOKEN", "ghp_0123456789abcdef")
	r.Add("another-secret-value")
	text := "clone with ghp_0123456789abcdef then another-secret-value; done ghp_0123456789abcdef"
	want := r.String(text)
	// Every split point, and random chunkings.
	for split := range len(text) + 1 {
		var out bytes.Buffer
		w := r.Writer(&out)
		mustWrite(t, w, text[:split])
		mustWrite(t, w, text[split:])
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("split at %d: got %q, want %q", split, out.String(), want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var out bytes.Buffer
		w := r.Writer(&out)
		rest := text
		for rest != "" {
			n := 1 + rng.IntN(min(len(rest), 7))
			mustWrite(t, w, rest[:n])
			rest = rest[n:]
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("chunked: got %q, want %q", out.String(), want)
		}
	}
}

func TestWriterHoldsBackOnlyPossibleSecretPrefix(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.Add("12345678")
	var out bytes.Buffer
	w := r.Writer(&out)
	mustWrite(t, w, "hello world, 1234")
	// Bytes that cannot start a secret form are out already; the
	// possible prefix is not.
	if got := out.String(); got != "hello world, " {
		t.Errorf("before flush: %q", got)
	}
	mustWrite(t, w, "5678 bye")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "hello world, [REDACTED] bye" {
		t.Errorf("after flush: %q", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, redact.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
}

func TestWriterNoSecretsPassesThrough(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := redact.New().Writer(&out)
	mustWrite(t, w, "abc")
	if out.String() != "abc" {
		t.Errorf("got %q", out.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriterUnderlyingError(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.Add("secretvalue")
	w := r.Writer(failWriter{})
	if _, err := w.Write([]byte("a long line that is certainly flushed")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("got %v", err)
	}
	if _, err := w.Write([]byte("more")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("error not sticky: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	r := redact.New()
	var out safeBuffer
	w := r.Writer(&out)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			v := fmt.Sprintf("secret-number-%02d", i)
			r.Add(v)
			for range 100 {
				if got := r.String("x " + v + " y"); got != "x [REDACTED] y" {
					t.Errorf("got %q", got)
					return
				}
				_, _ = w.Write([]byte("z\n"))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), "z\n"); got != 800 {
		t.Errorf("lost writes: %d lines", got)
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func mustWrite(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}
