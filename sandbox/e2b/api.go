// Package e2b is the E2B cloud sandbox provider (HERO_SANDBOX=e2b): a
// client for E2B's control plane (REST) and for envd, the agent inside
// every sandbox (Connect RPC with the JSON codec, and its /files
// endpoint), and a sandbox.Provider over them.
//
// The wire protocol follows E2B's published OpenAPI and proto files (see
// the README for what was checked against the real service and what only
// against the fake in e2btest). No credential of hero's ever enters a
// sandbox: the repository arrives as a git bundle made on the host, and
// a project's secrets as a 0600 file written through envd's filesystem
// API, read by hero's command wrapper, never in a process-start request
// (E2B records those where the team can read them).
package e2b

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Errors a caller can test with errors.Is; APIError carries the detail.
var (
	ErrAuth            = errors.New("E2B rejected the API key (E2B_API_KEY)")
	ErrNotFound        = errors.New("the E2B sandbox is gone (killed, expired or never existed)")
	ErrRateLimited     = errors.New("E2B rate limit")
	ErrQuota           = errors.New("E2B concurrent sandbox limit reached")
	ErrTemplateMissing = errors.New("the E2B template does not exist")
	ErrConflict        = errors.New("the E2B sandbox is changing state (pausing or resuming)")
	ErrUnavailable     = errors.New("E2B is unavailable")
)

// APIError is a failed control-plane or envd call.
type APIError struct {
	Op      string // what hero was doing: "create sandbox", …
	Status  int
	Message string // E2B's message
	Code    string // E2B's error_code, or the Connect code
	kind    error
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.kind != nil {
		return fmt.Sprintf("e2b: %s: %v (HTTP %d: %s)", e.Op, e.kind, e.Status, msg)
	}
	return fmt.Sprintf("e2b: %s: HTTP %d: %s", e.Op, e.Status, msg)
}

func (e *APIError) Unwrap() error { return e.kind }

// classify maps a control-plane answer to one of the errors above.
func classify(op string, status int, body []byte) *APIError {
	var b struct {
		Code      json.RawMessage `json:"code"`
		Message   string          `json:"message"`
		ErrorCode string          `json:"error_code"`
	}
	_ = json.Unmarshal(body, &b)
	e := &APIError{Op: op, Status: status, Message: strings.TrimSpace(b.Message), Code: b.ErrorCode}
	if e.Message == "" && len(body) > 0 && len(body) < 300 && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("<")) {
		e.Message = strings.TrimSpace(string(body))
	}
	lower := strings.ToLower(e.Message)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.kind = ErrAuth
	case status == http.StatusTooManyRequests && strings.Contains(lower, "concurrent"):
		e.kind = ErrQuota
	case status == http.StatusTooManyRequests:
		e.kind = ErrRateLimited
	case (status == http.StatusNotFound || status == http.StatusBadRequest) && strings.Contains(lower, "template"):
		e.kind = ErrTemplateMissing
	case status == http.StatusNotFound:
		e.kind = ErrNotFound
	case status == http.StatusConflict:
		e.kind = ErrConflict
	case status == http.StatusBadGateway:
		// E2B's edge answers 502 for a sandbox that is not there.
		e.kind = ErrNotFound
	case status >= 500:
		e.kind = ErrUnavailable
	}
	return e
}

// Client talks to E2B's control plane.
type Client struct {
	apiURL string
	key    string
	http   *http.Client
	// retries of 429 and 5xx answers, and the first backoff.
	retries int
	backoff time.Duration
}

// NewClient returns a control-plane client. apiURL is E2B_API_URL
// ("" for https://api.<domain>).
func NewClient(apiURL, domain, key string, hc *http.Client) (*Client, error) {
	if key == "" {
		return nil, errors.New("e2b: E2B_API_KEY is not set")
	}
	if domain == "" {
		domain = "e2b.app"
	}
	if apiURL == "" {
		apiURL = "https://api." + domain
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("e2b: E2B_API_URL %q is not an http(s) URL", apiURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 3 * time.Minute}
	}
	return &Client{apiURL: strings.TrimRight(apiURL, "/"), key: key, http: hc, retries: 4, backoff: 500 * time.Millisecond}, nil
}

