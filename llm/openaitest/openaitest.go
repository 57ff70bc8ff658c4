// Package openaitest is a fake OpenAI-compatible chat completions server
// for tests. It speaks the real wire format (the shapes recorded from
// api.openai.com), so the production client in llm/openai is exercised end
// to end over HTTP: request encoding, response decoding, error bodies,
// retry headers.
//
// A test either scripts the replies in order (NewServer) or computes each
// reply from the request (NewServerFunc), which is how a benchmark serves
// any number of concurrent agent runs. Every request is recorded, and
// ForbidSubstrings turns "no secret value ever reaches the model" into a
// test failure.
package openaitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sashabaranov/go-openai"
)

// Turn is one reply of the fake server. Set exactly one of: ToolCalls,
// Text (may be empty for an empty answer), Status (an HTTP error), or Raw
// (a verbatim body, for recorded fixtures or malformed JSON).
type Turn struct {
	// Text is the assistant's final answer.
	Text string
	// ToolCalls are the tools the assistant asks to run, in order;
	// several make a parallel tool call.
	ToolCalls []ToolCall
	// FinishReason defaults to "tool_calls" when ToolCalls is set and
	// "stop" otherwise.
	FinishReason string
	// Usage is reported in the response's usage object.
	PromptTokens, CompletionTokens int

	// Status, when not 0 or 200, makes the reply an HTTP error with Body
	// (default: the OpenAI error JSON for that status) and Header.
	Status int
	Body   string
	// Header is added to the reply, whatever its kind (Retry-After,
	// x-ratelimit-*).
	Header http.Header

	// Raw, when not nil, is sent verbatim as the body with Status (200
	// when 0) and Content-Type application/json.
	Raw []byte

	// Check, when set, inspects the request that this turn answers. An
	// error fails the test and is answered with 400 so the client sees
	// it too.
	Check func(req openai.ChatCompletionRequest) error
}

// ToolCall is one tool call in a Turn. ID defaults to "call_<n>" with n
// unique on the server.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // raw JSON, sent as is (it may be malformed on purpose)
}

// Text returns a Turn answering with final text.
func Text(s string) Turn { return Turn{Text: s} }

// Tools returns a Turn asking to run the given tools.
func Tools(calls ...ToolCall) Turn { return Turn{ToolCalls: calls} }

// Call is shorthand for a ToolCall with a server-assigned ID.
func Call(name, arguments string) ToolCall { return ToolCall{Name: name, Arguments: arguments} }

// Error returns a Turn answering with an HTTP error status and OpenAI's
// error body for it; header pairs ("Retry-After", "1") are added.
func Error(status int, headerPairs ...string) Turn {
	h := http.Header{}
	for i := 0; i+1 < len(headerPairs); i += 2 {
		h.Add(headerPairs[i], headerPairs[i+1])
	}
	return Turn{Status: status, Header: h}
}

// ErrorBody returns the body api.openai.com sends for status: the
// {"error":{"message","type","param","code"}} object with the message and
// code the real server uses.
func ErrorBody(status int) string {
	var msg, typ, code string
	switch status {
	case http.StatusUnauthorized:
		msg, typ, code = "Incorrect API key provided: sk-test***********************key. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"
	case http.StatusForbidden:
		msg, typ, code = "You are not allowed to sample from this model", "invalid_request_error", "model_not_allowed"
	case http.StatusNotFound:
		msg, typ, code = "The model `gpt-unknown` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"
	case http.StatusBadRequest:
		msg, typ, code = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "invalid_request_error", "unsupported_parameter"
	case http.StatusTooManyRequests:
		msg, typ, code = "Rate limit reached for gpt-4.1 in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.", "requests", "rate_limit_exceeded"
	default:
		if status >= 500 {
			msg, typ, code = "The server had an error while processing your request. Sorry about that!", "server_error", ""
		} else {
			msg, typ, code = http.StatusText(status), "invalid_request_error", ""
		}
	}
	return errorJSON(msg, typ, code)
}

// QuotaExceededBody is the 429 body OpenAI sends when the account has no
// credit left: retrying does not help.
func QuotaExceededBody() string {
	return errorJSON("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota")
}

func errorJSON(msg, typ, code string) string {
	var c any
	if code != "" {
		c = code
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}})
	return string(b)
}

