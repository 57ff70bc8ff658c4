package github

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
)

// loadResult is what the load driver measured.
type loadResult struct {
	acked   int
	elapsed time.Duration
	p99     time.Duration
}

func (r loadResult) rate() float64 { return float64(r.acked) / r.elapsed.Seconds() }

// drive posts n signed issue_comment deliveries (unique ids) to url from
// conc concurrent clients over loopback and measures each acknowledgement.
func drive(tb testing.TB, url string, body []byte, n, conc int, prefix string) loadResult {
	tb.Helper()
	sig := Sign([]byte(testSecret), body)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}}
	defer client.CloseIdleConnections()
	var next, acked atomic.Int64
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "issue_comment")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("%s-%d", prefix, i))
				req.Header.Set("X-Hub-Signature-256", sig)
				t0 := time.Now()
				resp, err := client.Do(req)
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
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	var p99 time.Duration
	if len(all) > 0 {
		p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return loadResult{acked: int(acked.Load()), elapsed: elapsed, p99: p99}
}

// BenchmarkWebhookIntake drives signed issue_comment deliveries into the
// real intake (signature check, group-committed SQLite inbox) and, as the
// ceiling, into a handler that only checks the signature. It reports
// deliveries/s and ack p99 for both, their ratio, and fails if any
// acknowledged delivery is missing from the inbox afterwards.
func BenchmarkWebhookIntake(b *testing.B) {
	for _, conc := range []int{16, 64} {
		b.Run(fmt.Sprintf("clients=%d", conc), func(b *testing.B) { benchIntake(b, conc) })
	}
}

func benchIntake(b *testing.B, conc int) {
	n := max(b.N, 2000)
	body := fixture(b, "issue_comment.created.json", nil)
	db := openStore(b, b.TempDir())
	intake, err := NewIntake([]byte(testSecret), store.NewInboxWriter(db, 0, 0), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	full := httptest.NewServer(intake)
	defer full.Close()
	sigOnly := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
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
	b.ReportMetric(float64(stored), "stored")
}
