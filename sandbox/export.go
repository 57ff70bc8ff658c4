package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

var shaRe = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// Head returns the commit the workspace's HEAD points to. It runs git in
// the sandbox (without network), never host git on the workspace's
// model-controlled .git.
func Head(ctx context.Context, sb Sandbox) (string, error) {
	var out, errb bytes.Buffer
	res, err := sb.Exec(ctx, Cmd{Args: []string{"git", "rev-parse", "--verify", "-q", "HEAD^{commit}"}, Stdout: &out, Stderr: &errb, Timeout: time.Minute})
	if err != nil {
		return "", fmt.Errorf("read the workspace's HEAD: %w", err)
	}
	sha := strings.TrimSpace(out.String())
	if res.ExitCode != 0 || !shaRe.MatchString(sha) {
		return "", fmt.Errorf("the workspace has no commit at HEAD (git says: %s)", tail(errb.String(), 300))
	}
	return sha, nil
}

// ErrTooLarge is returned by ExportHead when the bundle exceeds its limit.
var ErrTooLarge = errors.New("the run's commits are larger than hero accepts")

// ExportHead writes a git bundle of the workspace's HEAD to w, made by
// git inside the sandbox without network. Commits reachable from any of
// have that the workspace holds are left out (the receiver has them).
// At most limit bytes are written.
func ExportHead(ctx context.Context, sb Sandbox, w io.Writer, have []string, limit int64) error {
	args := []string{"sh", "-c", `set -e
ex=
for c in "$@"; do
	if git cat-file -e "$c^{commit}" 2>/dev/null; then ex="$ex ^$c"; fi
done
exec git bundle create -q - HEAD $ex`, "sh"}
	for _, c := range have {
		if shaRe.MatchString(c) {
			args = append(args, c)
		}
	}
	lw := &limitWriter{w: w, n: limit}
	var errb bytes.Buffer
	res, err := sb.Exec(ctx, Cmd{Args: args, Stdout: lw, Stderr: &errb, Timeout: 10 * time.Minute})
	if lw.over {
		return ErrTooLarge
	}
	if err != nil {
		return fmt.Errorf("bundle the run's commits: %w", err)
	}
	if res.ExitCode != 0 || res.TimedOut {
		return fmt.Errorf("bundle the run's commits: git exited %d: %s", res.ExitCode, tail(errb.String(), 500))
	}
	return nil
}

type limitWriter struct {
	w    io.Writer
	n    int64
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		l.over = true
		return 0, ErrTooLarge
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}
