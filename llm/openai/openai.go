// Package openai implements engine.Model for any server that speaks the
// OpenAI chat completions API (api.openai.com, OpenRouter, vLLM, Ollama,
// LiteLLM, Azure-style proxies) using github.com/sashabaranov/go-openai.
//
// The client converts the engine's neutral messages to the wire types and
// back, retries what a retry can fix (rate limits, server errors, dropped
// connections) with exponential backoff that honours the server's
// Retry-After hints, and turns everything else into an error wrapping
// engine.ErrModelFatal whose message tells the operator what to change.
// The API key never appears in an error or a log line.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/redact"
)

// Defaults for Config fields left zero.
const (
	DefaultBaseURL    = "https://api.openai.com/v1"
	DefaultModel      = "gpt-4.1-mini"
	DefaultMaxRetries = 4
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// EmptyToolResult is sent in place of a tool result with no output: the
// wire format needs content, and the model should know the tool ran.
const EmptyToolResult = "(no output)"

// Config configures a Client. Only APIKey is required.
type Config struct {
	// APIKey is sent as a bearer token (OPENAI_API_KEY).
	APIKey string
	// BaseURL of the API including its version path, default
	// DefaultBaseURL; any OpenAI-compatible server works
	// (OPENAI_BASE_URL).
	BaseURL string
	// Model used when a ModelRequest names none, default DefaultModel
	// (HERO_MODEL).
	Model string
	// HTTPClient sends the requests, default a client with no overall
	// timeout (calls are bounded by their context: a long completion
	// can legitimately take minutes) that keeps up to 64 idle
	// connections to the server.
	HTTPClient *http.Client
	// MaxRetries is how many times a failed call is retried after the
	// first attempt, default DefaultMaxRetries; negative disables
	// retries.
	MaxRetries int
	// MinBackoff is the first retry's base delay, doubled per attempt,
	// default DefaultMinBackoff.
	MinBackoff time.Duration
	// MaxBackoff caps any single wait, including one the server asks
	// for with Retry-After, default DefaultMaxBackoff.
	MaxBackoff time.Duration
}

// Client is an engine.Model backed by an OpenAI-compatible server. It is
// safe for concurrent use.
type Client struct {
	api     *goopenai.Client
	cfg     Config
	log     *slog.Logger
	scrub   *redact.Redactor // hides the API key in anything we return or log
	sleep   func(ctx context.Context, d time.Duration) error
	chatURL string // for error messages
}

var _ engine.Model = (*Client)(nil)

// New returns a Client for cfg. It fails when the API key is missing,
// because every call would otherwise fail later with a less obvious 401.
// log receives one line per retry; nil discards.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("openai: no API key: set OPENAI_API_KEY (any non-empty value for servers that need none)")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return nil, fmt.Errorf("openai: base URL %q must start with http:// or https:// (OPENAI_BASE_URL)", cfg.BaseURL)
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if cfg.HTTPClient == nil {
		// Many runs talk to the same host at once; the default of two
		// idle connections per host would open and close a connection
		// for most calls.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		cfg.HTTPClient = &http.Client{Transport: t}
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	} else if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	scrub := redact.New()
	scrub.AddNamed("OPENAI_API_KEY", cfg.APIKey)
	chatURL := cfg.BaseURL + "/chat/completions"
	if u, err := url.Parse(chatURL); err == nil {
		chatURL = u.Redacted() // no password from the URL in error messages
	}

	oc := goopenai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = cfg.BaseURL
	oc.HTTPClient = cfg.HTTPClient
	return &Client{
		api:     goopenai.NewClientWithConfig(oc),
		cfg:     cfg,
		log:     log.With("component", "llm/openai"),
		scrub:   scrub,
		sleep:   sleepCtx,
		chatURL: chatURL,
	}, nil
}

// Complete sends the conversation and returns the assistant's next
// message. It retries 408, 409, 429 (except "insufficient_quota"), 5xx
// and connection failures up to MaxRetries times; other HTTP errors,
// an unusable response body and an exhausted quota return at once with
// an error wrapping engine.ErrModelFatal. When ctx ends, Complete returns
// ctx's error at once, also in the middle of a backoff wait.
// ModelResponse.Latency covers the whole call including retries.
func (c *Client) Complete(ctx context.Context, req engine.ModelRequest) (engine.ModelResponse, error) {
	start := time.Now()
	creq, err := c.request(req)
	if err != nil {
		return engine.ModelResponse{}, err
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.api.CreateChatCompletion(ctx, creq)
		if err == nil {
			out, cerr := c.response(resp)
			if cerr != nil {
				return engine.ModelResponse{}, cerr
			}
			out.Latency = time.Since(start)
			return out, nil
		}
		if ctx.Err() != nil {
			return engine.ModelResponse{}, fmt.Errorf("openai: chat completion: %w", context.Cause(ctx))
		}
		failure := c.classify(err, resp.Header(), creq.Model)
		if !failure.retry {
			return engine.ModelResponse{}, fmt.Errorf("openai: %w", failure.err)
		}
		if attempt >= c.cfg.MaxRetries {
			return engine.ModelResponse{}, fmt.Errorf("openai: giving up after %d attempts: %w", attempt+1, failure.err)
		}
		wait := c.backoff(attempt, failure.hint)
		c.log.WarnContext(ctx, "model call failed, retrying",
			"attempt", attempt+1, "max_attempts", c.cfg.MaxRetries+1,
			"wait", wait, "error", failure.err.Error())
		if err := c.sleep(ctx, wait); err != nil {
			return engine.ModelResponse{}, fmt.Errorf("openai: waiting to retry (%v): %w", failure.err, err)
		}
	}
}

