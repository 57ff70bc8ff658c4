package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/llm/openaitest"
)

// BenchmarkRunToFirstModelRequest is issue 12's yardstick: how long
// `hero run --project` takes to reach the model's first request on a
// generated 10,000-file repository served by `git daemon` on loopback,
// cold (empty data directory) and warm (the second run), against a plain
// `git clone` of the same repository, and on a one-file repository. The
// numbers are measured once per process and reported as metrics:
//
//	clone_s, cold_s, warm_s, warm_fetch_s (warm, but the freshness window
//	passed: an incremental fetch first), tiny_s and tiny_warm_s (first and
//	second run of a one-file repository), and the ratios cold/clone
//	(target ≤ 1.1) and warm/cold (≤ 0.1).
func BenchmarkRunToFirstModelRequest(b *testing.B) {
	enginetest.RequireBwrap(b)
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git is not installed")
	}
	benchOnce.Do(func() { benchResult, benchErr = measureWarm(b) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	for b.Loop() {
	}
	r := benchResult
	b.ReportMetric(r.clone.Seconds(), "clone_s")
	b.ReportMetric(r.cold.Seconds(), "cold_s")
	b.ReportMetric(r.warm.Seconds(), "warm_s")
	b.ReportMetric(r.warmFetch.Seconds(), "warm_fetch_s")
	b.ReportMetric(r.tiny.Seconds(), "tiny_s")
	b.ReportMetric(r.tinyWarm.Seconds(), "tiny_warm_s")
	b.ReportMetric(r.cold.Seconds()/r.clone.Seconds(), "cold/clone")
	b.ReportMetric(r.warm.Seconds()/r.cold.Seconds(), "warm/cold")
	b.Logf("10,000 files: git clone %.2fs; hero cold %.2fs (%.2f× clone), warm %.2fs (%.3f× cold), warm after the freshness window %.2fs; one-file repository %.3fs cold, %.3fs warm",
		r.clone.Seconds(), r.cold.Seconds(), r.cold.Seconds()/r.clone.Seconds(), r.warm.Seconds(), r.warm.Seconds()/r.cold.Seconds(), r.warmFetch.Seconds(), r.tiny.Seconds(), r.tinyWarm.Seconds())
}

type warmResult struct{ clone, cold, warm, warmFetch, tiny, tinyWarm time.Duration }

var (
	benchOnce   sync.Once
	benchResult warmResult
	benchErr    error
)

// genRepo writes n files of 1–8 KB of word-like text in 1,000 directories
// and commits them; it returns a bare copy to serve.
func genRepo(b *testing.B, root, name string, n int) string {
	work := filepath.Join(root, name+"-src")
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	words := make([]string, 4000)
	for i := range words {
		w := make([]byte, 2+rng.IntN(8))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		words[i] = string(w)
	}
	for i := range n {
		dir := filepath.Join(work, fmt.Sprintf("pkg%02d/sub%d", i%100, (i/100)%10))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		var sb strings.Builder
		for range 200 + rng.IntN(1000) {
			sb.WriteString(words[rng.IntN(len(words))])
			sb.WriteByte(' ')
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.txt", i)), []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	bare := filepath.Join(root, "srv", name+".git")
	for _, args := range [][]string{
		{"-C", work, "init", "-q", "-b", "main"},
		{"-C", work, "add", "-A"},
		{"-C", work, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "generated"},
		{"clone", "-q", "--bare", work, bare},
		{"-C", bare, "gc", "-q"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	return bare
}

// gitDaemon serves root's repositories on a free loopback port.
func gitDaemon(b *testing.B, root string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--base-path="+root, "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), root)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "git://" + addr
		}
	}
	b.Fatal("git daemon did not start")
	return ""
}

func measureWarm(b *testing.B) (warmResult, error) {
	var r warmResult
	root := b.TempDir()
	genRepo(b, root, "big", 10000)
	tiny := filepath.Join(root, "srv", "tiny.git")
	genRepoTiny(b, root, tiny)
	base := gitDaemon(b, filepath.Join(root, "srv"))

	start := time.Now()
	if out, err := exec.Command("git", "clone", "-q", base+"/big.git", filepath.Join(root, "plain-clone")).CombinedOutput(); err != nil {
		return r, fmt.Errorf("git clone: %v: %s", err, out)
	}
	r.clone = time.Since(start)

	var mu sync.Mutex
	var first time.Time
	model := openaitest.NewServerFunc(b, func(req openaitest.Request) openaitest.Turn {
		mu.Lock()
		if first.IsZero() {
			first = time.Now()
		}
		mu.Unlock()
		return openaitest.Tools(openaitest.Call("finish", `{"summary":"done"}`))
	})
	data := filepath.Join(root, "data")
	env := map[string]string{"HERO_DATA_DIR": data, "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.URL(), "HERO_MODEL": "gpt-4o-mini"}
	hero := func(env map[string]string, args ...string) error {
		var out, errb syncBuffer
		err := run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errb}, func(k string) string { return env[k] })
		if err != nil {
			return fmt.Errorf("hero %v: %v\n%s\n%s", args, err, out.String(), errb.String())
		}
		return nil
	}
	for _, p := range []string{"big", "tiny"} {
		if err := hero(env, "project", "add", p, "--repo", base+"/"+p+".git", "--branch", "main"); err != nil {
			return r, err
		}
	}
	timed := func(env map[string]string, project string) (time.Duration, error) {
		mu.Lock()
		first = time.Time{}
		mu.Unlock()
		start := time.Now()
		if err := hero(env, "run", "--no", "--project", project, "look around"); err != nil {
			return 0, err
		}
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			return 0, fmt.Errorf("run of %s never asked the model", project)
		}
		return first.Sub(start), nil
	}
	var err error
	if r.cold, err = timed(env, "big"); err != nil {
		return r, err
	}
	if r.warm, err = timed(env, "big"); err != nil {
		return r, err
	}
	stale := map[string]string{"HERO_MIRROR_FRESH": "0"}
	for k, v := range env {
		stale[k] = v
	}
	if r.warmFetch, err = timed(stale, "big"); err != nil {
		return r, err
	}
	if r.tiny, err = timed(env, "tiny"); err != nil {
		return r, err
	}
	if r.tinyWarm, err = timed(env, "tiny"); err != nil {
		return r, err
	}
	return r, nil
}

func genRepoTiny(b *testing.B, root, bare string) {
	work := filepath.Join(root, "tiny-src")
	if err := os.MkdirAll(work, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("# tiny\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, args := range [][]string{
		{"-C", work, "init", "-q", "-b", "main"},
		{"-C", work, "add", "-A"},
		{"-C", work, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "tiny"},
		{"clone", "-q", "--bare", work, bare},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
}
