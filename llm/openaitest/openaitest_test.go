package openaitest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/hero-dev/hero/llm/openaitest"
)

// recorder is a testing.TB that records failures instead of failing, so
// the fake's own failure reports can be asserted.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

func post(t *testing.T, url string, body string) (int, http.Header, []byte) {
	t.Helper()
	// Errorf, not Fatal: post is also called from goroutines.
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return 0, nil, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("read answer: %v", err)
	}
	return resp.StatusCode, resp.Header, b
}

const hello = `{"model":"m","messages":[{"role":"user","content":"hello"}]}`

func TestWireFormatMatchesRecordedShape(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t,
		openaitest.Turn{ToolCalls: []openaitest.ToolCall{{ID: "call_a", Name: "f", Arguments: `{"x":1}`}, openaitest.Call("g", `{}`)}, PromptTokens: 3, CompletionTokens: 4},
		openaitest.Text("hi"),
	)
	status, _, body := post(t, srv.URL()+"/chat/completions", hello)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	msg := raw["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if _, ok := msg["content"]; !ok || msg["content"] != nil {
		t.Errorf("content must be present and null with tool calls: %s", body)
	}
	var resp goopenai.ChatCompletionResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	calls := resp.Choices[0].Message.ToolCalls
	if len(calls) != 2 || calls[0].ID != "call_a" || calls[1].ID == "" || calls[1].Function.Name != "g" ||
		resp.Choices[0].FinishReason != "tool_calls" || resp.Usage.TotalTokens != 7 || resp.Object != "chat.completion" {
		t.Errorf("response %s", body)
	}
	status, _, body = post(t, srv.URL()+"/v1/chat/completions", hello)
	if status != 200 || !bytes.Contains(body, []byte(`"content":"hi"`)) || !bytes.Contains(body, []byte(`"finish_reason":"stop"`)) {
		t.Errorf("status %d body %s", status, body)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[1].Path != "/v1/chat/completions" || reqs[0].FirstUserMessage() != "hello" || string(reqs[0].Raw) != hello {
		t.Errorf("requests %+v", reqs)
	}
}

func TestErrorTurns(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t,
		openaitest.Error(http.StatusTooManyRequests, "Retry-After", "1"),
		openaitest.Turn{Status: 500, Body: "oops"},
	)
	status, h, body := post(t, srv.URL()+"/chat/completions", hello)
	var e goopenai.ErrorResponse
	if status != 429 || h.Get("Retry-After") != "1" || json.Unmarshal(body, &e) != nil || e.Error == nil || e.Error.Code != "rate_limit_exceeded" {
		t.Errorf("429: %d %v %s", status, h, body)
	}
	status, _, body = post(t, srv.URL()+"/chat/completions", hello)
	if status != 500 || string(body) != "oops" {
		t.Errorf("500: %d %s", status, body)
	}
}

func TestScriptExhaustedFailsTheTest(t *testing.T) {
	t.Parallel()
	rec := &recorder{TB: t}
	srv := openaitest.NewServer(rec, openaitest.Text("only one"))
	post(t, srv.URL()+"/chat/completions", hello)
	status, _, body := post(t, srv.URL()+"/chat/completions", hello)
	if status != 500 || !strings.Contains(string(body), "script exhausted") {
		t.Errorf("got %d %s", status, body)
	}
	if f := rec.failures(); len(f) != 1 || !strings.Contains(f[0], "script exhausted") {
		t.Errorf("failures %q", f)
	}
}

func TestLoop(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Text("a"), openaitest.Text("b")).Loop()
	var got []string
	for range 5 {
		_, _, body := post(t, srv.URL()+"/chat/completions", hello)
		var r goopenai.ChatCompletionResponse
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Choices[0].Message.Content)
	}
	if strings.Join(got, "") != "ababa" {
		t.Errorf("got %v", got)
	}
}

func TestForbidSubstrings(t *testing.T) {
	t.Parallel()
	rec := &recorder{TB: t}
	srv := openaitest.NewServer(rec, openaitest.Text("a"), openaitest.Text("b"))
	post(t, srv.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"pw=hunter22"}]}`)
	// Registering after the fact still catches the earlier request.
	srv.ForbidSubstrings("hunter22", "other-secret")
	post(t, srv.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"other-secret"}]}`)
	f := rec.failures()
	if len(f) != 2 || !strings.Contains(f[0], "request 0") || !strings.Contains(f[1], "request 1") {
		t.Errorf("failures %q", f)
	}
	for _, s := range f {
		if strings.Contains(s, "hunter22") || strings.Contains(s, "other-secret") {
			t.Errorf("failure message leaks the value: %s", s)
		}
	}
}

func TestCheckHook(t *testing.T) {
	t.Parallel()
	rec := &recorder{TB: t}
	srv := openaitest.NewServer(rec, openaitest.Turn{Text: "x", Check: func(r goopenai.ChatCompletionRequest) error {
		if r.Model != "want-model" {
			return fmt.Errorf("model %q", r.Model)
		}
		return nil
	}})
	status, _, body := post(t, srv.URL()+"/chat/completions", hello)
	if status != 400 || !strings.Contains(string(body), `model \"m\"`) || len(rec.failures()) != 1 {
		t.Errorf("got %d %s, failures %q", status, body, rec.failures())
	}
}

func TestRequireAPIKey(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Text("x")).RequireAPIKey("sk-right")
	status, _, body := post(t, srv.URL()+"/chat/completions", hello)
	if status != 401 || !strings.Contains(string(body), "invalid_api_key") {
		t.Errorf("got %d %s", status, body)
	}
}

func TestFuncServerConcurrent(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServerFunc(t, func(r openaitest.Request) openaitest.Turn {
		return openaitest.Text("echo " + r.FirstUserMessage())
	})
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			marker := fmt.Sprintf("m%d", i)
			_, _, body := post(t, srv.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"`+marker+`"}]}`)
			if !bytes.Contains(body, []byte(`"echo `+marker+`"`)) {
				t.Errorf("%s: %s", marker, body)
			}
		})
	}
	wg.Wait()
	if n := len(srv.Requests()); n != 100 {
		t.Errorf("%d requests", n)
	}
}
