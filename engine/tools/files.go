package tools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox"
)

// Limits of the file tools.
const (
	// readLimit is how much of a file read_file returns.
	readLimit = 100 << 10
	// headReadAbove: files larger than this are read with `head -c`
	// instead of being transferred whole just to be cut.
	headReadAbove = 8 << 20
	// writeLimit is the largest content write_file accepts.
	writeLimit = 10 << 20
	// listLimit is how many entries list_files shows.
	listLimit = 1000
	// searchMatchLimit is how many matching lines search reports.
	searchMatchLimit = 200
	// searchFileLimit: larger files are skipped by search.
	searchFileLimit = 2 << 20
	// searchScanFiles and searchScanBytes bound one search's work.
	searchScanFiles = 20000
	searchScanBytes = 256 << 20
	// searchLineLimit is how much of a matching line is shown.
	searchLineLimit = 240
	// binarySniff is how many leading bytes are checked for NUL.
	binarySniff = 8000
)

// isBinary reports whether data looks like a binary file: a NUL byte in
// its first bytes, the same test git and grep use.
func isBinary(data []byte) bool {
	return bytes.IndexByte(data[:min(len(data), binarySniff)], 0) >= 0
}

type pathArgs struct {
	Path string `json:"path"`
}

func readFileTool() engine.Tool {
	return spec[pathArgs]{
		name: "read_file",
		desc: "Read a text file from the workspace. Paths are relative to the workspace root /repo (\"src/main.go\"). " +
			"Returns the file's exact content; files over 100 KB are cut with a marker saying how to read the rest, " +
			"and binary files are described instead of shown.",
		params: []param{{name: "path", typ: "string", required: true,
			desc: "File path relative to the workspace root, e.g. \"src/main.go\"."}},
		validate: func(a *pathArgs) (err error) {
			a.Path, err = cleanPath("read_file", "path", a.Path, true)
			return err
		},
		subject:      func(a pathArgs) (string, string) { return a.Path, "read file " + a.Path },
		needsSandbox: true,
		run: func(ctx context.Context, tc *engine.ToolContext, a pathArgs) (string, error) {
			sb := tc.Sandbox
			info, err := sb.Stat(ctx, a.Path)
			if err != nil {
				return "", sandboxErr("read_file", "read "+a.Path, err)
			}
			if info.IsDir {
				return "", fmt.Errorf("read_file: %s is a directory; use list_files to see what it contains", a.Path)
			}
			if !info.Mode.IsRegular() {
				// A pipe or socket has no content to read (and the sandbox
				// refuses it anyway, which also covers a swap after Stat).
				return "", fmt.Errorf("read_file: %s is %s, not a regular file; only regular files can be read", a.Path, specialKind(info.Mode))
			}
			var data []byte
			if info.Size > headReadAbove {
				data, err = headBytes(ctx, sb, a.Path, readLimit+1)
			} else {
				data, err = sb.ReadFile(ctx, a.Path)
			}
			if err != nil {
				return "", sandboxErr("read_file", "read "+a.Path, err)
			}
			size := max(info.Size, int64(len(data)))
			if isBinary(data) {
				return fmt.Sprintf("%s is a binary file (%d bytes); its content is not shown. Use run_command (e.g. `file %s`, `xxd %s | head`) if you need to inspect it.",
					a.Path, size, a.Path, a.Path), nil
			}
			if size == 0 {
				return fmt.Sprintf("(%s is empty: 0 bytes)", a.Path), nil
			}
			if len(data) <= readLimit && size <= readLimit {
				return string(data), nil
			}
			cut := min(len(data), readLimit)
			// End on a line when one ends in the last few KB, else on a rune.
			if nl := bytes.LastIndexByte(data[:cut], '\n'); nl >= cut-4096 {
				cut = nl + 1
			}
			for cut > 0 && cut < len(data) && !utf8.RuneStart(data[cut]) {
				cut--
			}
			lines := bytes.Count(data[:cut], []byte("\n"))
			return fmt.Sprintf("%s\n[… truncated: showing the first %d of %d bytes (%d lines); read further with run_command, e.g. `sed -n '%d,%dp' %s` …]",
				data[:cut], cut, size, lines, lines+1, lines+2000, a.Path), nil
		},
	}.tool()
}

