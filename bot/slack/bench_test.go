package slack

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkSlashCommandAck sends 200 signed slash commands at once over
// loopback and reports the acknowledgement latency (every 200 is sent only
// after the command is committed to the inbox) and how many were stored.
func BenchmarkSlashCommandAck(b *testing.B) {
	e := newEnv(b, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	const n = 200
	var all []time.Duration
	round := 0
	for b.Loop() {
		round++
		lat := make([]time.Duration, n)
		var wg sync.WaitGroup
		var failed sync.Map
		for i := range n {
			f := url.Values{"team_id": {"T1"}, "channel_id": {"CB"}, "user_id": {"U1"}, "command": {"/hero"}, "text": {"help"},
				"trigger_id": {fmt.Sprintf("bench-%d-%d", round, i)}}
			body := []byte(f.Encode())
			wg.Go(func() {
				stamp := strconv.FormatInt(time.Now().Unix(), 10)
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/slack/commands", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", formType)
				req.Header.Set("X-Slack-Request-Timestamp", stamp)
				req.Header.Set("X-Slack-Signature", Sign(testSecret, stamp, body))
				t0 := time.Now()
				resp, err := client.Do(req)
				lat[i] = time.Since(t0)
				if err != nil || resp.StatusCode != 200 {
					failed.Store(i, fmt.Sprint(err, resp))
				}
				if resp != nil {
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		failed.Range(func(k, v any) bool { b.Fatalf("command %v: %v", k, v); return false })
		all = append(all, lat...)
	}
	b.StopTimer()
	stored := e.deliveries()
	if stored != int64(n*round) {
		b.Fatalf("%d of %d commands in the inbox", stored, n*round)
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "ack-p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "ack-p99-ms")
	b.ReportMetric(float64(stored-int64(n*round)), "lost")
}

// BenchmarkChattyRun drives the surface with 100 steps in 10 s (real
// time) and reports the edits of the progress message: the most in any
// one-second window must be 1.
func BenchmarkChattyRun(b *testing.B) {
	e := newEnv(b, nil)
	i := 0
	for b.Loop() {
		i++
		ex := fakeRun(b, e, fmt.Sprintf("1700000700.%06d", i))
		_, edits := chatty(b, e, ex, 100, 10*time.Second)
		worst := 0
		for j := range edits {
			k := j
			for k < len(edits) && edits[k].At.Sub(edits[j].At) < time.Second {
				k++
			}
			worst = max(worst, k-j)
		}
		if worst > 1 {
			b.Errorf("%d edits of one message within a second", worst)
		}
		b.ReportMetric(float64(len(edits)), "edits/run")
		b.ReportMetric(float64(worst), "max-edits/s")
		b.ReportMetric(100, "steps/run")
	}
}
