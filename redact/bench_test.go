package redact_test

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hero-dev/hero/redact"
)

// benchText is 64 KB of log-like text; with hits it holds a few secrets.
func benchText(secrets []string, hits int) string {
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"the", "build", "failed", "at", "step", "go", "test", "./...", "ok", "PASS",
		"error:", "cannot", "find", "module", "github.com/hero-dev/hero", "0.012s", "\n", "=", "{", "}"}
	var b strings.Builder
	for b.Len() < 64<<10 {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
		if hits > 0 && rng.IntN(500) == 0 {
			b.WriteString(secrets[rng.IntN(len(secrets))])
			hits--
		}
	}
	return b.String()
}

func benchSecrets() []string {
	rng := rand.New(rand.NewPCG(5, 6))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
	out := make([]string, 50)
	for i := range out {
		b := make([]byte, 20+rng.IntN(30))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		out[i] = string(b)
	}
	return out
}

func BenchmarkString64KB50Secrets(b *testing.B) {
	secrets := benchSecrets()
	r := redact.New()
	for i, s := range secrets {
		r.AddNamed(fmt.Sprintf("S%d", i), s)
	}
	for _, hits := range []int{0, 20} {
		text := benchText(secrets, hits)
		b.Run(fmt.Sprintf("hits=%d", hits), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				_ = r.String(text)
			}
		})
	}
	// The same secrets as a program would print them encoded: hex,
	// reversed, spaced out, joined with zero-width spaces.
	b.Run("encoded-hits=20", func(b *testing.B) {
		var enc []string
		for i, s := range secrets {
			switch i % 4 {
			case 0:
				enc = append(enc, hex.EncodeToString([]byte(s)))
			case 1:
				enc = append(enc, reversed(s))
			case 2:
				enc = append(enc, join(s, " "))
			default:
				enc = append(enc, join(s, "\u200b"))
			}
		}
		text := benchText(enc, 20)
		if got := r.String(text); strings.Count(got, "[REDACTED:") < 20 {
			b.Fatalf("only %d encoded secrets found", strings.Count(got, "[REDACTED:"))
		}
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			_ = r.String(text)
		}
	})
	b.Run("no-secrets", func(b *testing.B) {
		text := benchText(nil, 0)
		empty := redact.New()
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			_ = empty.String(text)
		}
	})
	// The alternative considered: a strings.Replacer over the same
	// patterns, longest first. It is the baseline the automaton must beat.
	b.Run("strings.Replacer-baseline", func(b *testing.B) {
		text := benchText(secrets, 20)
		var pairs []string
		for _, s := range secrets {
			pairs = append(pairs, s, "[REDACTED]")
		}
		rep := strings.NewReplacer(pairs...)
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			_ = rep.Replace(text)
		}
	})
}

func BenchmarkAdd50Secrets(b *testing.B) {
	secrets := benchSecrets()
	b.Run("one-by-one", func(b *testing.B) {
		for b.Loop() {
			r := redact.New()
			for _, s := range secrets {
				r.Add(s)
			}
		}
	})
	b.Run("AddMap", func(b *testing.B) {
		named := map[string]string{}
		for i, s := range secrets {
			named[fmt.Sprintf("S%d", i)] = s
		}
		for b.Loop() {
			redact.New().AddMap(named)
		}
	})
}

func BenchmarkWriter64KB(b *testing.B) {
	secrets := benchSecrets()
	r := redact.New()
	r.Add(secrets...)
	text := []byte(benchText(secrets, 20))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		w := r.Writer(discard{})
		for i := 0; i < len(text); i += 4096 {
			_, _ = w.Write(text[i:min(i+4096, len(text))])
		}
		_ = w.Close()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
