package tools

import (
	"path"
	"strings"
	"testing"
)

// FuzzCleanPath checks the model-facing path check: whatever the model
// writes, an accepted path is relative, clean, free of control characters,
// never climbs out of the workspace and never names hero's .git. The seeds
// are the escapes the tests and the security review tried.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"", ".", "src/main.go", "../etc/passwd", "a/../../b", "/repo/x", "/etc/shadow",
		"~/.ssh/id_rsa", "C:\\Windows", "a\\..\\b", ".git/config", "a/.GIT/hooks/pre-push",
		"a/./b//c/", "a\x00b", "a\x1b[2Jb", "..", "./..", "x/..", "....//", "a/.git",
		"\u202eevil", "%2e%2e/x", "a/ ../b",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, p string, needFile bool) {
		got, err := cleanPath("read_file", "path", p, needFile)
		if err != nil {
			if got != "" {
				t.Fatalf("cleanPath(%q) returned %q with error %v", p, got, err)
			}
			if !strings.HasPrefix(err.Error(), "read_file: path") {
				t.Fatalf("cleanPath(%q) error %q does not say which tool and argument", p, err)
			}
			return
		}
		if needFile && got == "" {
			t.Fatalf("cleanPath(%q, needFile) accepted the workspace root", p)
		}
		if got == "" {
			return
		}
		if strings.HasPrefix(got, "/") || strings.Contains(got, `\`) {
			t.Fatalf("cleanPath(%q) = %q: not a relative forward-slash path", p, got)
		}
		if path.Clean(got) != got {
			t.Fatalf("cleanPath(%q) = %q: not clean", p, got)
		}
		for _, part := range strings.Split(got, "/") {
			if part == ".." || strings.EqualFold(part, ".git") {
				t.Fatalf("cleanPath(%q) = %q: has component %q", p, got, part)
			}
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("cleanPath(%q) = %q: has control character %q", p, got, r)
			}
		}
		// Joined under the workspace root it stays there.
		if j := path.Join("/repo", got); j != "/repo" && !strings.HasPrefix(j, "/repo/") {
			t.Fatalf("cleanPath(%q) = %q escapes to %q", p, got, j)
		}
	})
}
