package tools

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRunCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	var streamed strings.Builder
	e.tc.Output = func(chunk string) {
		mu.Lock()
		defer mu.Unlock()
		streamed.WriteString(chunk)
	}
	e.write("sub/dir/f.txt", "x")

	got := e.mustCall("run_command", `{"command": "echo hello; echo oops >&2"}`)
	wantContains(t, "echo", got, "exit code 0 after ", "\nhello\n", "oops\n")
	mu.Lock()
	wantContains(t, "streamed output", streamed.String(), "hello\n", "oops\n")
	mu.Unlock()

	got = e.mustCall("run_command", `{"command": "echo failing; exit 3"}`)
	if !strings.HasPrefix(got, "exit code 3 after ") || !strings.Contains(got, "failing") {
		t.Errorf("non-zero exit = %q", got)
	}
	got = e.mustCall("run_command", `{"command": "pwd; ls", "cwd": "sub/dir"}`)
	wantContains(t, "cwd", got, "/sub/dir\n", "f.txt")
	got = e.mustCall("run_command", `{"command": "true"}`)
	wantContains(t, "silent", got, "exit code 0", "(no output)")

	_, err := e.call("run_command", `{"command": "ls", "cwd": "nope"}`)
	wantErr(t, "missing cwd", err, "cwd nope", "no such file or directory")
	_, err = e.call("run_command", `{"command": "ls", "cwd": "sub/dir/f.txt"}`)
	wantErr(t, "file cwd", err, "cwd sub/dir/f.txt is a file")
}

func TestRunCommandOutputCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var streamed int
	var mu sync.Mutex
	e.tc.Output = func(chunk string) {
		mu.Lock()
		defer mu.Unlock()
		streamed += len(chunk)
	}
	// 200000 lines "line N" with a first and last marker.
	got := e.mustCall("run_command", `{"command": "echo FIRST; seq 1 200000 | sed 's/^/line /'; echo LAST"}`)
	total := len("FIRST\n") + len("LAST\n")
	for i := 1; i <= 200000; i++ {
		total += len("line ") + len(strconv.Itoa(i)) + 1
	}
	m := regexp.MustCompile(`\n\[… (\d+) bytes omitted …\]\n`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no omission marker in %d bytes of output", len(got))
	}
	status, body, _ := strings.Cut(got, "\n")
	if !strings.HasPrefix(status, "exit code 0") {
		t.Errorf("status line = %q", status)
	}
	omitted, _ := strconv.Atoi(m[1])
	if kept := len(body) - len(m[0]); kept+omitted != total {
		t.Errorf("kept %d + omitted %d = %d; want the %d bytes written", kept, omitted, kept+omitted, total)
	}
	if len(body) > commandHead+commandTail+100 {
		t.Errorf("kept %d bytes; want at most about %d", len(body), commandHead+commandTail)
	}
	if !strings.HasPrefix(body, "FIRST\nline 1\n") || !strings.HasSuffix(body, "line 200000\nLAST\n") {
		t.Errorf("head or tail lost: %q … %q", body[:20], body[len(body)-30:])
	}
	mu.Lock()
	if streamed != total {
		t.Errorf("streamed %d bytes; want all %d", streamed, total)
	}
	mu.Unlock()
}

func TestRunCommandTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start := time.Now()
	got := e.mustCall("run_command", `{"command": "echo started; sleep 30; echo never", "timeout_s": 1}`)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout took %s", d)
	}
	wantContains(t, "timeout", got, "timed out after 1s: the command was killed", "started")
	if strings.Contains(got, "never") {
		t.Errorf("command kept running: %q", got)
	}
}

func TestRunCommandCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	e.tc.Output = func(string) { cancel() } // cancel once it is running
	go func() {
		_, err := toolByName(t, "run_command").Run(ctx, e.tc, []byte(`{"command": "echo go; sleep 30"}`))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("cancelled run_command: %v; want the context's error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run_command did not stop when its context was cancelled")
	}
}

func TestCapture(t *testing.T) {
	t.Parallel()
	c := newCapture(10, 10, nil)
	c.Write([]byte("0123456789abcdefghij"))
	if got := c.String(); got != "0123456789abcdefghij" {
		t.Errorf("exact fit = %q", got)
	}
	c.Write([]byte("KLMNOPQRST"))
	if got, want := c.String(), "0123456789\n[… 10 bytes omitted …]\nKLMNOPQRST"; got != want {
		t.Errorf("overflow = %q; want %q", got, want)
	}
	// Many small writes keep only the tail.
	c = newCapture(4, 4, nil)
	for i := range 1000 {
		fmt.Fprintf(c, "%d,", i%10)
	}
	if got, want := c.String(), "0,1,\n[… 1992 bytes omitted …]\n8,9,"; got != want {
		t.Errorf("small writes = %q; want %q", got, want)
	}
	// Cuts never split a rune: "é" is 2 bytes.
	c = newCapture(5, 5, nil)
	c.Write([]byte(strings.Repeat("é", 10)))
	got := c.String()
	if !utf8.ValidString(got) || strings.ContainsRune(got, utf8.RuneError) {
		t.Errorf("split rune: %q", got)
	}
	if want := "éé\n[… 12 bytes omitted …]\néé"; got != want {
		t.Errorf("runes = %q; want %q", got, want)
	}
	// Concurrent writers (stdout and stderr) are safe and counted.
	c = newCapture(100, 100, func(string) {})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				c.Write([]byte("abc"))
			}
		})
	}
	wg.Wait()
	if c.Total() != 12000 {
		t.Errorf("total = %d", c.Total())
	}
}
