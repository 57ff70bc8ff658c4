package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ghsurface "github.com/hero-dev/hero/webhooks/github"

	"github.com/hero-dev/hero/store/storetest"
)

// BenchmarkGitHubIntakeReplicas drives signed GitHub deliveries (issue
// comments that start nothing, so the workers only file them) from 32
// concurrent senders at one and at two real `hero serve` processes on one
// MariaDB database, round robin. It reports deliveries acknowledged per
// second and the 99th percentile of the time to the acknowledgement, and
// checks afterwards that every acknowledged delivery is in the inbox.
// Needs HERO_TEST_MYSQL_URL (make bench runs it through with-mariadb.sh).
func BenchmarkGitHubIntakeReplicas(b *testing.B) {
	if os.Getenv("HERO_TEST_MYSQL_URL") == "" {
		b.Skip("HERO_TEST_MYSQL_URL not set: make bench runs this through scripts/with-mariadb.sh")
	}
	bin := buildHero(b)
	const secret, token = "bench-secret", "ghp_benchTOKEN0123456789"
	// These deliveries start nothing, so hero never calls GitHub.
	api := httptest.NewServer(http.NotFoundHandler())
	b.Cleanup(api.Close)
	raw, err := os.ReadFile("testdata/issue_comment.created.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			dbURL := storetest.FreshMySQL(b, "bench")
			env := map[string]string{"DATABASE_URL": dbURL, "HERO_ADDR": "127.0.0.1:0", "HERO_SANDBOX_POOL": "0",
				"SECRETS_ENCRYPTION_KEY": strings.Repeat("ab", 32), "SECRETS_KDF_SALT": strings.Repeat("cd", 16),
				"GITHUB_WEBHOOK_SECRET": secret, "GITHUB_TOKEN": token, "GITHUB_API_URL": api.URL + "/", "GITHUB_BOT_LOGIN": "hero-bot",
				"GITHUB_HOOK_ID": "off"}
			var rs []*replica
			for i := range n {
				rs = append(rs, startReplica(b, bin, fmt.Sprintf("r%d", i), env))
			}
			for _, r := range rs {
				r.waitListening(b)
			}
			meta := storetest.OpenURL(b, dbURL)
			var m map[string]any
			json.Unmarshal(raw, &m)
			c := m["comment"].(map[string]any)
			c["body"], c["author_association"] = "just a remark", "NONE"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var next, failed atomic.Int64
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						mm := map[string]any{}
						for k, v := range m {
							mm[k] = v
						}
						cc := map[string]any{}
						for k, v := range c {
							cc[k] = v
						}
						cc["id"] = 100000 + i
						mm["comment"] = cc
						payload, _ := json.Marshal(mm)
						req, _ := http.NewRequest(http.MethodPost, rs[i%int64(n)].base+"/github/webhook", bytes.NewReader(payload))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("X-GitHub-Event", "issue_comment")
						req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", i))
						req.Header.Set("X-Hub-Signature-256", ghsurface.Sign([]byte(secret), payload))
						t0 := time.Now()
						resp, err := client.Do(req)
						lat[i] = time.Since(t0)
						if err != nil || resp.StatusCode != http.StatusAccepted {
							failed.Add(1)
						}
						if resp != nil {
							resp.Body.Close()
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d of %d deliveries were not acknowledged with 202", failed.Load(), b.N)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ack-p99-ms")
			// Every acknowledged delivery is in the inbox (this database
			// holds this run's deliveries only).
			var ids []string
			if err := meta.Bun().NewSelect().Table("deliveries").Column("delivery_id").Where("source = ?", "github").Scan(b.Context(), &ids); err != nil {
				b.Fatal(err)
			}
			have := map[string]bool{}
			for _, id := range ids {
				have[id] = true
			}
			for i := range b.N {
				if !have[fmt.Sprintf("bench-%d", i)] {
					b.Fatalf("delivery bench-%d was acknowledged but is not in the inbox (%d rows)", i, len(ids))
				}
			}
		})
	}
}