// specialKind names a non-regular, non-directory file type.
func specialKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}

// headBytes reads the first n bytes of a file with `head -c`, for files too
// large to transfer whole. The path was cleaned by cleanPath.
func headBytes(ctx context.Context, sb sandbox.Sandbox, p string, n int) ([]byte, error) {
	var out, errOut bytes.Buffer
	res, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"head", "-c", fmt.Sprint(n), "--", p}, Stdout: &out, Stderr: &errOut})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("head -c %d %s: exit code %d: %s: %w", n, p, res.ExitCode, strings.TrimSpace(errOut.String()), fs.ErrInvalid)
	}
	return out.Bytes(), nil
}

type listArgs struct {
	Path      string `json:"path"`
	Recursive bool   `json:"recursive"`
}

func listFilesTool() engine.Tool {
	return spec[listArgs]{
		name: "list_files",
		desc: "List the files and directories under a directory of the workspace, one per line, paths relative to the workspace root; " +
			"directories end with \"/\". The .git directory is never listed. Recursive listings show at most 1000 entries.",
		params: []param{
			{name: "path", typ: "string", desc: "Directory relative to the workspace root; \"\" or \".\" for the root. Default: the root."},
			{name: "recursive", typ: "boolean", desc: "List everything below the directory, not only its direct entries. Default: false."},
		},
		validate: func(a *listArgs) (err error) {
			a.Path, err = cleanPath("list_files", "path", a.Path, false)
			return err
		},
		subject: func(a listArgs) (string, string) {
			act := "list files in " + shown(a.Path)
			if a.Recursive {
				act += " (recursively)"
			}
			return shown(a.Path), act
		},
		needsSandbox: true,
		run: func(ctx context.Context, tc *engine.ToolContext, a listArgs) (string, error) {
			if a.Path != "" {
				info, err := tc.Sandbox.Stat(ctx, a.Path)
				if err != nil {
					return "", sandboxErr("list_files", "list "+a.Path, err)
				}
				if !info.IsDir {
					return "", fmt.Errorf("list_files: %s is a file, not a directory; use read_file to read it", a.Path)
				}
			}
			entries, err := tc.Sandbox.List(ctx, a.Path, a.Recursive)
			if err != nil {
				return "", sandboxErr("list_files", "list "+shown(a.Path), err)
			}
			entries = slices.DeleteFunc(entries, func(e sandbox.FileInfo) bool { return inGit(e.Path) })
			slices.SortFunc(entries, func(x, y sandbox.FileInfo) int { return strings.Compare(x.Path, y.Path) })
			if len(entries) == 0 {
				return fmt.Sprintf("(%s is an empty directory)", shown(a.Path)), nil
			}
			var b strings.Builder
			for i, e := range entries {
				if i == listLimit {
					fmt.Fprintf(&b, "[… %d more entries not shown; list a subdirectory, or use recursive=false …]\n", len(entries)-listLimit)
					break
				}
				b.WriteString(e.Path)
				if e.IsDir {
					b.WriteString("/")
				}
				b.WriteString("\n")
			}
			return b.String(), nil
		},
	}.tool()
}

// inGit is true for .git and anything below it.
func inGit(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return strings.EqualFold(first, ".git") || strings.Contains(p, "/.git/") || strings.HasSuffix(p, "/.git")
}

type searchArgs struct {
	Pattern string `json:"pattern"`
	Path    string `json:"path"`
	re      *regexp.Regexp
}

