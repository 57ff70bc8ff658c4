package e2b

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// envdPort is where envd listens inside every sandbox.
const envdPort = "49983"

// envd is a client of one sandbox's envd. The Connect protocol is written
// out here (a 5-byte envelope around JSON messages) rather than generated:
// hero needs seven methods, and generating them needs protoc and two
// plugins in every build environment for what is a page of code.
type envd struct {
	base  string // scheme://host of envd, or E2B_SANDBOX_URL
	id    string
	token *tokenBox // X-Access-Token of a secure sandbox (renewed on resume)
	user  string    // the user commands and files act as
	http  *http.Client
}

// tokenBox holds envd's access token, which a resume may replace while
// other calls are made.
type tokenBox struct {
	mu sync.Mutex
	v  string
}

func (t *tokenBox) get() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.v
}

func (t *tokenBox) set(v string) {
	t.mu.Lock()
	t.v = v
	t.mu.Unlock()
}

// rpcError is a failed envd call: a Connect error (Code set) or a plain
// HTTP one (from the proxy or envd's middleware).
type rpcError struct {
	Method  string
	Status  int
	Code    string
	Message string
}

func (e *rpcError) Error() string {
	what := e.Code
	if what == "" {
		what = "HTTP " + strconv.Itoa(e.Status)
	}
	if e.Status == http.StatusBadGateway {
		return fmt.Sprintf("e2b: %s: the sandbox is gone (killed or timed out): %s", e.Method, e.Message)
	}
	return fmt.Sprintf("e2b: %s: %s: %s", e.Method, what, e.Message)
}

// Is maps envd's answers to the errors callers test: a missing file is
// fs.ErrNotExist; the edge's 502 and Connect's "unavailable" mean the
// sandbox is gone.
func (e *rpcError) Is(target error) bool {
	switch target {
	case fs.ErrNotExist:
		return e.Code == "not_found" || (e.Code == "" && e.Status == http.StatusNotFound)
	case ErrNotFound:
		return e.Status == http.StatusBadGateway || e.Code == "unavailable"
	case ErrAuth:
		return e.Code == "unauthenticated" || e.Status == http.StatusUnauthorized
	case ErrRateLimited:
		return e.Code == "resource_exhausted" || e.Status == http.StatusTooManyRequests
	}
	return false
}

// rpcFailure reads an error answer: a JSON body whose code is a string is
// a Connect error; anything else is mapped by status.
func rpcFailure(method string, resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &rpcError{Method: method, Status: resp.StatusCode}
	var b struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(data, &b) == nil {
		var s string
		if json.Unmarshal(b.Code, &s) == nil {
			e.Code = s
		}
		e.Message = b.Message
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(data))
		if len(e.Message) > 300 {
			e.Message = e.Message[:300]
		}
	}
	return e
}

func (e *envd) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("E2b-Sandbox-Id", e.id)
	req.Header.Set("E2b-Sandbox-Port", envdPort)
	req.Header.Set("User-Agent", "hero-e2b")
	if tok := e.token.get(); tok != "" {
		req.Header.Set("X-Access-Token", tok)
	}
	if e.user != "" {
		req.SetBasicAuth(e.user, "")
	}
	return req, nil
}

