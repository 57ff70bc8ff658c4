package github

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
)

// loadResult is what the load driver measured.
type loadResult struct {
	acked   int
	elapsed time.Duration
	p99     time.Duration
	// cpu is the CPU time (user+system) this process spent, driver and
	// server together: unlike the rate it hardly depends on what else
	// the machine is running.
	cpu time.Duration
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r loadResult) rate() float64 { return float64(r.acked) / r.elapsed.Seconds() }

// drive posts n signed issue_comment deliveries (unique ids) to url from
// conc concurrent clients over loopback and measures each acknowledgement.
// Each client is a lean HTTP/1.1 writer on one kept-alive connection (the
// request in one write, the answer read with http.ReadResponse), so the
// driver takes as little of the shared CPU as it can: net/http's client
// copies every body through a fresh 32 KB buffer.
func drive(tb testing.TB, url string, body []byte, n, conc int, prefix string) loadResult {
	tb.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		tb.Fatal(err)
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-GitHub-Event: issue_comment\r\n"+
		"X-Hub-Signature-256: %s\r\nContent-Length: %d\r\n", path, u.Host, Sign([]byte(testSecret), body), len(body))
	var next, acked atomic.Int64
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			var conn net.Conn
			var br *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			buf := make([]byte, 0, len(head)+len(body)+128)
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if conn == nil {
					if conn, err = net.Dial("tcp", u.Host); err != nil {
						tb.Error(err)
						return
					}
					br = bufio.NewReader(conn)
				}
				buf = append(buf[:0], head...)
				buf = fmt.Appendf(buf, "X-GitHub-Delivery: %s-%d\r\n\r\n", prefix, i)
				buf = append(buf, body...)
				t0 := time.Now()
				if _, err := conn.Write(buf); err != nil {
					tb.Error(err)
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					tb.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[w] = append(lat[w], time.Since(t0))
				if resp.StatusCode/100 == 2 {
					acked.Add(1)
				}
				if resp.Close {
					conn.Close()
					conn = nil
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	all := slices.Concat(lat...)
	slices.Sort(all)
	var p99 time.Duration
	if len(all) > 0 {
		p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return loadResult{acked: int(acked.Load()), elapsed: elapsed, p99: p99, cpu: cpu}
}

// BenchmarkWebhookIntake drives signed issue_comment deliveries into the
// real intake (signature check, group-committed SQLite inbox) and, as the
// ceiling, into a handler that only checks the signature. It reports
// deliveries/s and ack p99 for both, their ratio, and fails if any
// acknowledged delivery is missing from the inbox afterwards.
func BenchmarkWebhookIntake(b *testing.B) {
	for _, conc := range []int{16, 32, 64} {
		b.Run(fmt.Sprintf("clients=%d", conc), func(b *testing.B) { benchIntake(b, conc) })
	}
}

func benchIntake(b *testing.B, conc int) {
	n := max(b.N, 2000)
	body := fixture(b, "issue_comment.created.json", nil)
	db := openStore(b, b.TempDir())
	// As setupGitHub wires it: the writer's defaults (batches of up to
	// 256, committed as soon as the previous commit ends; waiting 1 or
	// 3 ms for fuller batches measured no better).
	intake, err := NewIntake([]byte(testSecret), store.NewInboxWriter(db, 0, 0), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	full := httptest.NewServer(intake)
	defer full.Close()
	sigOnly := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := readBody(w, r, MaxBody)
		if err != nil {
			http.Error(w, "could not read the body", http.StatusBadRequest)
			return
		}
		if !VerifySignature([]byte(testSecret), data, r.Header.Get("X-Hub-Signature-256")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sigOnly.Close()

	b.ResetTimer()
	prefix := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	res := drive(b, full.URL, body, n, conc, prefix)
	b.StopTimer()
	stored, err := db.Bun().NewSelect().Model((*store.Delivery)(nil)).Where("delivery_id LIKE ?", prefix+"-%").Count(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	if res.acked != n || int(stored) != res.acked {
		b.Fatalf("acknowledged %d of %d deliveries, %d in the inbox", res.acked, n, stored)
	}
	ceil := drive(b, sigOnly.URL, body, n, conc, prefix+"-sig")
	b.ReportMetric(res.rate(), "deliveries/s")
	b.ReportMetric(float64(res.p99.Microseconds())/1000, "ack-p99-ms")
	b.ReportMetric(ceil.rate(), "sig-only-deliveries/s")
	b.ReportMetric(float64(ceil.p99.Microseconds())/1000, "sig-only-p99-ms")
	b.ReportMetric(res.rate()/ceil.rate(), "ratio-to-ceiling")
	b.ReportMetric(float64(res.cpu.Microseconds())/float64(n), "cpu-us/delivery")
	b.ReportMetric(float64(ceil.cpu.Microseconds())/float64(n), "sig-only-cpu-us/delivery")
	b.ReportMetric(float64(stored), "stored")
}