func searchTool() engine.Tool {
	return spec[searchArgs]{
		name: "search",
		desc: "Search the text files under a directory (or one file) of the workspace for a regular expression (Go RE2 syntax: no backreferences or lookaround; " +
			"use (?i) for case-insensitive). Reports matching lines as \"path:line: text\", at most 200. Skips .git, binary files and files over 2 MB.",
		params: []param{
			{name: "pattern", typ: "string", required: true, desc: "Regular expression matched against each line, e.g. \"func\\\\s+Parse\" or \"(?i)todo\"."},
			{name: "path", typ: "string", desc: "Directory or file to search, relative to the workspace root. Default: the whole workspace."},
		},
		validate: func(a *searchArgs) (err error) {
			if a.Pattern == "" {
				return fmt.Errorf("search: pattern is empty; give a regular expression to look for")
			}
			if a.re, err = regexp.Compile(a.Pattern); err != nil {
				return fmt.Errorf("search: pattern %q is not a valid regular expression (Go RE2 syntax: no backreferences or lookaround): %v", clip(a.Pattern, 200), err)
			}
			a.Path, err = cleanPath("search", "path", a.Path, false)
			return err
		},
		subject: func(a searchArgs) (string, string) {
			return shown(a.Path), fmt.Sprintf("search for /%s/ in %s", a.Pattern, shown(a.Path))
		},
		needsSandbox: true,
		run:          runSearch,
	}.tool()
}

func runSearch(ctx context.Context, tc *engine.ToolContext, a searchArgs) (string, error) {
	sb := tc.Sandbox
	var files []sandbox.FileInfo
	if a.Path != "" {
		info, err := sb.Stat(ctx, a.Path)
		if err != nil {
			return "", sandboxErr("search", "search "+a.Path, err)
		}
		if !info.IsDir {
			files = []sandbox.FileInfo{info}
			files[0].Path = a.Path
		}
	}
	if files == nil {
		entries, err := sb.List(ctx, a.Path, true)
		if err != nil {
			return "", sandboxErr("search", "list "+shown(a.Path), err)
		}
		for _, e := range entries {
			if !e.IsDir && !inGit(e.Path) && e.Mode.Type()&fs.ModeSymlink == 0 {
				files = append(files, e)
			}
		}
		slices.SortFunc(files, func(x, y sandbox.FileInfo) int { return strings.Compare(x.Path, y.Path) })
	}
	var (
		b                       strings.Builder
		matches, large, scanned int
		scannedBytes            int64
		more, stopped           bool
	)
	for _, f := range files {
		if err := ctxErr(ctx, "search"); err != nil {
			return "", err
		}
		if f.Size > searchFileLimit {
			large++
			continue
		}
		if scanned == searchScanFiles || scannedBytes+f.Size > searchScanBytes {
			stopped = true
			break
		}
		scanned++
		scannedBytes += f.Size
		data, err := sb.ReadFile(ctx, f.Path)
		if err != nil {
			if isCtxErr(err) {
				return "", sandboxErr("search", "read "+f.Path, err)
			}
			err = sandboxErr("search", "read "+f.Path, err)
			if isBroken(err) {
				return "", err
			}
			continue // vanished or unreadable meanwhile: not worth failing the search
		}
		if isBinary(data) {
			continue
		}
		for n, line := range strings.Split(string(data), "\n") {
			if !a.re.MatchString(line) {
				continue
			}
			if matches == searchMatchLimit {
				more = true
				break
			}
			matches++
			fmt.Fprintf(&b, "%s:%d: %s\n", f.Path, n+1, clip(strings.TrimRight(line, "\r"), searchLineLimit))
		}
		if more {
			break
		}
	}
	if more {
		fmt.Fprintf(&b, "[… stopped after %d matches; narrow the pattern or the path …]\n", searchMatchLimit)
	}
	if stopped {
		fmt.Fprintf(&b, "[… stopped after searching %d files (%d MB); give a narrower path …]\n", scanned, scannedBytes>>20)
	}
	if large > 0 {
		fmt.Fprintf(&b, "[%d file(s) over %d MB were not searched; use run_command with grep for them]\n", large, searchFileLimit>>20)
	}
	if matches == 0 {
		return fmt.Sprintf("no matches for /%s/ in %s (%d files searched)\n%s", a.Pattern, shown(a.Path), scanned, b.String()), nil
	}
	return b.String(), nil
}

func isBroken(err error) bool { return errors.Is(err, engine.ErrSandboxBroken) }

type writeArgs struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