// request converts the neutral request to go-openai's type.
func (c *Client) request(req engine.ModelRequest) (goopenai.ChatCompletionRequest, error) {
	model := req.Model
	if model == "" {
		model = c.cfg.Model
	}
	out := goopenai.ChatCompletionRequest{Model: model}
	if len(req.Messages) == 0 {
		return out, errors.New("openai: request has no messages")
	}
	out.Messages = make([]goopenai.ChatCompletionMessage, 0, len(req.Messages))
	for i, m := range req.Messages {
		cm := goopenai.ChatCompletionMessage{Role: m.Role, Content: m.Content}
		switch m.Role {
		case engine.RoleSystem, engine.RoleUser:
		case engine.RoleAssistant:
			for _, tc := range m.ToolCalls {
				cm.ToolCalls = append(cm.ToolCalls, goopenai.ToolCall{
					ID:   tc.ID,
					Type: goopenai.ToolTypeFunction,
					Function: goopenai.FunctionCall{
						Name:      tc.Name,
						Arguments: tc.Arguments,
					},
				})
			}
		case engine.RoleTool:
			if m.ToolCallID == "" {
				return out, fmt.Errorf("openai: message %d: tool result has no tool_call_id", i)
			}
			// The tool's name (m.Name) is not sent: OpenAI's tool
			// messages carry only tool_call_id, and strict servers
			// reject unknown fields.
			cm.ToolCallID = m.ToolCallID
			if cm.Content == "" {
				// go-openai drops an empty content field, and OpenAI
				// rejects a tool message without one.
				cm.Content = EmptyToolResult
			}
		default:
			return out, fmt.Errorf("openai: message %d: unknown role %q", i, m.Role)
		}
		out.Messages = append(out.Messages, cm)
	}
	for _, t := range req.Tools {
		params := t.Parameters
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		} else if !json.Valid(params) {
			return out, fmt.Errorf("openai: tool %q: parameters are not valid JSON", t.Name)
		}
		out.Tools = append(out.Tools, goopenai.Tool{
			Type: goopenai.ToolTypeFunction,
			Function: &goopenai.FunctionDefinition{
				Name:        t.Name,
				Description: t.Description,
				Parameters:  params,
			},
		})
	}
	return out, nil
}

// response converts the first choice to the neutral message.
func (c *Client) response(resp goopenai.ChatCompletionResponse) (engine.ModelResponse, error) {
	if len(resp.Choices) == 0 {
		return engine.ModelResponse{}, fmt.Errorf("openai: %s answered with no choices (response id %q)", c.chatURL, resp.ID)
	}
	ch := resp.Choices[0]
	msg := engine.Message{Role: engine.RoleAssistant, Content: ch.Message.Content}
	if msg.Content == "" && ch.Message.Refusal != "" {
		msg.Content = ch.Message.Refusal
	}
	for i, tc := range ch.Message.ToolCalls {
		id := tc.ID
		if id == "" {
			// Some compatible servers omit ids; the engine needs one
			// to pair the tool result with its call.
			id = fmt.Sprintf("call_%d", i)
		}
		msg.ToolCalls = append(msg.ToolCalls, engine.ToolCall{
			ID:        id,
			Name:      tc.Function.Name,
			Arguments: tc.Function.Arguments,
		})
	}
	return engine.ModelResponse{
		Message: msg,
		Usage: engine.Usage{
			PromptTokens:     int64(resp.Usage.PromptTokens),
			CompletionTokens: int64(resp.Usage.CompletionTokens),
		},
		FinishReason: string(ch.FinishReason),
	}, nil
}

// failure is a classified error of one attempt.
type failure struct {
	err   error
	retry bool
	hint  time.Duration // server-requested wait, 0 if none
}

