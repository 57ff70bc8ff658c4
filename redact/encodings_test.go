package redact_test

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/hero-dev/hero/redact"
)

// zeroWidths are the invisible characters a value may be joined with.
var zeroWidths = []string{"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}

// join puts sep between every character of s.
func join(s, sep string) string {
	return strings.Join(strings.Split(s, ""), sep)
}

// wrap breaks s into lines of n bytes, as base64 (76) or fold -w N does.
func wrap(s string, n int, eol string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + eol)
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

// asciiCase maps the ASCII letters of s (the redactor ignores ASCII case
// only, as tr a-z A-Z changes it).
func asciiCase(s string, to func(rune) rune) string {
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf {
			return to(r)
		}
		return r
	}, s)
}

func reversed(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// encodings are the forms the redactor claims to catch, beyond the raw
// value: the fuzz target checks the same list.
func encodings(v string) map[string]string {
	raw := []byte(v)
	b64 := base64.StdEncoding.EncodeToString(raw)
	out := map[string]string{
		"hex":                 hex.EncodeToString(raw),
		"HEX":                 strings.ToUpper(hex.EncodeToString(raw)),
		"base32":              base32.StdEncoding.EncodeToString(raw),
		"base32 lower":        strings.ToLower(base32.StdEncoding.EncodeToString(raw)),
		"reversed":            reversed(v),
		"upper case":          asciiCase(v, unicode.ToUpper),
		"lower case":          asciiCase(v, unicode.ToLower),
		"spaced":              join(v, " "),
		"dashed":              join(v, "-"),
		"dotted and newlines": join(v, ".\n"),
		"fold -w 3":           wrap(v, 3, "\n"),
		"base64 wrapped at 4": wrap(b64, 4, "\n"),
		"base64 CRLF wrapped": wrap(b64, 5, "\r\n"),
		"hex spaced (xxd)":    join(hex.EncodeToString(raw), " "),
	}
	for _, z := range zeroWidths {
		out["joined with "+strings.TrimPrefix(strings.ToUpper(hex.EncodeToString([]byte(z))), "")] = join(v, z)
	}
	// Inside a longer payload at every alignment, wrapped as base64(1)
	// wraps it: the secret's own characters must not survive.
	for k := range 5 {
		prefix := strings.Repeat("P", k)
		out["base64 of longer payload, wrapped, offset "+string(rune('0'+k))] =
			wrap(base64.StdEncoding.EncodeToString([]byte("user:"+prefix+v+"|tail")), 76, "\n")
		out["base32 of longer payload, offset "+string(rune('0'+k))] =
			base32.StdEncoding.EncodeToString([]byte(prefix + v + "|tail"))
	}
	return out
}

const encSecret = "s3cr3t-Val+ue/Tok3n!"

func TestEncodedFormsAreRedacted(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.AddNamed("DEPLOY_TOKEN", encSecret)
	for name, form := range encodings(encSecret) {
		t.Run(name, func(t *testing.T) {
			in := "before\n" + form + "\nafter"
			got := r.String(in)
			if !strings.Contains(got, "[REDACTED:DEPLOY_TOKEN]") || !strings.HasPrefix(got, "before\n") || !strings.HasSuffix(got, "\nafter") {
				t.Fatalf("String(%q) = %q", in, got)
			}
			// Around a secret inside a longer payload, the payload's own
			// characters stay; the secret's core is what must go.
			if strings.Contains(name, "payload") {
				return
			}
			if leak := longestSurvivor(got, form); leak != "" {
				t.Errorf("String(%q) = %q keeps %q of the form", in, got, leak)
			}
			if !r.Contains(in) {
				t.Errorf("Contains(%q) = false", in)
			}
		})
	}
}

// longestSurvivor returns a run of 8 or more characters of form (after
// removing separators) that is still in got, "" if none.
func longestSurvivor(got, form string) string {
	clean := func(s string) string {
		var b strings.Builder
		for _, c := range s {
			if strings.ContainsRune(" \t\r\n-_.:,;|\u200b\u200c\u200d\u2060\ufeff\u00ad", c) {
				continue
			}
			b.WriteRune(c)
		}
		return strings.ToLower(b.String())
	}
	g, f := clean(got), clean(form)
	for i := 0; i+12 <= len(f); i++ {
		if w := f[i : i+12]; strings.Contains(g, w) {
			return w
		}
	}
	return ""
}

func TestShortValuesMatchOnlyExactly(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.AddNamed("PIN", "dev1")
	for in, want := range map[string]string{
		"pin dev1 ok":       "pin [REDACTED:PIN] ok",
		"pin DEV1 ok":       "pin DEV1 ok",
		"d e v 1":           "d e v 1",
		"development dev-1": "development dev-1",
		"xdev1x":            "x[REDACTED:PIN]x",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	// A longer value sharing the suffix still matches when the shorter
	// one's exact check fails.
	r.AddNamed("LONGER", "zzzzdev1")
	if got := r.String("ZZZZDEV1 dev1"); got != "[REDACTED:LONGER] [REDACTED:PIN]" {
		t.Errorf("got %q", got)
	}
}

func TestOrdinaryTextIsLeftAlone(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.Add(encSecret, "correct-horse-battery")
	text := "go test ./... -run TestX -count=1\nok  \tgithub.com/hero-dev/hero/redact\t0.012s\nThe Correct Horse, is a battery of tests.\n"
	if got := r.String(text); got != text {
		t.Errorf("text changed:\n%q\n%q", text, got)
	}
}

func TestWriterCatchesSeparatedSecretAcrossWrites(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.AddNamed("TOKEN", encSecret)
	text := "a " + join(encSecret, "\u200b") + " b " + wrap(base64.StdEncoding.EncodeToString([]byte(encSecret)), 4, "\n") + " c"
	want := r.String(text)
	if strings.Count(want, "[REDACTED:TOKEN]") != 2 {
		t.Fatalf("String = %q", want)
	}
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
}