func writeFileTool() engine.Tool {
	return spec[writeArgs]{
		name: "write_file",
		desc: "Create a file, or replace a file's whole content, in the workspace. Parent directories are created as needed; " +
			"an existing file keeps its permissions. For a small change to an existing file prefer edit_file.",
		mutating: true,
		params: []param{
			{name: "path", typ: "string", required: true, desc: "File path relative to the workspace root, e.g. \"src/main.go\"."},
			{name: "content", typ: "string", required: true, desc: "The complete new content of the file."},
		},
		validate: func(a *writeArgs) (err error) {
			if len(a.Content) > writeLimit {
				return fmt.Errorf("write_file: content is %d bytes; the limit is %d MB — generate large files with run_command instead", len(a.Content), writeLimit>>20)
			}
			a.Path, err = cleanPath("write_file", "path", a.Path, true)
			return err
		},
		subject: func(a writeArgs) (string, string) {
			return a.Path, fmt.Sprintf("write %d bytes to %s", len(a.Content), a.Path)
		},
		needsSandbox: true,
		run: func(ctx context.Context, tc *engine.ToolContext, a writeArgs) (string, error) {
			perm := fs.FileMode(0o644)
			what := "created"
			info, err := tc.Sandbox.Stat(ctx, a.Path)
			switch {
			case err == nil && info.IsDir:
				return "", fmt.Errorf("write_file: %s is a directory; give a file path", a.Path)
			case err == nil:
				perm = info.Mode.Perm()
				what = fmt.Sprintf("replaced the previous %d bytes", info.Size)
			case !errors.Is(err, sandbox.ErrNotFound):
				return "", sandboxErr("write_file", "write "+a.Path, err)
			}
			if err := tc.Sandbox.WriteFile(ctx, a.Path, []byte(a.Content), perm); err != nil {
				return "", sandboxErr("write_file", "write "+a.Path, err)
			}
			return fmt.Sprintf("wrote %d bytes to %s (%s)", len(a.Content), a.Path, what), nil
		},
	}.tool()
}