// classify turns a go-openai error into a clear, key-free error and
// decides whether retrying can help.
func (c *Client) classify(err error, h http.Header, model string) failure {
	status, msg, code := 0, "", ""
	var apiErr *goopenai.APIError
	var reqErr *goopenai.RequestError
	switch {
	case errors.As(err, &apiErr):
		status, msg = apiErr.HTTPStatusCode, apiErr.Message
		if s, ok := apiErr.Code.(string); ok {
			code = s
		}
		if code == "" {
			code = apiErr.Type
		}
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
		msg = snippet(reqErr.Body)
		if msg == "" && reqErr.Err != nil {
			msg = reqErr.Err.Error()
		}
	}
	if status == 0 {
		return c.classifyTransport(err)
	}
	msg = c.scrub.String(msg)
	detail := ""
	if msg != "" {
		detail = ": " + msg
	}
	fatal := func(format string, args ...any) failure {
		return failure{err: fmt.Errorf("%w: %s%s", engine.ErrModelFatal, fmt.Sprintf(format, args...), detail)}
	}
	switch {
	case status == http.StatusUnauthorized:
		return fatal("the model server rejected the API key (401): check OPENAI_API_KEY")
	case status == http.StatusForbidden:
		return fatal("the model server refused access (403): the API key may lack permission for model %q or this endpoint", model)
	case status == http.StatusNotFound:
		return fatal("the model server does not know model %q or the URL %s (404): check HERO_MODEL and OPENAI_BASE_URL", model, c.chatURL)
	case status == http.StatusTooManyRequests && code == "insufficient_quota":
		return fatal("the model account has no quota left (429 insufficient_quota): check the plan and billing of the API key's account")
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status == http.StatusConflict, status >= 500:
		return failure{
			err:   fmt.Errorf("the model server answered %d %s%s", status, http.StatusText(status), detail),
			retry: true,
			hint:  retryHint(h, time.Now()),
		}
	case status == http.StatusBadRequest:
		return fatal("the model server rejected the request (400)")
	default:
		return fatal("the model server answered %d %s", status, http.StatusText(status))
	}
}

// classifyTransport handles errors without an HTTP status: the request
// never got an answer, or the 200 answer could not be decoded.
func (c *Client) classifyTransport(err error) failure {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typeErr) {
		return failure{err: fmt.Errorf("%w: %s answered 200 with a body that is not a chat completion (%s): check OPENAI_BASE_URL points at an OpenAI-compatible API",
			engine.ErrModelFatal, c.chatURL, c.scrub.String(err.Error()))}
	}
	// Connection refused, reset, DNS, TLS handshake, timeout, a body cut
	// short: all worth another try.
	return failure{err: fmt.Errorf("calling %s: %s", c.chatURL, c.scrub.String(err.Error())), retry: true}
}

// snippet returns the start of an error body for a message, trimmed.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	const max = 300
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// retryHint reads how long the server asks us to wait: Retry-After
// (seconds or HTTP date), retry-after-ms, OpenAI's x-ratelimit-reset-
// requests/-tokens (durations like "6m0s", "20ms") for the exhausted
// limit, or OpenRouter's X-RateLimit-Reset (Unix milliseconds). It
// returns 0 when there is no usable hint.
func retryHint(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil {
			if secs > 0 {
				return time.Duration(secs * float64(time.Second))
			}
			return 0
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return d
			}
			return 0
		}
	}
	var hint time.Duration
	for _, limit := range []string{"requests", "tokens"} {
		if h.Get("x-ratelimit-remaining-"+limit) != "0" {
			continue
		}
		if d, err := time.ParseDuration(h.Get("x-ratelimit-reset-" + limit)); err == nil {
			hint = max(hint, d)
		}
	}
	if hint > 0 {
		return hint
	}
	if v := h.Get("X-RateLimit-Reset"); v != "" && h.Get("X-RateLimit-Remaining") == "0" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 1e12 {
			if d := time.UnixMilli(ms).Sub(now); d > 0 {
				return d
			}
		}
	}
	return 0
}

// backoff returns the wait before retry number attempt+1: the server's
// hint plus a little jitter when it gave one, otherwise exponential
// backoff with equal jitter; never more than MaxBackoff.
func (c *Client) backoff(attempt int, hint time.Duration) time.Duration {
	if hint > 0 {
		// Jitter up to 10% (at most a second) so that many runs rate
		// limited together do not return in lockstep.
		j := min(hint/10, time.Second)
		if j > 0 {
			hint += rand.N(j)
		}
		return min(hint, c.cfg.MaxBackoff)
	}
	d := c.cfg.MinBackoff << min(attempt, 20)
	if d <= 0 || d > c.cfg.MaxBackoff {
		d = c.cfg.MaxBackoff
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleepCtx waits d or until ctx ends, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
