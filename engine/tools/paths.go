package tools

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox"
)

// cleanPath checks a path the model gave before anything touches the
// sandbox, and returns it cleaned ("" is the workspace root). The sandbox
// enforces confinement again (and catches symlinks); this check exists so
// the model gets a precise explanation instead of a bare refusal, and so a
// bad path never reaches a provider at all.
//
// Refused: NUL and other control characters, absolute paths (with a hint
// when the model wrote /repo/…), "~", drive letters, any ".." component,
// backslashes (a Windows separator or an escape attempt, never what the
// model means on Linux), and anything inside .git, which hero manages.
// needFile refuses the root itself.
func cleanPath(tool, arg, p string, needFile bool) (string, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %s %q %s", tool, arg, clip(p, 200), fmt.Sprintf(format, a...))
	}
	for _, r := range p {
		if r == 0 {
			return "", bad("contains a NUL byte; give a plain path relative to the workspace root, like \"src/main.go\"")
		}
		if r < 0x20 || r == 0x7f {
			return "", bad("contains a control character (%q); give a plain path relative to the workspace root, like \"src/main.go\"", r)
		}
	}
	switch {
	case p == sandbox.WorkspaceRoot || strings.HasPrefix(p, sandbox.WorkspaceRoot+"/"):
		rel := strings.TrimPrefix(strings.TrimPrefix(p, sandbox.WorkspaceRoot), "/")
		if rel == "" {
			rel = "."
		}
		return "", bad("is absolute; paths are relative to the workspace root %s, so write %q", sandbox.WorkspaceRoot, rel)
	case strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`):
		return "", bad("is absolute; only files inside the workspace can be used, with paths relative to its root %s (like \"src/main.go\")", sandbox.WorkspaceRoot)
	case strings.HasPrefix(p, "~"):
		return "", bad("refers to a home directory; only files inside the workspace can be used, with paths relative to its root %s", sandbox.WorkspaceRoot)
	case len(p) >= 2 && p[1] == ':' && (p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z'):
		return "", bad("has a drive letter; paths are relative to the workspace root %s and use forward slashes", sandbox.WorkspaceRoot)
	}
	for _, part := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return "", bad("contains \"..\"; paths must stay inside the workspace, so name the file from the workspace root instead")
		}
		if strings.EqualFold(part, ".git") {
			return "", bad("is inside .git, which hero manages; use git_commit, or run_command with git")
		}
	}
	if strings.Contains(p, `\`) {
		return "", bad("contains a backslash; use forward slashes (/) to separate directories")
	}
	clean := path.Clean(p)
	if clean == "." {
		clean = ""
	}
	if needFile && clean == "" {
		if p == "" {
			return "", fmt.Errorf("%s: %s is empty; give the file's path relative to the workspace root, like \"src/main.go\"", tool, arg)
		}
		return "", bad("is the workspace root itself; give a file's path, like \"src/main.go\"")
	}
	return clean, nil
}

// shown is how a cleaned path appears in results and messages.
func shown(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// sandboxErr turns an error from a sandbox call into one for the model.
// Errors about the path or the file (outside the workspace, not found, a
// directory where a file was expected, permission, disk full…) are the
// model's to handle; anything else is a failure of the sandbox itself and
// wraps engine.ErrSandboxBroken so the run stops and the sandbox is
// replaced. A cancelled context is passed through.
func sandboxErr(tool, op string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %s: %w", tool, op, err)
	case errors.Is(err, sandbox.ErrOutsideWorkspace):
		return &quietError{fmt.Sprintf("%s: %s: the path leads outside the workspace (through a symlink pointing out of %s?); only files inside the workspace can be used",
			tool, op, sandbox.WorkspaceRoot), err}
	case errors.Is(err, sandbox.ErrNotFound):
		return &quietError{fmt.Sprintf("%s: %s: no such file or directory (list_files shows what exists)", tool, op), err}
	case errors.Is(err, sandbox.ErrClosed):
		return fmt.Errorf("%s: %s: %w: %w", tool, op, engine.ErrSandboxBroken, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrExist), errors.Is(err, fs.ErrInvalid),
		errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ENOTEMPTY),
		errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EFBIG),
		errors.Is(err, syscall.EROFS), errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%s: %s: %w", tool, op, err)
	}
	return fmt.Errorf("%s: %s: %w: %w", tool, op, engine.ErrSandboxBroken, err)
}

// quietError says msg to the model but still wraps err for errors.Is; the
// provider's own text (with host paths) says nothing more useful.
type quietError struct {
	msg string
	err error
}

func (e *quietError) Error() string { return e.msg }
func (e *quietError) Unwrap() error { return e.err }