type editArgs struct {
	Path string `json:"path"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

func editFileTool() engine.Tool {
	return spec[editArgs]{
		name: "edit_file",
		desc: "Replace one exact piece of text in a file. `old` must occur exactly once in the file, character for character " +
			"(including indentation and line breaks); include enough surrounding lines to make it unique. `new` replaces it " +
			"(\"\" deletes it). Read the file first so you copy `old` exactly.",
		mutating: true,
		params: []param{
			{name: "path", typ: "string", required: true, desc: "File path relative to the workspace root."},
			{name: "old", typ: "string", required: true, desc: "The exact text to replace; must occur exactly once in the file."},
			{name: "new", typ: "string", required: true, desc: "The replacement text."},
		},
		validate: func(a *editArgs) (err error) {
			if a.Old == "" {
				return fmt.Errorf("edit_file: old is empty; give the exact text to replace (to create or overwrite a file use write_file)")
			}
			if a.Old == a.New {
				return fmt.Errorf("edit_file: old and new are identical, so there is nothing to change")
			}
			a.Path, err = cleanPath("edit_file", "path", a.Path, true)
			return err
		},
		subject: func(a editArgs) (string, string) {
			return a.Path, fmt.Sprintf("edit %s: replace %s with %s", a.Path, countLines(a.Old), countLines(a.New))
		},
		needsSandbox: true,
		run:          runEdit,
	}.tool()
}

func runEdit(ctx context.Context, tc *engine.ToolContext, a editArgs) (string, error) {
	sb := tc.Sandbox
	info, err := sb.Stat(ctx, a.Path)
	if err != nil {
		return "", sandboxErr("edit_file", "edit "+a.Path, err)
	}
	if info.IsDir {
		return "", fmt.Errorf("edit_file: %s is a directory; give a file path", a.Path)
	}
	data, err := sb.ReadFile(ctx, a.Path)
	if err != nil {
		return "", sandboxErr("edit_file", "read "+a.Path, err)
	}
	if isBinary(data) {
		return "", fmt.Errorf("edit_file: %s is a binary file; edit_file only changes text", a.Path)
	}
	content := string(data)
	switch n := strings.Count(content, a.Old); n {
	case 0:
		hint := "read_file it again and copy the text exactly, including indentation and line breaks"
		switch {
		case strings.Contains(content, "\r\n") && !strings.Contains(a.Old, "\r\n") && strings.Contains(content, strings.ReplaceAll(a.Old, "\n", "\r\n")):
			hint = "the file uses Windows line endings (\\r\\n); include them in old"
		case strings.Contains(squash(content), squash(a.Old)):
			hint = "a similar text exists but its whitespace or indentation differs; copy it exactly from read_file"
		}
		return "", fmt.Errorf("edit_file: old text not found in %s (0 matches); %s", a.Path, hint)
	case 1:
	default:
		return "", fmt.Errorf("edit_file: old text occurs %d times in %s (at lines %s); it must match exactly once, so include more surrounding lines in old to pick one",
			n, a.Path, matchLines(content, a.Old, 10))
	}
	at := strings.Index(content, a.Old)
	line := strings.Count(content[:at], "\n") + 1
	updated := content[:at] + a.New + content[at+len(a.Old):]
	if err := sb.WriteFile(ctx, a.Path, []byte(updated), info.Mode.Perm()); err != nil {
		return "", sandboxErr("edit_file", "write "+a.Path, err)
	}
	return fmt.Sprintf("edited %s at line %d: replaced %s with %s", a.Path, line, countLines(a.Old), countLines(a.New)), nil
}

// countLines describes a text's size for messages: "3 lines", "1 line",
// "nothing".
func countLines(s string) string {
	if s == "" {
		return "nothing"
	}
	n := strings.Count(strings.TrimSuffix(s, "\n"), "\n") + 1
	if n == 1 {
		return "1 line"
	}
	return fmt.Sprintf("%d lines", n)
}

// matchLines lists the line numbers where sub starts, at most limit of them.
func matchLines(s, sub string, limit int) string {
	var out []string
	off := 0
	for len(out) < limit {
		i := strings.Index(s[off:], sub)
		if i < 0 {
			break
		}
		out = append(out, fmt.Sprint(strings.Count(s[:off+i], "\n")+1))
		off += i + len(sub)
	}
	if strings.Count(s[off:], sub) > 0 {
		out = append(out, "…")
	}
	return strings.Join(out, ", ")
}

// squash removes all whitespace, to recognise a near miss.
func squash(s string) string {
	return strings.Join(strings.Fields(s), "")
}

func deleteFileTool() engine.Tool {
	return spec[pathArgs]{
		name:     "delete_file",
		desc:     "Delete one file (or an empty directory) from the workspace. It does not delete non-empty directories.",
		mutating: true,
		params: []param{{name: "path", typ: "string", required: true,
			desc: "Path of the file relative to the workspace root."}},
		validate: func(a *pathArgs) (err error) {
			a.Path, err = cleanPath("delete_file", "path", a.Path, true)
			return err
		},
		subject:      func(a pathArgs) (string, string) { return a.Path, "delete " + a.Path },
		needsSandbox: true,
		run: func(ctx context.Context, tc *engine.ToolContext, a pathArgs) (string, error) {
			sb := tc.Sandbox
			info, err := sb.Stat(ctx, a.Path)
			if err != nil {
				return "", sandboxErr("delete_file", "delete "+a.Path, err)
			}
			if info.IsDir {
				entries, err := sb.List(ctx, a.Path, false)
				if err != nil {
					return "", sandboxErr("delete_file", "list "+a.Path, err)
				}
				if len(entries) > 0 {
					return "", fmt.Errorf("delete_file: %s is a directory with %d entries; delete_file removes files and empty directories only", a.Path, len(entries))
				}
			}
			if err := sb.Remove(ctx, a.Path, false); err != nil {
				return "", sandboxErr("delete_file", "delete "+a.Path, err)
			}
			if info.IsDir {
				return fmt.Sprintf("deleted empty directory %s", a.Path), nil
			}
			return fmt.Sprintf("deleted %s (%d bytes)", a.Path, info.Size), nil
		},
	}.tool()
}
