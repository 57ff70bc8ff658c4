package engine

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Model is the language model the engine drives: one call takes the
// conversation so far and the tool schemas and returns the next assistant
// message. llm/openai implements it for any OpenAI-compatible server.
type Model interface {
	// Complete returns the next assistant message. Errors that a retry
	// cannot fix (bad key, unknown model) wrap ErrModelFatal; the
	// implementation retries transient failures itself (429, 5xx) and
	// returns the last error once it gives up.
	Complete(ctx context.Context, req ModelRequest) (ModelResponse, error)
}

// ErrModelFatal marks a model error that retrying will not fix.
var ErrModelFatal = errors.New("model request rejected")

// Role of a conversation message.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Message is one entry of the conversation, in the OpenAI chat shape but
// free of any client library's types so it can be persisted as JSON.
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`   // assistant only
	ToolCallID string     `json:"tool_call_id,omitempty"` // tool only
	Name       string     `json:"name,omitempty"`         // tool only: the tool's name
	// Untrusted marks text written by people outside the project (an
	// issue quoted in the task, read_issue's output). It stays in the
	// saved conversation so a resumed run still knows what it has read;
	// model clients do not send it.
	Untrusted bool `json:"untrusted,omitempty"`
}

// ToolCall is the model asking to run a tool. Arguments is the raw JSON
// the model produced, which may be malformed.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ToolSchema describes a tool to the model: Parameters is a JSON Schema
// object.
type ToolSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// ModelRequest is one call to the model.
type ModelRequest struct {
	Model    string
	Messages []Message
	Tools    []ToolSchema
}

// Usage is what the server reported for one call.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
}

// ModelResponse is the assistant's reply.
type ModelResponse struct {
	Message      Message // Role is RoleAssistant
	Usage        Usage
	FinishReason string
	Latency      time.Duration
}