// do sends one JSON request, retrying 429 (after Retry-After, or a
// growing backoff) and 502/503/504 from the edge; out, when not nil,
// receives the JSON answer.
func (c *Client) do(ctx context.Context, op, method, path string, in, out any, ok ...int) (http.Header, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("e2b: %s: %w", op, err)
		}
	}
	wait := c.backoff
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.apiURL+path, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("e2b: %s: %w", op, err)
		}
		req.Header.Set("X-API-Key", c.key)
		req.Header.Set("User-Agent", "hero-e2b")
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil || attempt >= c.retries {
				return nil, fmt.Errorf("e2b: %s: %w", op, err)
			}
			if err := sleep(ctx, jitter(wait)); err != nil {
				return nil, fmt.Errorf("e2b: %s: %w", op, err)
			}
			wait *= 2
			continue
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		good := resp.StatusCode/100 == 2
		if len(ok) > 0 {
			good = false
			for _, s := range ok {
				good = good || resp.StatusCode == s
			}
		}
		if good {
			if out != nil && len(data) > 0 {
				if err := json.Unmarshal(data, out); err != nil {
					return nil, fmt.Errorf("e2b: %s: answer does not parse: %w", op, err)
				}
			}
			return resp.Header, nil
		}
		e := classify(op, resp.StatusCode, data)
		retry := resp.StatusCode == http.StatusTooManyRequests && !errors.Is(e, ErrQuota) ||
			resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout
		if !retry || attempt >= c.retries {
			return resp.Header, e
		}
		d := jitter(wait)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			d = time.Duration(s) * time.Second
		}
		if d > time.Minute {
			return resp.Header, e
		}
		if err := sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("e2b: %s: %w", op, err)
		}
		wait *= 2
	}
}

