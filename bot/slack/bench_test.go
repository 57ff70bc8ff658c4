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
	send := func(trigger string) (time.Duration, error) {
		f := url.Values{"team_id": {"T1"}, "channel_id": {"CB"}, "user_id": {"U1"}, "command": {"/hero"}, "text": {"help"}, "trigger_id": {trigger}}
		body := []byte(f.Encode())
		stamp := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/slack/commands", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", formType)
		req.Header.Set("X-Slack-Request-Timestamp", stamp)
		req.Header.Set("X-Slack-Signature", Sign(testSecret, stamp, body))
		t0 := time.Now()
		resp, err := client.Do(req)
		d := time.Since(t0)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		return d, err
	}
	// One at a time first: the latency of the path itself, without the
	// queueing a burst of 200 adds on two cores.
	var seq []time.Duration
	for i := range 50 {
		d, err := send(fmt.Sprintf("seq-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		seq = append(seq, d)
	}
	slices.Sort(seq)
	var all []time.Duration
	round := 0
	b.ResetTimer()
	for b.Loop() {
		round++
		lat := make([]time.Duration, n)
		var wg sync.WaitGroup
		var failed sync.Map
		for i := range n {
			wg.Go(func() {
				var err error
				if lat[i], err = send(fmt.Sprintf("bench-%d-%d", round, i)); err != nil {
					failed.Store(i, err)
				}
			})
		}
		wg.Wait()
		failed.Range(func(k, v any) bool { b.Fatalf("command %v: %v", k, v); return false })
		all = append(all, lat...)
	}
	b.StopTimer()
	stored := e.deliveries()
	if stored != int64(n*round+len(seq)) {
		b.Fatalf("%d of %d commands in the inbox", stored, n*round+len(seq))
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "ack-p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "ack-p99-ms")
	b.ReportMetric(float64(int64(n*round+len(seq))-stored), "lost")
	b.ReportMetric(float64(seq[len(seq)/2].Microseconds())/1000, "ack-alone-p50-ms")
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
