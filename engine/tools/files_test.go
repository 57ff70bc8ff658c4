package tools

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox"
)

func TestPathConfinement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	paths := []struct {
		path string
		want string
	}{
		{"../x", `contains ".."`},
		{"a/../../x", `contains ".."`},
		{"a/../b", `contains ".."`},
		{"..", `contains ".."`},
		{`..\x`, `contains ".."`},
		{`a\..\..\x`, `contains ".."`},
		{`src\main.go`, "contains a backslash; use forward slashes"},
		{"/etc/passwd", "is absolute"},
		{`\etc\passwd`, "is absolute"},
		{"/repo/src/a.go", `so write "src/a.go"`},
		{"~/.ssh/id_rsa", "home directory"},
		{`C:\Windows`, "drive letter"},
		{"a\x00b", "NUL byte"},
		{"a\nb", "control character"},
		{".git/config", "inside .git"},
		{"sub/.GIT/hooks/pre-commit", "inside .git"},
	}
	type use struct{ tool, args string }
	uses := func(p string) []use {
		return []use{
			{"read_file", jsonArgs(map[string]any{"path": p})},
			{"write_file", jsonArgs(map[string]any{"path": p, "content": "pwned"})},
			{"edit_file", jsonArgs(map[string]any{"path": p, "old": "a", "new": "b"})},
			{"delete_file", jsonArgs(map[string]any{"path": p})},
			{"list_files", jsonArgs(map[string]any{"path": p})},
			{"search", jsonArgs(map[string]any{"pattern": "x", "path": p})},
			{"run_command", jsonArgs(map[string]any{"command": "true", "cwd": p})},
		}
	}
	before := e.sb.calls.Load()
	for _, pc := range paths {
		for _, u := range uses(pc.path) {
			_, err := e.call(u.tool, u.args)
			wantErr(t, fmt.Sprintf("%s(%q)", u.tool, pc.path), err, pc.want)
		}
	}
	if n := e.sb.calls.Load() - before; n != 0 {
		t.Errorf("refused paths reached the sandbox %d times", n)
	}
	// An empty path is the root: fine to list, not a file.
	for _, c := range []struct{ tool, args, want string }{
		{"read_file", `{"path": ""}`, "path is empty"},
		{"delete_file", `{"path": ""}`, "path is empty"},
		{"write_file", `{"path": "", "content": "x"}`, "path is empty"},
		{"read_file", `{"path": "./"}`, "is the workspace root itself"},
		{"delete_file", `{"path": "."}`, "is the workspace root itself"},
		{"write_file", `{"path": "a/..", "content": "x"}`, `contains ".."`},
	} {
		_, err := e.call(c.tool, c.args)
		wantErr(t, c.tool+c.args, err, c.want)
	}
}