func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// NewSandbox is the create request. Secrets never go in EnvVars (see the
// package comment); hero sends none.
type NewSandbox struct {
	TemplateID          string            `json:"templateID"`
	Timeout             int               `json:"timeout,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	EnvVars             map[string]string `json:"envVars,omitempty"`
	Secure              bool              `json:"secure"`
	AllowInternetAccess *bool             `json:"allow_internet_access,omitempty"`
	AutoPause           bool              `json:"autoPause,omitempty"`
}

// SandboxInfo is what create and connect return.
type SandboxInfo struct {
	TemplateID      string  `json:"templateID"`
	SandboxID       string  `json:"sandboxID"`
	EnvdVersion     string  `json:"envdVersion"`
	EnvdAccessToken string  `json:"envdAccessToken,omitempty"`
	Domain          *string `json:"domain,omitempty"`
}

// SandboxDetail is what get and list return.
type SandboxDetail struct {
	TemplateID      string            `json:"templateID"`
	SandboxID       string            `json:"sandboxID"`
	StartedAt       time.Time         `json:"startedAt"`
	EndAt           time.Time         `json:"endAt"`
	Metadata        map[string]string `json:"metadata"`
	State           string            `json:"state"`
	EnvdVersion     string            `json:"envdVersion"`
	EnvdAccessToken string            `json:"envdAccessToken,omitempty"`
}

// Create starts a sandbox.
func (c *Client) Create(ctx context.Context, req NewSandbox) (*SandboxInfo, error) {
	if req.TemplateID == "" {
		req.TemplateID = "base"
	}
	var sb SandboxInfo
	if _, err := c.do(ctx, "create sandbox from template "+req.TemplateID, http.MethodPost, "/sandboxes", req, &sb, http.StatusCreated, http.StatusOK); err != nil {
		return nil, err
	}
	if sb.SandboxID == "" {
		return nil, errors.New("e2b: create sandbox: the answer has no sandboxID")
	}
	return &sb, nil
}

// Get describes one sandbox (ErrNotFound when it is gone).
func (c *Client) Get(ctx context.Context, id string) (*SandboxDetail, error) {
	var d SandboxDetail
	if _, err := c.do(ctx, "get sandbox "+id, http.MethodGet, "/sandboxes/"+url.PathEscape(id), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// List returns the running and paused sandboxes whose metadata holds
// every pair of meta, following E2B's pages.
func (c *Client) List(ctx context.Context, meta map[string]string) ([]SandboxDetail, error) {
	q := url.Values{}
	for k, v := range meta {
		q.Set(k, v)
	}
	var all []SandboxDetail
	next := ""
	for {
		p := url.Values{"state": {"running,paused"}, "limit": {"100"}}
		if len(meta) > 0 {
			p.Set("metadata", q.Encode())
		}
		if next != "" {
			p.Set("nextToken", next)
		}
		var page []SandboxDetail
		h, err := c.do(ctx, "list sandboxes", http.MethodGet, "/v2/sandboxes?"+p.Encode(), nil, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next = h.Get("X-Next-Token"); next == "" || len(page) == 0 {
			return all, nil
		}
	}
}

// Kill ends a sandbox; one already gone is not an error.
func (c *Client) Kill(ctx context.Context, id string) error {
	_, err := c.do(ctx, "kill sandbox "+id, http.MethodDelete, "/sandboxes/"+url.PathEscape(id), nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// SetTimeout makes the sandbox end d from now (keep-alive).
func (c *Client) SetTimeout(ctx context.Context, id string, d time.Duration) error {
	_, err := c.do(ctx, "set the timeout of sandbox "+id, http.MethodPost, "/sandboxes/"+url.PathEscape(id)+"/timeout", map[string]int{"timeout": seconds(d)}, nil)
	return err
}

// Pause pauses a running sandbox; one already paused is not an error.
func (c *Client) Pause(ctx context.Context, id string) error {
	_, err := c.do(ctx, "pause sandbox "+id, http.MethodPost, "/sandboxes/"+url.PathEscape(id)+"/pause", struct{}{}, nil)
	if errors.Is(err, ErrConflict) {
		return nil
	}
	return err
}

// Connect resumes a paused sandbox (or reaches a running one), living at
// least d from now.
func (c *Client) Connect(ctx context.Context, id string, d time.Duration) (*SandboxInfo, error) {
	var sb SandboxInfo
	if _, err := c.do(ctx, "resume sandbox "+id, http.MethodPost, "/sandboxes/"+url.PathEscape(id)+"/connect", map[string]int{"timeout": seconds(d)}, &sb, http.StatusOK, http.StatusCreated); err != nil {
		return nil, err
	}
	return &sb, nil
}

// Snapshot records the sandbox's state; the returned id can be the
// templateID of a new sandbox.
func (c *Client) Snapshot(ctx context.Context, id, name string) (string, error) {
	var out struct {
		SnapshotID string `json:"snapshotID"`
	}
	body := map[string]string{}
	if name != "" {
		body["name"] = name
	}
	if _, err := c.do(ctx, "snapshot sandbox "+id, http.MethodPost, "/sandboxes/"+url.PathEscape(id)+"/snapshots", body, &out, http.StatusCreated, http.StatusOK); err != nil {
		return "", err
	}
	if out.SnapshotID == "" {
		return "", errors.New("e2b: snapshot: the answer has no snapshotID")
	}
	return out.SnapshotID, nil
}

// DeleteSnapshot removes a snapshot (a template); one already gone is not
// an error.
func (c *Client) DeleteSnapshot(ctx context.Context, id string) error {
	_, err := c.do(ctx, "delete snapshot "+id, http.MethodDelete, "/templates/"+url.PathEscape(id), nil, nil)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrTemplateMissing) {
		return nil
	}
	return err
}

// Health checks the API key against the control plane.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, "check the API", http.MethodGet, "/health", nil, nil)
	return err
}

func seconds(d time.Duration) int {
	s := int(d / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
