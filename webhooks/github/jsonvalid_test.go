package github

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hero-dev/hero/bot"
)

// oracle is the answer validJSONObject must give: encoding/json's.
func oracle(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}

var jsonCases = []string{
	`{}`, ` {} `, "\t{\n}\r\n", `{"a":1}`, `{"a":-0.5e+10,"b":[1,2,{"c":null}],"d":true,"e":false}`,
	`{"s":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"}`, `{"a":"é日本"}`, "{\"a\":\"\xff\xfe\"}",
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":1e+}`, `{"a":+1}`, `{"a":0x1}`,
	`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`, "{\"a\":\"\x01\"}", "{\"a\":\"tab\there\"}",
	`{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `{"a":1}}`, `{"a":1} {}`, `{"a":[1,]}`,
	`{"a":[}`, `{"a":tru}`, `{"a":nul}`, `{"a":True}`, `[]`, `"x"`, `1`, `null`, ``, ` `, `{`, `{"a":"`,
	`{"a":1}x`, "\ufeff{}", `{"a":[[[[]]]]}`, `{"":""}`, `{"a":-0}`, `{"a":-01}`, `{"a":1E5}`, `{"a":1.5e-3}`,
}

func TestValidJSONObjectMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := append([]string(nil), jsonCases...)
	cases = append(cases, strings.Repeat("[", 10)+"1"+strings.Repeat("]", 10))
	cases = append(cases, `{"a":`+strings.Repeat("[", jsonMaxDepth-1)+strings.Repeat("]", jsonMaxDepth-1)+`}`)
	cases = append(cases, `{"a":`+strings.Repeat("[", jsonMaxDepth)+strings.Repeat("]", jsonMaxDepth)+`}`)
	fixtures, _ := filepath.Glob(fixtures + "*.json")
	for _, f := range fixtures {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, string(b))
		// Every truncation of a real payload, sampled.
		for i := 0; i < len(b); i += 97 {
			cases = append(cases, string(b[:i]))
		}
	}
	for _, c := range cases {
		if got, want := validJSONObject([]byte(c)), oracle([]byte(c)); got != want {
			t.Errorf("validJSONObject(%q) = %v; encoding/json says %v", bot.OneLine(c, 80), got, want)
		}
	}
}

func FuzzValidJSONObject(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSONObject(b), oracle(b); got != want {
			t.Fatalf("validJSONObject(%q) = %v; encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	body, err := os.ReadFile(fixtures + "issue_comment.created.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if !json.Valid(body) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("validJSONObject", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if !validJSONObject(body) {
				b.Fatal("invalid")
			}
		}
	})
}
