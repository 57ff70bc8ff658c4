package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/llm/openai"
	"github.com/hero-dev/hero/llm/openaitest"
)

const testKey = "sk-test-0123456789abcdefSECRET"

// sleeps records the backoff waits a client asked for, without sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// newClient returns a client for srv whose waits are recorded, not slept,
// and whose log goes to the returned buffer.
func newClient(t *testing.T, srv *openaitest.Server, mod func(*openai.Config)) (*openai.Client, *sleeps, *syncBuffer) {
	t.Helper()
	cfg := openai.Config{APIKey: testKey, BaseURL: srv.URL() + "/v1", Model: "gpt-test"}
	if mod != nil {
		mod(&cfg)
	}
	var logs syncBuffer
	c, err := openai.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s := &sleeps{}
	openai.SetSleep(c, s.sleep)
	t.Cleanup(func() {
		if strings.Contains(logs.String(), testKey) {
			t.Errorf("log contains the API key:\n%s", logs.String())
		}
	})
	return c, s, &logs
}

func userRequest(text string) engine.ModelRequest {
	return engine.ModelRequest{Messages: []engine.Message{
		{Role: engine.RoleSystem, Content: "You are hero."},
		{Role: engine.RoleUser, Content: text},
	}}
}

var readFileTool = engine.ToolSchema{
	Name:        "read_file",
	Description: "Read a file of the workspace.",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`),
}

func TestNewRequiresAPIKey(t *testing.T) {
	t.Parallel()
	_, err := openai.New(openai.Config{}, nil)
	if err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Fatalf("got %v, want an error naming OPENAI_API_KEY", err)
	}
	_, err = openai.New(openai.Config{APIKey: "k", BaseURL: "api.openai.com"}, nil)
	if err == nil || !strings.Contains(err.Error(), "OPENAI_BASE_URL") {
		t.Fatalf("got %v, want an error naming OPENAI_BASE_URL", err)
	}
}

func TestToolCallRoundTrip(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t,
		openaitest.Turn{
			ToolCalls:    []openaitest.ToolCall{{ID: "call_1", Name: "read_file", Arguments: `{"path":"go.mod"}`}},
			PromptTokens: 120, CompletionTokens: 15,
			Check: func(req goopenai.ChatCompletionRequest) error {
				if req.Model != "gpt-test" {
					return fmt.Errorf("model %q", req.Model)
				}
				if len(req.Tools) != 1 || req.Tools[0].Type != goopenai.ToolTypeFunction || req.Tools[0].Function.Name != "read_file" {
					return fmt.Errorf("tools %+v", req.Tools)
				}
				return nil
			},
		},
		openaitest.Turn{
			Text:         "go.mod declares module github.com/hero-dev/hero.",
			PromptTokens: 200, CompletionTokens: 12,
			Check: func(req goopenai.ChatCompletionRequest) error {
				if len(req.Messages) != 4 {
					return fmt.Errorf("%d messages, want 4", len(req.Messages))
				}
				a, tool := req.Messages[2], req.Messages[3]
				if a.Role != "assistant" || len(a.ToolCalls) != 1 || a.ToolCalls[0].ID != "call_1" ||
					a.ToolCalls[0].Function.Arguments != `{"path":"go.mod"}` || a.ToolCalls[0].Type != "function" {
					return fmt.Errorf("assistant message %+v", a)
				}
				if tool.Role != "tool" || tool.ToolCallID != "call_1" || tool.Content != "module github.com/hero-dev/hero" {
					return fmt.Errorf("tool message %+v", tool)
				}
				return nil
			},
		},
	)
	c, _, _ := newClient(t, srv, nil)
	req := userRequest("What module is this?")
	req.Tools = []engine.ToolSchema{readFileTool}

	resp, err := c.Complete(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := engine.Message{Role: engine.RoleAssistant, ToolCalls: []engine.ToolCall{{ID: "call_1", Name: "read_file", Arguments: `{"path":"go.mod"}`}}}
	if !equalMessage(resp.Message, want) || resp.FinishReason != "tool_calls" ||
		resp.Usage != (engine.Usage{PromptTokens: 120, CompletionTokens: 15}) || resp.Latency <= 0 {
		t.Fatalf("first response %+v", resp)
	}

	req.Messages = append(req.Messages, resp.Message, engine.Message{
		Role: engine.RoleTool, ToolCallID: "call_1", Name: "read_file", Content: "module github.com/hero-dev/hero",
	})
	resp, err = c.Complete(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.Content != "go.mod declares module github.com/hero-dev/hero." || resp.FinishReason != "stop" || resp.Usage.PromptTokens != 200 {
		t.Fatalf("second response %+v", resp)
	}

	// The wire format: parameters are the schema as given, the tool
	// message carries tool_call_id, the key is the bearer token.
	reqs := srv.Requests()
	if len(reqs) != 2 || srv.Remaining() != 0 {
		t.Fatalf("%d requests, %d turns left", len(reqs), srv.Remaining())
	}
	if reqs[0].Path != "/v1/chat/completions" || reqs[0].Header.Get("Authorization") != "Bearer "+testKey {
		t.Errorf("path %q auth %q", reqs[0].Path, reqs[0].Header.Get("Authorization"))
	}
	var wire struct {
		Tools []struct {
			Function struct {
				Parameters json.RawMessage `json:"parameters"`
			} `json:"function"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(reqs[0].Raw, &wire); err != nil {
		t.Fatal(err)
	}
	if got := string(wire.Tools[0].Function.Parameters); got != string(readFileTool.Parameters) {
		t.Errorf("parameters on the wire %s", got)
	}
	if !bytes.Contains(reqs[1].Raw, []byte(`"tool_call_id":"call_1"`)) {
		t.Errorf("tool result without tool_call_id: %s", reqs[1].Raw)
	}
}

func TestRecordedResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture string
		want    engine.ModelResponse
	}{
		{"chat.completion.tool_calls.json", engine.ModelResponse{
			Message: engine.Message{Role: engine.RoleAssistant, ToolCalls: []engine.ToolCall{
				{ID: "call_olc8qHf1RDItRqwuEBNjsu3B", Name: "getCurrentWeather", Arguments: `{"location":"Boston"}`},
			}},
			Usage:        engine.Usage{PromptTokens: 81, CompletionTokens: 14},
			FinishReason: "tool_calls",
		}},
		{"chat.completion.parallel_tool_calls.json", engine.ModelResponse{
			Message: engine.Message{Role: engine.RoleAssistant, ToolCalls: []engine.ToolCall{
				{ID: "call_JaJBh0RuoBRAWsVg7GJaapPn", Name: "getCurrentWeather", Arguments: `{"location": "Boston, MA"}`},
				{ID: "call_LL5AhwC7n5ncwKcnINwPLpal", Name: "getCurrentTime", Arguments: `{"location": "Boston, MA"}`},
			}},
			Usage:        engine.Usage{PromptTokens: 121, CompletionTokens: 50},
			FinishReason: "tool_calls",
		}},
		{"chat.completion.text.json", engine.ModelResponse{
			Message: engine.Message{Role: engine.RoleAssistant,
				Content: "Hello! I'm just a computer program, so I don't have feelings, but I'm here to help you. How can I assist you today?"},
			Usage:        engine.Usage{PromptTokens: 13, CompletionTokens: 31},
			FinishReason: "stop",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile("testdata/" + tc.fixture)
			if err != nil {
				t.Fatal(err)
			}
			srv := openaitest.NewServer(t, openaitest.Turn{Raw: raw})
			c, _, _ := newClient(t, srv, nil)
			got, err := c.Complete(t.Context(), userRequest("What's the weather and time in Boston?"))
			if err != nil {
				t.Fatal(err)
			}
			if !equalMessage(got.Message, tc.want.Message) || got.Usage != tc.want.Usage || got.FinishReason != tc.want.FinishReason {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTextAnswerFromGeneratedTurn(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Text("done"))
	srv.ForbidSubstrings(testKey)
	c, sl, _ := newClient(t, srv, nil)
	resp, err := c.Complete(t.Context(), userRequest("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.Content != "done" || len(resp.Message.ToolCalls) != 0 || len(sl.all()) != 0 {
		t.Fatalf("got %+v, waits %v", resp, sl.all())
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t,
		openaitest.Error(http.StatusTooManyRequests, "Retry-After", "7"),
		openaitest.Error(http.StatusTooManyRequests,
			"x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "3s",
			"x-ratelimit-remaining-tokens", "100", "x-ratelimit-reset-tokens", "1m0s"),
		openaitest.Text("ok"),
	)
	c, sl, logs := newClient(t, srv, nil)
	resp, err := c.Complete(t.Context(), userRequest("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.Content != "ok" {
		t.Fatalf("got %+v", resp)
	}
	waits := sl.all()
	if len(waits) != 2 {
		t.Fatalf("waits %v, want 2", waits)
	}
	if waits[0] < 7*time.Second || waits[0] > 8*time.Second {
		t.Errorf("first wait %v, want Retry-After 7s plus at most 1s jitter", waits[0])
	}
	if waits[1] < 3*time.Second || waits[1] > 3300*time.Millisecond {
		t.Errorf("second wait %v, want the exhausted limit's reset 3s plus at most 10%%", waits[1])
	}
	if !strings.Contains(logs.String(), "retrying") || !strings.Contains(logs.String(), "429") {
		t.Errorf("retries not logged:\n%s", logs.String())
	}
}

// TestRateLimitRealWait is the one test that really waits (Retry-After:
// 1), to check the production sleep honours the header.
func TestRateLimitRealWait(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Error(http.StatusTooManyRequests, "Retry-After", "1"), openaitest.Text("ok"))
	c, err := openai.New(openai.Config{APIKey: testKey, BaseURL: srv.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Complete(t.Context(), userRequest("hi")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, before Retry-After: 1", d)
	}
}

func TestRetryHintFormats(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"seconds", h("Retry-After", "2"), 2 * time.Second},
		{"http date", h("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), 90 * time.Second},
		{"date in the past", h("Retry-After", now.Add(-time.Minute).Format(http.TimeFormat)), 0},
		{"ms", h("retry-after-ms", "250"), 250 * time.Millisecond},
		{"openai reset of exhausted limit", h("x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "6m0s"), 6 * time.Minute},
		{"openai reset of limit not exhausted", h("x-ratelimit-remaining-tokens", "5", "x-ratelimit-reset-tokens", "6m0s"), 0},
		{"openrouter unix ms", h("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", fmt.Sprint(now.Add(20*time.Second).UnixMilli())), 20 * time.Second},
		{"garbage", h("Retry-After", "soon"), 0},
		{"none", nil, 0},
	}
	for _, tc := range tests {
		if got := openai.RetryHint(tc.h, now); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestServerErrorsRetryThenGiveUp(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t,
		openaitest.Error(http.StatusInternalServerError),
		openaitest.Error(http.StatusBadGateway),
		openaitest.Turn{Status: http.StatusServiceUnavailable, Body: "<html>upstream unavailable</html>"},
	)
	c, sl, _ := newClient(t, srv, func(cfg *openai.Config) {
		cfg.MaxRetries = 2
		cfg.MinBackoff = time.Second
		cfg.MaxBackoff = 3 * time.Second
	})
	_, err := c.Complete(t.Context(), userRequest("hi"))
	if err == nil {
		t.Fatal("no error after three server errors")
	}
	msg := err.Error()
	if !strings.Contains(msg, "giving up after 3 attempts") || !strings.Contains(msg, "503") || !strings.Contains(msg, "upstream unavailable") {
		t.Errorf("unclear error: %v", err)
	}
	if errors.Is(err, engine.ErrModelFatal) {
		t.Errorf("transient failure marked fatal: %v", err)
	}
	waits := sl.all()
	if len(waits) != 2 || waits[0] < 500*time.Millisecond || waits[0] > time.Second || waits[1] < time.Second || waits[1] > 2*time.Second {
		t.Errorf("backoff waits %v, want ~[0.5s..1s] then [1s..2s]", waits)
	}
	if srv.Remaining() != 0 {
		t.Errorf("%d turns unused", srv.Remaining())
	}
}

func TestFatalStatusesDoNotRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		turn openaitest.Turn
		want []string
	}{
		{openaitest.Error(http.StatusUnauthorized), []string{"rejected the API key (401)", "check OPENAI_API_KEY", "Incorrect API key provided"}},
		{openaitest.Error(http.StatusForbidden), []string{"403", `"gpt-test"`}},
		{openaitest.Error(http.StatusNotFound), []string{"404", "HERO_MODEL", "OPENAI_BASE_URL", "does not exist"}},
		{openaitest.Error(http.StatusBadRequest), []string{"rejected the request (400)", "max_completion_tokens"}},
		{openaitest.Turn{Status: http.StatusTooManyRequests, Body: openaitest.QuotaExceededBody()}, []string{"no quota", "billing"}},
		{openaitest.Turn{Status: http.StatusUnauthorized, Body: `{"error":{"message":"bad key ` + testKey + `","type":"auth"}}`}, []string{"[REDACTED:OPENAI_API_KEY]"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.want[:1], ""), func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t, tc.turn)
			c, sl, _ := newClient(t, srv, nil)
			_, err := c.Complete(t.Context(), userRequest("hi"))
			if !errors.Is(err, engine.ErrModelFatal) {
				t.Fatalf("got %v, want ErrModelFatal", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error contains the API key: %v", err)
			}
			if len(srv.Requests()) != 1 || len(sl.all()) != 0 {
				t.Errorf("retried: %d requests, waits %v", len(srv.Requests()), sl.all())
			}
		})
	}
}

func TestWrongKeyAgainstKeyCheckingServer(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Text("never")).RequireAPIKey("sk-the-right-key")
	c, _, _ := newClient(t, srv, nil)
	_, err := c.Complete(t.Context(), userRequest("hi"))
	if !errors.Is(err, engine.ErrModelFatal) || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Fatalf("got %v", err)
	}
}

func TestMalformedBody(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Turn{Raw: []byte("<html><body>Welcome to nginx!</body></html>")})
	c, sl, _ := newClient(t, srv, nil)
	_, err := c.Complete(t.Context(), userRequest("hi"))
	if !errors.Is(err, engine.ErrModelFatal) || !strings.Contains(err.Error(), "not a chat completion") ||
		!strings.Contains(err.Error(), "OPENAI_BASE_URL") {
		t.Fatalf("unclear error: %v", err)
	}
	if len(sl.all()) != 0 {
		t.Errorf("retried a malformed body")
	}
}

func TestConnectionErrorsRetry(t *testing.T) {
	t.Parallel()
	// A closed port: connection refused on every attempt.
	c2, err := openai.New(openai.Config{APIKey: testKey, BaseURL: "http://127.0.0.1:1", MaxRetries: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sl := &sleeps{}
	openai.SetSleep(c2, sl.sleep)
	_, err = c2.Complete(t.Context(), userRequest("hi"))
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("got %v", err)
	}
	if errors.Is(err, engine.ErrModelFatal) || len(sl.all()) != 2 {
		t.Errorf("fatal=%v waits=%v", errors.Is(err, engine.ErrModelFatal), sl.all())
	}
}

// TestCancelDuringBackoffReturnsPromptly: a run cancelled while the
// client waits out a 429's Retry-After ends at once, not after the wait.
func TestCancelDuringBackoffReturnsPromptly(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServerFunc(t, func(openaitest.Request) openaitest.Turn {
		return openaitest.Error(http.StatusTooManyRequests, "Retry-After", "30")
	})
	c, err := openai.New(openai.Config{APIKey: testKey, BaseURL: srv.URL(), MaxBackoff: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The real sleep, watched: cancel once the client has begun to wait
	// (cancelling the request in flight would prove nothing about it).
	waiting := make(chan time.Duration, 1)
	openai.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		waiting <- d
		return openai.Sleep(ctx, d)
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Complete(ctx, userRequest("hi"))
		done <- err
	}()
	if d := <-waiting; d < 30*time.Second {
		t.Fatalf("the client waits %s after Retry-After: 30", d)
	}
	cancel()
	// Ignoring the cancel, the client would wait the 30 s out; it must
	// return well before, however loaded the machine.
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Complete still waiting 20 s after cancel: it waits out the Retry-After of 30 s")
	}
}

func TestEmptyToolResultIsSent(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Turn{Text: "ok", Check: func(r goopenai.ChatCompletionRequest) error {
		if m := r.Messages[2]; m.Role != "tool" || m.Content != openai.EmptyToolResult {
			return fmt.Errorf("tool message %+v", m)
		}
		return nil
	}})
	c, _, _ := newClient(t, srv, nil)
	_, err := c.Complete(t.Context(), engine.ModelRequest{Messages: []engine.Message{
		{Role: engine.RoleUser, Content: "touch a file"},
		{Role: engine.RoleAssistant, ToolCalls: []engine.ToolCall{{ID: "c1", Name: "run_command", Arguments: `{"command":"touch a"}`}}},
		{Role: engine.RoleTool, ToolCallID: "c1", Name: "run_command"},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRequestValidation(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	c, _, _ := newClient(t, srv, nil)
	tests := []struct {
		req  engine.ModelRequest
		want string
	}{
		{engine.ModelRequest{}, "no messages"},
		{engine.ModelRequest{Messages: []engine.Message{{Role: "robot", Content: "x"}}}, `unknown role "robot"`},
		{engine.ModelRequest{Messages: []engine.Message{{Role: engine.RoleTool, Content: "x"}}}, "no tool_call_id"},
		{engine.ModelRequest{Messages: []engine.Message{{Role: engine.RoleUser, Content: "x"}},
			Tools: []engine.ToolSchema{{Name: "broken", Parameters: json.RawMessage(`{`)}}}, `tool "broken": parameters are not valid JSON`},
	}
	for _, tc := range tests {
		_, err := c.Complete(t.Context(), tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("invalid requests reached the server: %d", n)
	}
}

func TestConcurrentRunsAgainstFuncServer(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServerFunc(t, func(r openaitest.Request) openaitest.Turn {
		marker := r.FirstUserMessage()
		if r.Round() == 0 {
			return openaitest.Tools(openaitest.Call("read_file", `{"path":"`+marker+`"}`))
		}
		return openaitest.Text("done " + marker)
	})
	c, _, _ := newClient(t, srv, nil)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			marker := fmt.Sprintf("run-%d", i)
			req := userRequest(marker)
			resp, err := c.Complete(t.Context(), req)
			if err != nil {
				t.Error(err)
				return
			}
			if len(resp.Message.ToolCalls) != 1 || !strings.Contains(resp.Message.ToolCalls[0].Arguments, marker) {
				t.Errorf("%s: got %+v", marker, resp.Message)
				return
			}
			tc := resp.Message.ToolCalls[0]
			req.Messages = append(req.Messages, resp.Message, engine.Message{Role: engine.RoleTool, ToolCallID: tc.ID, Content: "x"})
			resp, err = c.Complete(t.Context(), req)
			if err != nil || resp.Message.Content != "done "+marker {
				t.Errorf("%s: got %+v, %v", marker, resp.Message, err)
			}
		})
	}
	wg.Wait()
	if n := len(srv.Requests()); n != 100 {
		t.Errorf("%d requests, want 100", n)
	}
}

func equalMessage(a, b engine.Message) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