// unary calls a unary RPC ("filesystem.Filesystem/Stat") with JSON.
func (e *envd) unary(ctx context.Context, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := e.request(ctx, http.MethodPost, "/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("e2b: %s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rpcFailure(method, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("e2b: %s: answer does not parse: %w", method, err)
	}
	return nil
}

// Envelope flags of the Connect streaming protocol.
const (
	flagCompressed = 0x01
	flagEnd        = 0x02
)

func envelope(flags byte, payload []byte) []byte {
	out := make([]byte, 5+len(payload))
	out[0] = flags
	binary.BigEndian.PutUint32(out[1:5], uint32(len(payload)))
	copy(out[5:], payload)
	return out
}

// maxMessage bounds one streamed message (envd sends output in chunks of
// at most 32 KiB).
const maxMessage = 16 << 20

// readEnvelope reads one message of a Connect stream.
func readEnvelope(r *bufio.Reader) (flags byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxMessage {
		return 0, nil, fmt.Errorf("a streamed message of %d bytes is too large", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if hdr[0]&flagCompressed != 0 {
		return 0, nil, errors.New("compressed stream messages were not asked for")
	}
	return hdr[0], payload, nil
}

// stream calls a server-streaming RPC and hands every message to each
// until the end of the stream. timeout, when positive, is sent as
// Connect-Timeout-Ms (envd ends the call, and a started process, then).
func (e *envd) stream(ctx context.Context, method string, in any, timeout time.Duration, each func(json.RawMessage) error) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := e.request(ctx, http.MethodPost, "/"+method, bytes.NewReader(envelope(0, body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/connect+json")
	req.Header.Set("Connect-Protocol-Version", "1")
	req.Header.Set("Keepalive-Ping-Interval", "50")
	if timeout > 0 {
		req.Header.Set("Connect-Timeout-Ms", strconv.FormatInt(timeout.Milliseconds(), 10))
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("e2b: %s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rpcFailure(method, resp)
	}
	r := bufio.NewReader(resp.Body)
	for {
		flags, payload, err := readEnvelope(r)
		if err != nil {
			return fmt.Errorf("e2b: %s: the stream broke off: %w", method, err)
		}
		if flags&flagEnd != 0 {
			var end struct {
				Error *struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(payload, &end); err != nil {
				return fmt.Errorf("e2b: %s: end of stream does not parse: %w", method, err)
			}
			if end.Error != nil {
				return &rpcError{Method: method, Status: http.StatusOK, Code: end.Error.Code, Message: end.Error.Message}
			}
			return nil
		}
		if err := each(payload); err != nil {
			return err
		}
	}
}

// upload writes data to path through envd's /files endpoint.
func (e *envd) upload(ctx context.Context, path string, data []byte) error {
	return e.uploadFrom(ctx, path, bytes.NewReader(data))
}

// uploadFrom streams r to path through envd's /files endpoint, in one
// request.
func (e *envd) uploadFrom(ctx context.Context, path string, r io.Reader) error {
	q := url.Values{"path": {path}}
	if e.user != "" {
		q.Set("username", e.user)
	}
	req, err := e.request(ctx, http.MethodPost, "/files?"+q.Encode(), r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("e2b: upload %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusInsufficientStorage {
			return fmt.Errorf("e2b: upload %s: the sandbox's disk is full", path)
		}
		return rpcFailure("upload "+path, resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// download reads path through envd's /files endpoint, at most limit bytes.
func (e *envd) download(ctx context.Context, path string, limit int64) ([]byte, error) {
	q := url.Values{"path": {path}}
	if e.user != "" {
		q.Set("username", e.user)
	}
	req, err := e.request(ctx, http.MethodGet, "/files?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("e2b: download %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, rpcFailure("download "+path, resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("e2b: download %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("e2b: download %s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// health asks envd whether the sandbox is up: nil, or an error wrapping
// ErrNotFound when E2B's edge says it is gone.
func (e *envd) health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := e.request(ctx, http.MethodGet, "/health", nil)
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("e2b: sandbox %s health: %w", e.id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return rpcFailure("health", resp)
	}
	return nil
}

// entry is envd's EntryInfo.
type entry struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	Path          string `json:"path"`
	Size          any    `json:"size"` // int64 as a JSON string (or a number)
	Mode          uint32 `json:"mode"`
	ModifiedTime  string `json:"modifiedTime"`
	SymlinkTarget string `json:"symlinkTarget"`
}

func (e entry) size() int64 {
	switch v := e.Size.(type) {
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	case float64:
		return int64(v)
	}
	return 0
}
