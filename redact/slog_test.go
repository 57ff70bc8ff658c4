package redact_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/hero-dev/hero/redact"
)

const apiKey = "sk-live-0123456789ABCDEF"

type stringer struct{}

func (stringer) String() string { return "token=" + apiKey }

type config struct {
	User  string
	Token string
	Raw   []byte `json:"raw"`
}

type lazy struct{}

func (lazy) LogValue() slog.Value { return slog.StringValue("resolved " + apiKey) }

func TestHandlerNeverLogsSecret(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.AddNamed("OPENAI_API_KEY", apiKey)
	for _, kind := range []string{"text", "json"} {
		t.Run(kind, func(t *testing.T) {
			var buf bytes.Buffer
			opts := &slog.HandlerOptions{Level: slog.LevelDebug}
			var next slog.Handler = slog.NewTextHandler(&buf, opts)
			if kind == "json" {
				next = slog.NewJSONHandler(&buf, opts)
			}
			log := slog.New(redact.Handler(next, r))
			log = log.With("key", apiKey, slog.Group("auth", "bearer", "Bearer "+apiKey))
			log.WithGroup("g").Info("calling with "+apiKey,
				"plain", apiKey,
				"err", fmt.Errorf("request failed: %w", errors.New("bad key "+apiKey)),
				"stringer", stringer{},
				"struct", config{User: "bob", Token: apiKey},
				"bytes", []byte(apiKey),
				"bytesInStruct", config{Raw: []byte(apiKey)},
				"map", map[string]string{"k": apiKey},
				"lazy", lazy{},
				"b64", base64.StdEncoding.EncodeToString([]byte(apiKey)),
				slog.Group("nested", slog.Group("deeper", "v", apiKey)),
				apiKey, "as key",
				"ok", 42,
			)
			out := buf.String()
			for _, leak := range []string{apiKey, base64.StdEncoding.EncodeToString([]byte(apiKey)), "0123456789ABCDEF"} {
				if strings.Contains(out, leak) {
					t.Errorf("log output contains secret form %q:\n%s", leak, out)
				}
			}
			if n := strings.Count(out, "[REDACTED:OPENAI_API_KEY]"); n < 13 {
				t.Errorf("expected every attribute redacted, found %d labels:\n%s", n, out)
			}
			// Values without secrets keep their type and formatting.
			if !strings.Contains(out, "42") || !strings.Contains(out, "bob") {
				t.Errorf("non-secret values lost:\n%s", out)
			}
		})
	}
}

func TestHandlerKeepsCleanValues(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.Add(apiKey)
	var buf bytes.Buffer
	log := slog.New(redact.Handler(slog.NewJSONHandler(&buf, nil), r))
	log.Info("hello", "cfg", config{User: "alice"}, "n", 3)
	want := `"msg":"hello","cfg":{"User":"alice","Token":"","raw":null},"n":3}`
	if !strings.Contains(buf.String(), want) {
		t.Errorf("got %s, want it to contain %s", buf.String(), want)
	}
}
