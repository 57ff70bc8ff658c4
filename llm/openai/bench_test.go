package openai_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/llm/openai"
	"github.com/hero-dev/hero/llm/openaitest"
)

// BenchmarkConcurrentRuns measures 1,000 concurrent two-call runs (a tool
// call, then the final answer) through the real client and the fake
// server: the client's and the fake's overhead per model call.
func BenchmarkConcurrentRuns(b *testing.B) {
	srv := openaitest.NewServerFunc(b, func(r openaitest.Request) openaitest.Turn {
		if r.Round() == 0 {
			return openaitest.Tools(openaitest.Call("read_file", `{"path":"`+r.FirstUserMessage()+`"}`))
		}
		return openaitest.Text("done " + r.FirstUserMessage())
	})
	c, err := openai.New(openai.Config{APIKey: testKey, BaseURL: srv.URL()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	const runs = 1000
	for b.Loop() {
		var wg sync.WaitGroup
		for i := range runs {
			wg.Go(func() {
				marker := fmt.Sprintf("run-%d", i)
				req := userRequest(marker)
				req.Tools = []engine.ToolSchema{readFileTool}
				resp, err := c.Complete(b.Context(), req)
				if err != nil {
					b.Error(err)
					return
				}
				tc := resp.Message.ToolCalls[0]
				req.Messages = append(req.Messages, resp.Message, engine.Message{Role: engine.RoleTool, ToolCallID: tc.ID, Content: strings.Repeat("x", 2000)})
				resp, err = c.Complete(b.Context(), req)
				if err != nil || resp.Message.Content != "done "+marker {
					b.Errorf("%s: %+v %v", marker, resp.Message, err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*runs*2), "ns/call")
}
