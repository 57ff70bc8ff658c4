package tools

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox"
)

// Limits of run_command.
const (
	// commandHead and commandTail are how many bytes of a command's output
	// are kept from its start and its end; what lies between is replaced
	// by a marker.
	commandHead = 24 << 10
	commandTail = 40 << 10
	// Default and largest timeout, in seconds.
	defaultTimeoutS = 300
	maxTimeoutS     = 3600
)

type commandArgs struct {
	Command  string `json:"command"`
	Cwd      string `json:"cwd"`
	TimeoutS int    `json:"timeout_s"`
}

func runCommandTool() engine.Tool {
	return spec[commandArgs]{
		name: "run_command",
		desc: "Run a shell command inside the sandbox with `sh -c`, in the workspace root /repo or in cwd, and wait for it. " +
			"Use it to build, run tests, and use git for anything the git tools don't cover. Output (stdout and stderr together) " +
			"is returned with the exit code; long output keeps its beginning and end with a marker in between. Nothing is interactive: " +
			"stdin is empty, so pass flags like -y. A non-zero exit code is reported, not an error. The command is killed after timeout_s.",
		mutating: true,
		params: []param{
			{name: "command", typ: "string", required: true, desc: "The shell command, e.g. \"go test ./...\" or \"npm ci && npm test\"."},
			{name: "cwd", typ: "string", desc: "Working directory relative to the workspace root. Default: the root."},
			{name: "timeout_s", typ: "integer", min: ptr(1), max: ptr(maxTimeoutS),
				desc: fmt.Sprintf("Seconds before the command is killed, 1 to %d. Default: %d.", maxTimeoutS, defaultTimeoutS)},
		},
		validate: func(a *commandArgs) (err error) {
			if strings.TrimSpace(a.Command) == "" {
				return fmt.Errorf("run_command: command is empty; give the shell command to run")
			}
			if strings.ContainsRune(a.Command, 0) {
				return fmt.Errorf("run_command: command contains a NUL byte, which a shell cannot run")
			}
			if a.TimeoutS == 0 {
				a.TimeoutS = defaultTimeoutS
			}
			a.Cwd, err = cleanPath("run_command", "cwd", a.Cwd, false)
			return err
		},
		subject: func(a commandArgs) (string, string) {
			return a.Command, "run " + quoteCommand(a.Command) + " in " + workDir(a.Cwd)
		},
		needsSandbox: true,
		run:          runCommand,
	}.tool()
}

// workDir is the absolute directory inside the sandbox, for people.
func workDir(cwd string) string {
	if cwd == "" {
		return sandbox.WorkspaceRoot
	}
	return sandbox.WorkspaceRoot + "/" + cwd
}

// quoteCommand shows a command on one line, exactly: in backticks when it
// is plain, Go-quoted (\n, \t visible) when it has control characters or
// backticks that would blur where it ends.
func quoteCommand(c string) string {
	plain := !strings.ContainsRune(c, '`')
	for _, r := range c {
		if unicode.IsControl(r) || r == utf8.RuneError {
			plain = false
			break
		}
	}
	if plain {
		return "`" + c + "`"
	}
	return strconv.Quote(c)
}

func runCommand(ctx context.Context, tc *engine.ToolContext, a commandArgs) (string, error) {
	sb := tc.Sandbox
	if a.Cwd != "" {
		info, err := sb.Stat(ctx, a.Cwd)
		if err != nil {
			return "", sandboxErr("run_command", "cwd "+a.Cwd, err)
		}
		if !info.IsDir {
			return "", fmt.Errorf("run_command: cwd %s is a file, not a directory", a.Cwd)
		}
	}
	out := newCapture(commandHead, commandTail, tc.Output)
	timeout := time.Duration(a.TimeoutS) * time.Second
	res, err := sb.Exec(ctx, sandbox.Cmd{
		Args:    []string{"sh", "-c", a.Command},
		Dir:     a.Cwd,
		Env:     map[string]string{"PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"},
		Stdout:  out,
		Stderr:  out,
		Timeout: timeout,
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("run_command: %w", ctx.Err())
		}
		return "", sandboxErr("run_command", "run "+quoteCommand(a.Command), err)
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("run_command: the command was killed because the run stopped: %w", ctx.Err())
	}
	var status string
	switch {
	case res.TimedOut:
		status = fmt.Sprintf("timed out after %ds: the command was killed (exit code %d); raise timeout_s or run less at once", a.TimeoutS, res.ExitCode)
	case res.Killed:
		status = fmt.Sprintf("killed before it finished (exit code %d, after %s)", res.ExitCode, res.Duration.Round(time.Millisecond))
	default:
		status = fmt.Sprintf("exit code %d after %s", res.ExitCode, res.Duration.Round(time.Millisecond))
	}
	body := out.String()
	if body == "" {
		body = "(no output)"
	}
	// Status first: it survives any later cut of the text.
	return status + "\n" + body, nil
}

// capture keeps the first head and the last tail bytes written to it and
// counts the rest, while passing every chunk on to stream. It is safe for
// concurrent writers (stdout and stderr), which keep their order as seen
// by Write.
type capture struct {
	mu         sync.Mutex
	head, tail []byte
	headMax    int
	tailMax    int
	total      int64
	stream     func(string)
}

func newCapture(head, tail int, stream func(string)) *capture {
	return &capture{headMax: head, tailMax: tail, stream: stream}
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	c.total += int64(n)
	if c.stream != nil && n > 0 {
		c.stream(string(p))
	}
	if room := c.headMax - len(c.head); room > 0 {
		k := min(room, len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	if len(p) > 0 {
		c.tail = append(c.tail, p...)
		if len(c.tail) > 2*c.tailMax {
			c.tail = append(c.tail[:0], c.tail[len(c.tail)-c.tailMax:]...)
		}
	}
	return n, nil
}

// Total is how many bytes were written.
func (c *capture) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// String is the kept output as valid UTF-8, with a "[… N bytes omitted …]"
// line where the middle was dropped.
func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	head, tail := c.head, c.tail
	if len(tail) > c.tailMax {
		tail = tail[len(tail)-c.tailMax:]
	}
	omitted := c.total - int64(len(head)) - int64(len(tail))
	if omitted == 0 {
		return strings.ToValidUTF8(string(head)+string(tail), "\uFFFD")
	}
	// Don't split a rune at either edge of the gap.
	for i := 0; i < utf8.UTFMax && len(head) > 0; i++ {
		if r, size := utf8.DecodeLastRune(head); r != utf8.RuneError || size > 1 {
			break
		}
		head = head[:len(head)-1]
		omitted++
	}
	for i := 0; i < utf8.UTFMax && len(tail) > 0 && !utf8.RuneStart(tail[0]); i++ {
		tail = tail[1:]
		omitted++
	}
	return strings.ToValidUTF8(string(head), "\uFFFD") +
		fmt.Sprintf("\n[… %d bytes omitted …]\n", omitted) +
		strings.ToValidUTF8(string(tail), "\uFFFD")
}