func TestSymlinkEscape(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("top secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(e.sb.root, "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ tool, args string }{
		{"read_file", `{"path": "link/secret.txt"}`},
		{"write_file", `{"path": "link/new.txt", "content": "x"}`},
		{"edit_file", `{"path": "link/secret.txt", "old": "top", "new": "no"}`},
		{"delete_file", `{"path": "link/secret.txt"}`},
		{"list_files", `{"path": "link"}`},
		{"search", `{"pattern": "secret", "path": "link"}`},
		{"run_command", `{"command": "cat secret.txt", "cwd": "link"}`},
	} {
		out, err := e.call(c.tool, c.args)
		wantErr(t, c.tool, err, "leads outside the workspace")
		if !errors.Is(err, sandbox.ErrOutsideWorkspace) {
			t.Errorf("%s: %v does not wrap ErrOutsideWorkspace", c.tool, err)
		}
		if strings.Contains(out, "top secret") {
			t.Errorf("%s leaked the file: %q", c.tool, out)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "new.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("write_file created a file outside the workspace: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret.txt")); string(b) != "top secret" {
		t.Errorf("the outside file changed: %q", b)
	}
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("src/main.go", "package main\n\nfunc main() {}\n")
	if got := e.mustCall("read_file", `{"path": "src/main.go"}`); got != "package main\n\nfunc main() {}\n" {
		t.Errorf("read_file = %q", got)
	}
	e.write("empty.txt", "")
	wantContains(t, "empty file", e.mustCall("read_file", `{"path": "empty.txt"}`), "empty.txt is empty: 0 bytes")

	e.write("logo.png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	wantContains(t, "binary file", e.mustCall("read_file", `{"path": "logo.png"}`), "logo.png is a binary file (16 bytes)", "not shown")

	var big strings.Builder
	for i := 0; big.Len() < 300<<10; i++ {
		fmt.Fprintf(&big, "line %06d: some text to fill the file\n", i)
	}
	e.write("big.txt", big.String())
	got := e.mustCall("read_file", `{"path": "big.txt"}`)
	if len(got) > readLimit+500 {
		t.Errorf("big file returned %d bytes", len(got))
	}
	wantContains(t, "big file", got, "line 000000:", fmt.Sprintf("of %d bytes", big.Len()), "[… truncated: showing the first", "sed -n")
	head, _, _ := strings.Cut(got, "\n[… truncated")
	if !strings.HasPrefix(big.String(), head) || !strings.HasSuffix(head, "\n") {
		t.Errorf("truncated content is not a whole-line prefix of the file (ends %q)", head[len(head)-20:])
	}

	_, err := e.call("read_file", `{"path": "src"}`)
	wantErr(t, "directory", err, "src is a directory; use list_files")
	_, err = e.call("read_file", `{"path": "nope.go"}`)
	wantErr(t, "missing", err, "no such file or directory")
	if !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("missing file error %v does not wrap ErrNotFound", err)
	}
}

func TestReadFileHugeUsesHead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f, err := os.Create(filepath.Join(e.sb.root, "huge.log"))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 99) + "\n"
	for range (headReadAbove + 1<<20) / len(line) {
		f.WriteString(line)
	}
	f.Close()
	got := e.mustCall("read_file", `{"path": "huge.log"}`)
	wantContains(t, "huge file", got, "[… truncated: showing the first", fmt.Sprintf("of %d bytes", (headReadAbove+1<<20)/len(line)*len(line)))
}

func TestSandboxFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("a.txt", "a")
	calls := []struct{ tool, args string }{
		{"read_file", `{"path": "a.txt"}`},
		{"list_files", `{}`},
		{"search", `{"pattern": "a"}`},
		{"write_file", `{"path": "a.txt", "content": "b"}`},
		{"edit_file", `{"path": "a.txt", "old": "a", "new": "b"}`},
		{"delete_file", `{"path": "a.txt"}`},
		{"run_command", `{"command": "true"}`},
		{"git_commit", `{"message": "x"}`},
	}
	e.sb.setFail(errors.New("bwrap: connection reset"))
	for _, c := range calls {
		_, err := e.call(c.tool, c.args)
		if !errors.Is(err, engine.ErrSandboxBroken) || !strings.Contains(fmt.Sprint(err), "connection reset") {
			t.Errorf("%s with a failing sandbox: %v; want ErrSandboxBroken with the cause", c.tool, err)
		}
	}
	e.sb.setFail(nil)
	e.sb.Close(t.Context())
	for _, c := range calls {
		if _, err := e.call(c.tool, c.args); !errors.Is(err, engine.ErrSandboxBroken) || !errors.Is(err, sandbox.ErrClosed) {
			t.Errorf("%s on a closed sandbox: %v; want ErrSandboxBroken and ErrClosed", c.tool, err)
		}
	}
	e.tc.Sandbox = nil
	if _, err := e.call("read_file", `{"path": "a.txt"}`); !errors.Is(err, engine.ErrSandboxBroken) {
		t.Errorf("no sandbox: %v", err)
	}
}

func TestListFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("README.md", "hi")
	e.write("src/main.go", "package main")
	e.write("src/util/strings.go", "package util")
	e.write(".git/HEAD", "ref: refs/heads/main")
	if err := os.Mkdir(filepath.Join(e.sb.root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, want := e.mustCall("list_files", `{}`), "README.md\nempty/\nsrc/\n"; got != want {
		t.Errorf("list_files root = %q; want %q", got, want)
	}
	if got, want := e.mustCall("list_files", `{"path": ".", "recursive": true}`), "README.md\nempty/\nsrc/\nsrc/main.go\nsrc/util/\nsrc/util/strings.go\n"; got != want {
		t.Errorf("list_files recursive = %q; want %q", got, want)
	}
	if got, want := e.mustCall("list_files", `{"path": "src/"}`), "src/main.go\nsrc/util/\n"; got != want {
		t.Errorf("list_files src = %q; want %q", got, want)
	}
	wantContains(t, "empty dir", e.mustCall("list_files", `{"path": "empty"}`), "empty is an empty directory")
	_, err := e.call("list_files", `{"path": "README.md"}`)
	wantErr(t, "file", err, "README.md is a file, not a directory; use read_file")
	_, err = e.call("list_files", `{"path": "nope"}`)
	wantErr(t, "missing", err, "no such file or directory")

	for i := range listLimit + 5 {
		e.write(fmt.Sprintf("many/f%04d", i), "")
	}
	got := e.mustCall("list_files", `{"path": "many"}`)
	wantContains(t, "capped listing", got, "many/f0000\n", "[… 5 more entries not shown")
}

func TestSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("src/a.go", "package a\n\n// NOTE: fix\nfunc A() {}\n")
	e.write("src/b.go", "package b\nfunc B() { // note later\r\n}\n")
	e.write(".git/COMMIT_EDITMSG", "NOTE in git\n")
	e.write("bin/tool", "\x00\x01NOTE binary")
	got := e.mustCall("search", `{"pattern": "NOTE"}`)
	if want := "src/a.go:3: // NOTE: fix\n"; got != want {
		t.Errorf("search NOTE = %q; want %q", got, want)
	}
	got = e.mustCall("search", `{"pattern": "(?i)note", "path": "src"}`)
	if want := "src/a.go:3: // NOTE: fix\nsrc/b.go:2: func B() { // note later\n"; got != want {
		t.Errorf("search (?i)note = %q; want %q", got, want)
	}
	got = e.mustCall("search", `{"pattern": "^func", "path": "src/b.go"}`)
	if want := "src/b.go:2: func B() { // note later\n"; got != want {
		t.Errorf("search in one file = %q; want %q", got, want)
	}
	wantContains(t, "no match", e.mustCall("search", `{"pattern": "nothing-like-this"}`), "no matches for /nothing-like-this/ in .")
	_, err := e.call("search", `{"pattern": "x", "path": "nope"}`)
	wantErr(t, "missing path", err, "no such file or directory")

	var many strings.Builder
	for i := range searchMatchLimit + 50 {
		fmt.Fprintf(&many, "match %d %s\n", i, strings.Repeat("y", 400))
	}
	e.write("many.txt", many.String())
	got = e.mustCall("search", `{"pattern": "^match", "path": "many.txt"}`)
	if n := strings.Count(got, "many.txt:"); n != searchMatchLimit {
		t.Errorf("search returned %d matches; want the cap %d", n, searchMatchLimit)
	}
	wantContains(t, "capped search", got, "[… stopped after 200 matches", "many.txt:1: match 0 yyy", "…\n")
}

func TestWriteFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wantContains(t, "create", e.mustCall("write_file", `{"path": "a/b/c.txt", "content": "hello\n", "confidence": 0.9, "reason": "needed"}`),
		"wrote 6 bytes to a/b/c.txt (created)")
	if got := e.read("a/b/c.txt"); got != "hello\n" {
		t.Errorf("file = %q", got)
	}
	e.write("run.sh", "#!/bin/sh\n")
	os.Chmod(filepath.Join(e.sb.root, "run.sh"), 0o755)
	wantContains(t, "replace", e.mustCall("write_file", `{"path": "run.sh", "content": "#!/bin/sh\necho hi\n"}`),
		"wrote 18 bytes to run.sh (replaced the previous 10 bytes)")
	if fi, _ := os.Stat(filepath.Join(e.sb.root, "run.sh")); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode after overwrite = %v; want 0755 kept", fi.Mode().Perm())
	}
	_, err := e.call("write_file", `{"path": "a/b", "content": "x"}`)
	wantErr(t, "directory", err, "a/b is a directory")
}

func TestEditFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := "package a\n\nfunc A() int {\n\treturn 1\n}\n\nfunc B() int {\n\treturn 1\n}\n"
	e.write("a.go", src)

	_, err := e.call("edit_file", `{"path": "a.go", "old": "\treturn 1\n", "new": "\treturn 2\n"}`)
	wantErr(t, "ambiguous", err, "old text occurs 2 times in a.go (at lines 4, 8)", "include more surrounding lines")
	_, err = e.call("edit_file", `{"path": "a.go", "old": "return 3", "new": "x"}`)
	wantErr(t, "absent", err, "old text not found in a.go (0 matches)", "read_file it again")
	_, err = e.call("edit_file", `{"path": "a.go", "old": "func A() int {\n    return 1\n}", "new": "x"}`)
	wantErr(t, "whitespace", err, "0 matches", "whitespace or indentation differs")
	if e.read("a.go") != src {
		t.Fatal("a failed edit changed the file")
	}

	got := e.mustCall("edit_file", `{"path": "a.go", "old": "func B() int {\n\treturn 1\n", "new": "func B() int {\n\treturn 2\n"}`)
	wantContains(t, "edit", got, "edited a.go at line 7: replaced 2 lines with 2 lines")
	if want := strings.Replace(src, "func B() int {\n\treturn 1", "func B() int {\n\treturn 2", 1); e.read("a.go") != want {
		t.Errorf("after edit:\n%s", e.read("a.go"))
	}
	e.mustCall("edit_file", `{"path": "a.go", "old": "\n\nfunc B() int {\n\treturn 2\n}\n", "new": "\n"}`)
	if e.read("a.go") != "package a\n\nfunc A() int {\n\treturn 1\n}\n" {
		t.Errorf("after deleting B:\n%s", e.read("a.go"))
	}

	e.write("win.txt", "one\r\ntwo\r\n")
	_, err = e.call("edit_file", `{"path": "win.txt", "old": "one\ntwo", "new": "x"}`)
	wantErr(t, "crlf", err, "Windows line endings")
	e.write("bin.dat", "a\x00b")
	_, err = e.call("edit_file", `{"path": "bin.dat", "old": "a", "new": "c"}`)
	wantErr(t, "binary", err, "binary file")
	_, err = e.call("edit_file", `{"path": "none.go", "old": "a", "new": "c"}`)
	wantErr(t, "missing", err, "no such file")
}

func TestDeleteFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("a.txt", "abc")
	e.write("dir/b.txt", "b")
	os.Mkdir(filepath.Join(e.sb.root, "empty"), 0o755)
	wantContains(t, "delete", e.mustCall("delete_file", `{"path": "a.txt"}`), "deleted a.txt (3 bytes)")
	if _, err := os.Stat(filepath.Join(e.sb.root, "a.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a.txt still there: %v", err)
	}
	_, err := e.call("delete_file", `{"path": "a.txt"}`)
	wantErr(t, "again", err, "no such file or directory")
	_, err = e.call("delete_file", `{"path": "dir"}`)
	wantErr(t, "dir", err, "dir is a directory with 1 entries")
	wantContains(t, "empty dir", e.mustCall("delete_file", `{"path": "empty"}`), "deleted empty directory empty")
}
