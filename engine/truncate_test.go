package engine

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateKeepsHeadTailAndValidUTF8(t *testing.T) {
	s := strings.Repeat("é", 1000) // 2000 bytes
	got := truncate(s, 101)
	if !utf8.ValidString(got) {
		t.Fatal("truncate cut a rune in half")
	}
	if !strings.Contains(got, "bytes omitted") || len(got) > 101+40 {
		t.Fatalf("truncate = %d bytes: %q", len(got), got)
	}
	if truncate("short", 10) != "short" {
		t.Fatal("short text changed")
	}
}