// Request is one request the server received.
type Request struct {
	Path    string
	Header  http.Header
	Raw     []byte                       // body as sent
	Decoded openai.ChatCompletionRequest // body decoded with go-openai's types
}

// FirstUserMessage returns the content of the first user message, where a
// benchmark puts a marker identifying its run.
func (r Request) FirstUserMessage() string {
	for _, m := range r.Decoded.Messages {
		if m.Role == openai.ChatMessageRoleUser {
			return m.Content
		}
	}
	return ""
}

// Round returns how many assistant messages the conversation already
// holds: 0 for the first call of a run, 1 after one tool round, and so on.
func (r Request) Round() int {
	n := 0
	for _, m := range r.Decoded.Messages {
		if m.Role == openai.ChatMessageRoleAssistant {
			n++
		}
	}
	return n
}

// Server is the fake. Create it with NewServer or NewServerFunc; it is
// closed by t.Cleanup. All methods are safe for concurrent use.
type Server struct {
	t       testing.TB
	srv     *httptest.Server
	respond func(Request) Turn // nil in script mode

	mu        sync.Mutex
	script    []Turn
	next      int
	loop      bool
	requests  []Request
	forbidden []string
	apiKey    string
	callSeq   int
}

// NewServer starts a server answering requests with script, in order.
// After the last turn it answers 500 "script exhausted" (and fails the
// test) unless Loop was called.
func NewServer(t testing.TB, script ...Turn) *Server {
	s := &Server{t: t, script: script}
	s.start()
	return s
}

// NewServerFunc starts a server that asks respond for each reply; respond
// is called concurrently. Use it for an unbounded number of runs, e.g.
// keyed by a marker in Request.FirstUserMessage and by Request.Round.
func NewServerFunc(t testing.TB, respond func(Request) Turn) *Server {
	s := &Server{t: t, respond: respond}
	s.start()
	return s
}

func (s *Server) start() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /chat/completions", s.handle)
	mux.HandleFunc("POST /v1/chat/completions", s.handle)
	s.srv = httptest.NewServer(mux)
	s.t.Cleanup(s.srv.Close)
}

// URL is the base URL to configure the client with (OPENAI_BASE_URL);
// both URL()+"/chat/completions" and URL()+"/v1/chat/completions" work.
func (s *Server) URL() string { return s.srv.URL }

// Loop makes a scripted server start over at the first turn once the
// script is exhausted. It returns s for chaining.
func (s *Server) Loop() *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loop = true
	return s
}

// RequireAPIKey makes the server answer 401 with OpenAI's real error body
// to any request whose bearer token is not key.
func (s *Server) RequireAPIKey(key string) *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = key
	return s
}

// ForbidSubstrings fails the test if any request body, past or future,
// contains one of values. The failure names the value by its position and
// length, never the value itself, so the test log leaks nothing either.
func (s *Server) ForbidSubstrings(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := len(s.forbidden)
	s.forbidden = append(s.forbidden, values...)
	for i, r := range s.requests {
		s.checkForbidden(i, r.Raw, start)
	}
}

// checkForbidden reports forbidden values from index from on in body.
// Callers hold s.mu.
func (s *Server) checkForbidden(reqIdx int, body []byte, from int) {
	for i, v := range s.forbidden[from:] {
		if v != "" && strings.Contains(string(body), v) {
			s.t.Errorf("openaitest: request %d contains forbidden value #%d (%d bytes)", reqIdx, from+i, len(v))
		}
	}
}

// Requests returns a copy of every request received so far, in arrival
// order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Remaining returns how many scripted turns have not been served; a test
// can assert 0 to check the client made every expected call.
func (s *Server) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.script) - s.next
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	req := Request{Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
	decodeErr := json.Unmarshal(raw, &req.Decoded)

	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.checkForbidden(len(s.requests)-1, raw, 0)
	wantKey := s.apiKey
	s.mu.Unlock()

	if decodeErr != nil {
		s.t.Errorf("openaitest: request body is not a chat completion request: %v", decodeErr)
		writeError(w, http.StatusBadRequest, errorJSON("We could not parse the JSON body of your request: "+decodeErr.Error(), "invalid_request_error", ""))
		return
	}
	if wantKey != "" && r.Header.Get("Authorization") != "Bearer "+wantKey {
		writeError(w, http.StatusUnauthorized, ErrorBody(http.StatusUnauthorized))
		return
	}
	if req.Decoded.Stream {
		writeError(w, http.StatusBadRequest, errorJSON("openaitest does not implement streaming", "invalid_request_error", ""))
		return
	}

	turn, ok := s.nextTurn(req)
	if !ok {
		s.t.Errorf("openaitest: script exhausted: request %d has no scripted reply", len(s.Requests()))
		writeError(w, http.StatusInternalServerError, errorJSON("openaitest: script exhausted", "server_error", ""))
		return
	}
	if turn.Check != nil {
		if err := turn.Check(req.Decoded); err != nil {
			s.t.Errorf("openaitest: request check failed: %v", err)
			writeError(w, http.StatusBadRequest, errorJSON("openaitest check failed: "+err.Error(), "invalid_request_error", ""))
			return
		}
	}
	for k, vs := range turn.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	switch {
	case turn.Raw != nil:
		status := turn.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(turn.Raw)
	case turn.Status != 0 && turn.Status != http.StatusOK:
		body := turn.Body
		if body == "" {
			body = ErrorBody(turn.Status)
		}
		writeError(w, turn.Status, body)
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.completion(req.Decoded.Model, turn))
	}
}

func (s *Server) nextTurn(req Request) (Turn, bool) {
	if s.respond != nil {
		return s.respond(req), true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= len(s.script) {
		if !s.loop || len(s.script) == 0 {
			return Turn{}, false
		}
		s.next = 0
	}
	t := s.script[s.next]
	s.next++
	return t, true
}

func writeError(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// The response types mirror the recorded api.openai.com bodies, including
// their nulls (content is null when the assistant calls tools).
type (
	wireResponse struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		Choices           []wireChoice `json:"choices"`
		Usage             wireUsage    `json:"usage"`
		ServiceTier       string       `json:"service_tier"`
		SystemFingerprint *string      `json:"system_fingerprint"`
	}
	wireChoice struct {
		Index        int         `json:"index"`
		Message      wireMessage `json:"message"`
		Logprobs     any         `json:"logprobs"`
		FinishReason string      `json:"finish_reason"`
	}
	wireMessage struct {
		Role        string         `json:"role"`
		Content     *string        `json:"content"`
		ToolCalls   []wireToolCall `json:"tool_calls,omitempty"`
		Refusal     *string        `json:"refusal"`
		Annotations []any          `json:"annotations"`
	}
	wireToolCall struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	wireUsage struct {
		PromptTokens            int            `json:"prompt_tokens"`
		CompletionTokens        int            `json:"completion_tokens"`
		TotalTokens             int            `json:"total_tokens"`
		PromptTokensDetails     map[string]int `json:"prompt_tokens_details"`
		CompletionTokensDetails map[string]int `json:"completion_tokens_details"`
	}
)

func (s *Server) completion(model string, t Turn) wireResponse {
	s.mu.Lock()
	s.callSeq++
	seq := s.callSeq
	s.mu.Unlock()

	msg := wireMessage{Role: "assistant", Annotations: []any{}}
	finish := t.FinishReason
	if len(t.ToolCalls) > 0 {
		for i, c := range t.ToolCalls {
			tc := wireToolCall{ID: c.ID, Type: "function"}
			if tc.ID == "" {
				tc.ID = fmt.Sprintf("call_%d_%d", seq, i)
			}
			tc.Function.Name = c.Name
			tc.Function.Arguments = c.Arguments
			msg.ToolCalls = append(msg.ToolCalls, tc)
		}
		if finish == "" {
			finish = "tool_calls"
		}
	} else {
		text := t.Text
		msg.Content = &text
		if finish == "" {
			finish = "stop"
		}
	}
	return wireResponse{
		ID:      fmt.Sprintf("chatcmpl-openaitest%d", seq),
		Object:  "chat.completion",
		Created: 1755690953,
		Model:   model,
		Choices: []wireChoice{{Message: msg, FinishReason: finish}},
		Usage: wireUsage{
			PromptTokens:            t.PromptTokens,
			CompletionTokens:        t.CompletionTokens,
			TotalTokens:             t.PromptTokens + t.CompletionTokens,
			PromptTokensDetails:     map[string]int{"cached_tokens": 0, "audio_tokens": 0},
			CompletionTokensDetails: map[string]int{"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
		},
		ServiceTier: "default",
	}
}
