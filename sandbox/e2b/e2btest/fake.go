// Package e2btest is a fake of E2B for tests: one httptest server that
// plays the control plane (REST) and every sandbox's envd (Connect RPC
// with the JSON codec, /files), routing envd calls by the E2b-Sandbox-Id
// header as E2B's edge does for E2B_SANDBOX_URL. Commands run for real,
// on this host, in a temporary directory per sandbox that stands for the
// sandbox's file system (/repo, /home/user, …): the protocol is faithful,
// the isolation is not (it is a test fake).
//
// Shaped from E2B's OpenAPI spec and envd's protos: the status codes,
// error bodies, streaming envelopes and process events are theirs.
package e2btest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// APIKey is the key the fake accepts.
const APIKey = "e2b_0123456789abcdef0123456789abcdef"

// Server is the fake. Its URL serves both E2B_API_URL and
// E2B_SANDBOX_URL.
type Server struct {
	*httptest.Server
	t    testing.TB
	root string

	mu        sync.Mutex
	sandboxes map[string]*box
	templates map[string]string // id → directory of a snapshot ("" for a plain template)
	max       int
	fail      []failure
	starts    []StartRequest
	calls     []string
	envdCalls map[string]int
}

type failure struct {
	prefix     string
	status     int
	retryAfter string
}

type box struct {
	id, template, token string
	dir                 string
	meta                map[string]string
	state               string
	internet            bool
	started, end        time.Time
	procs               map[uint32]*proc
}

type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// StartRequest is a recorded process start: what E2B would log.
type StartRequest struct {
	Sandbox string
	Cmd     string
	Args    []string
	Envs    map[string]string
	Cwd     string
}

// NewServer starts the fake with the "base" template.
func NewServer(t testing.TB) *Server {
	s := &Server{t: t, root: t.TempDir(), sandboxes: map[string]*box{}, templates: map[string]string{"base": ""}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.Close()
		s.mu.Lock()
		for _, b := range s.sandboxes {
			b.killAll()
		}
		s.mu.Unlock()
	})
	return s
}

// MaxSandboxes sets the team's concurrency limit (0: none).
func (s *Server) MaxSandboxes(n int) { s.mu.Lock(); s.max = n; s.mu.Unlock() }

// FailNext makes the next control-plane request whose path starts with
// prefix answer status (with Retry-After when retryAfter is set).
func (s *Server) FailNext(prefix string, status int, retryAfter string) {
	s.mu.Lock()
	s.fail = append(s.fail, failure{prefix, status, retryAfter})
	s.mu.Unlock()
}

// Starts returns every process start request received.
func (s *Server) Starts() []StartRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StartRequest(nil), s.starts...)
}

// Calls returns "METHOD path" of every control-plane call.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// Live returns the ids of sandboxes not killed, with their state.
func (s *Server) Live() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for id, b := range s.sandboxes {
		out[id] = b.state
	}
	return out
}

// Dir is the directory standing for sandbox id's file system.
func (s *Server) Dir(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.sandboxes[id]; b != nil {
		return b.dir
	}
	return ""
}

// Metadata returns sandbox id's metadata and whether it has internet.
func (s *Server) Metadata(id string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.sandboxes[id]; b != nil {
		return b.meta, b.internet
	}
	return nil, false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"code": status, "message": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get("E2b-Sandbox-Id"); id != "" {
		s.envd(w, r, id)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path)
	for i, f := range s.fail {
		if strings.HasPrefix(r.URL.Path, f.prefix) {
			s.fail = append(s.fail[:i], s.fail[i+1:]...)
			s.mu.Unlock()
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			if f.status == http.StatusBadGateway {
				// E2B's edge: plain text, not the API's JSON.
				http.Error(w, "502 Bad Gateway", f.status)
				return
			}
			apiError(w, f.status, map[int]string{429: "Rate limit exceeded", 500: "internal error", 503: "service unavailable"}[f.status])
			return
		}
	}
	s.mu.Unlock()
	if r.Header.Get("X-API-Key") != APIKey {
		apiError(w, http.StatusUnauthorized, "Invalid API key, it must start with 'e2b_' prefix")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == "GET" && r.URL.Path == "/health":
		w.WriteHeader(http.StatusNoContent)
	case r.Method == "POST" && r.URL.Path == "/sandboxes":
		s.create(w, r)
	case r.Method == "GET" && r.URL.Path == "/v2/sandboxes":
		s.list(w, r)
	case len(parts) == 2 && parts[0] == "sandboxes" && r.Method == "GET":
		s.withBox(w, parts[1], func(b *box) { writeJSON(w, 200, b.detail()) })
	case len(parts) == 2 && parts[0] == "sandboxes" && r.Method == "DELETE":
		s.withBox(w, parts[1], func(b *box) {
			b.killAll()
			delete(s.sandboxes, b.id)
			_ = os.RemoveAll(b.dir)
			w.WriteHeader(http.StatusNoContent)
		})
	case len(parts) == 2 && parts[0] == "templates" && r.Method == "DELETE":
		s.mu.Lock()
		dir, ok := s.templates[parts[1]]
		delete(s.templates, parts[1])
		s.mu.Unlock()
		if !ok {
			apiError(w, 404, fmt.Sprintf("template '%s' not found", parts[1]))
			return
		}
		_ = os.RemoveAll(dir)
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 3 && parts[0] == "sandboxes" && r.Method == "POST":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		s.withBox(w, parts[1], func(b *box) { s.action(w, b, parts[2], body) })
	default:
		apiError(w, http.StatusNotFound, "not found")
	}
}

// withBox runs f with sandbox id under the lock, or answers 404.
func (s *Server) withBox(w http.ResponseWriter, id string, f func(*box)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.sandboxes[id]
	if b == nil {
		apiError(w, http.StatusNotFound, fmt.Sprintf("Sandbox %q doesn't exist or you don't have access to it", id))
		return
	}
	f(b)
}

func (b *box) info(status int) map[string]any {
	return map[string]any{"templateID": b.template, "sandboxID": b.id, "clientID": "6532622b", "envdVersion": "0.6.13", "envdAccessToken": b.token, "domain": nil}
}

func (b *box) detail() map[string]any {
	return map[string]any{"templateID": b.template, "sandboxID": b.id, "clientID": "6532622b", "startedAt": b.started.Format(time.RFC3339),
		"endAt": b.end.Format(time.RFC3339), "cpuCount": 2, "memoryMB": 512, "diskSizeMB": 1024, "metadata": b.meta, "state": b.state, "envdVersion": "0.6.13"}
}

func (b *box) killAll() {
	for _, p := range b.procs {
		if p.cmd.Process != nil {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			_ = p.cmd.Process.Kill()
		}
	}
}

const idChars = "abcdefghijklmnopqrstuvwxyz0123456789"

func newID() string {
	b := make([]byte, 20)
	for i := range b {
		b[i] = idChars[rand.IntN(len(idChars))]
	}
	return string(b)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TemplateID string            `json:"templateID"`
		Timeout    *int              `json:"timeout"`
		Metadata   map[string]string `json:"metadata"`
		EnvVars    map[string]string `json:"envVars"`
		Secure     bool              `json:"secure"`
		Internet   *bool             `json:"allow_internet_access"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.TemplateID == "" {
		apiError(w, http.StatusBadRequest, "request body must be a NewSandbox with templateID")
		return
	}
	timeout := 15
	if req.Timeout != nil {
		timeout = *req.Timeout
	}
	if timeout <= 0 {
		apiError(w, http.StatusBadRequest, "Timeout must be positive")
		return
	}
	if timeout > 24*3600 {
		apiError(w, http.StatusBadRequest, "Timeout cannot be greater than 24 hours")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, ok := s.templates[req.TemplateID]
	if !ok {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("template '%s' not found", req.TemplateID))
		return
	}
	if s.max > 0 && len(s.sandboxes) >= s.max {
		apiError(w, http.StatusTooManyRequests, fmt.Sprintf("you have reached the maximum number of concurrent E2B sandboxes (%d)", s.max))
		return
	}
	b := &box{id: newID(), template: req.TemplateID, meta: req.Metadata, state: "running", internet: req.Internet == nil || *req.Internet,
		started: time.Now(), end: time.Now().Add(time.Duration(timeout) * time.Second), procs: map[uint32]*proc{}}
	if b.meta == nil {
		b.meta = map[string]string{}
	}
	if req.Secure {
		b.token = newID()
	}
	b.dir = filepath.Join(s.root, b.id)
	if snap != "" {
		if err := copyDir(snap, b.dir); err != nil {
			apiError(w, 500, "restore snapshot: "+err.Error())
			return
		}
	} else if err := os.MkdirAll(filepath.Join(b.dir, "home", "user"), 0o755); err != nil {
		apiError(w, 500, err.Error())
		return
	}
	s.sandboxes[b.id] = b
	writeJSON(w, http.StatusCreated, b.info(201))
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	want, err := url.ParseQuery(q.Get("metadata"))
	if err != nil {
		apiError(w, 400, "metadata must be key=value pairs")
		return
	}
	states := strings.Split(q.Get("state"), ",")
	if q.Get("state") == "" {
		states = []string{"running", "paused"}
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	offset, _ := strconv.Atoi(q.Get("nextToken"))
	s.mu.Lock()
	var ids []string
	for id, b := range s.sandboxes {
		ok := false
		for _, st := range states {
			ok = ok || st == b.state
		}
		for k := range want {
			ok = ok && b.meta[k] == want.Get(k)
		}
		if ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var page []map[string]any
	for i := offset; i < len(ids) && i < offset+limit; i++ {
		page = append(page, s.sandboxes[ids[i]].detail())
	}
	s.mu.Unlock()
	if offset+limit < len(ids) {
		w.Header().Set("X-Next-Token", strconv.Itoa(offset+limit))
	}
	if page == nil {
		page = []map[string]any{}
	}
	writeJSON(w, 200, page)
}

// action answers POST /sandboxes/{id}/{action}; s.mu is held.
func (s *Server) action(w http.ResponseWriter, b *box, action string, body map[string]any) {
	timeout := func() (int, bool) {
		v, ok := body["timeout"].(float64)
		if !ok || v <= 0 {
			apiError(w, 400, "timeout must be a positive number of seconds")
			return 0, false
		}
		return int(v), true
	}
	switch action {
	case "timeout":
		if t, ok := timeout(); ok {
			b.end = time.Now().Add(time.Duration(t) * time.Second)
			w.WriteHeader(http.StatusNoContent)
		}
	case "pause":
		if b.state == "paused" {
			apiError(w, http.StatusConflict, fmt.Sprintf("Sandbox %q is already paused", b.id))
			return
		}
		b.killAll()
		b.state = "paused"
		w.WriteHeader(http.StatusNoContent)
	case "connect":
		t, ok := timeout()
		if !ok {
			return
		}
		if e := time.Now().Add(time.Duration(t) * time.Second); e.After(b.end) {
			b.end = e
		}
		if b.state == "paused" {
			b.state = "running"
			writeJSON(w, http.StatusCreated, b.info(201))
			return
		}
		writeJSON(w, http.StatusOK, b.info(200))
	case "snapshots":
		id := newID()[:12] + ":default"
		dir := filepath.Join(s.root, "snapshots", strings.ReplaceAll(id, ":", "_"))
		if err := copyDir(b.dir, dir); err != nil {
			apiError(w, 500, err.Error())
			return
		}
		s.templates[id] = dir
		name, _ := body["name"].(string)
		names := []string{}
		if name != "" {
			names = append(names, name)
		}
		writeJSON(w, http.StatusCreated, map[string]any{"snapshotID": id, "names": names})
	default:
		apiError(w, 404, "not found")
	}
}

// envd serves one sandbox's envd.
func (s *Server) envd(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	b := s.sandboxes[id]
	s.mu.Unlock()
	if b == nil || b.state != "running" {
		writeJSON(w, http.StatusBadGateway, map[string]any{"sandboxId": id, "message": "The sandbox was not found", "code": 502})
		return
	}
	if r.Header.Get("E2b-Sandbox-Port") != "49983" {
		writeJSON(w, http.StatusBadGateway, map[string]any{"sandboxId": id, "message": "The sandbox is running but port is not open", "port": r.Header.Get("E2b-Sandbox-Port"), "code": 502})
		return
	}
	s.mu.Lock()
	if s.envdCalls == nil {
		s.envdCalls = map[string]int{}
	}
	s.envdCalls[r.Method+" "+r.URL.Path]++
	s.mu.Unlock()
	if r.URL.Path == "/health" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if b.token != "" && r.Header.Get("X-Access-Token") != b.token {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "message": "unauthorized access, please provide a valid access token or method signing if supported"})
		return
	}
	switch r.URL.Path {
	case "/files":
		s.files(w, r, b)
	case "/process.Process/Start":
		s.startProcess(w, r, b)
	case "/process.Process/SendInput", "/process.Process/CloseStdin", "/process.Process/SendSignal":
		s.processUnary(w, r, b)
	case "/filesystem.Filesystem/Stat", "/filesystem.Filesystem/ListDir", "/filesystem.Filesystem/Remove", "/filesystem.Filesystem/MakeDir":
		s.filesystem(w, r, b)
	default:
		connectError(w, http.StatusNotFound, "unimplemented", "no such method")
	}
}

func connectError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg})
}

// home is the sandbox user's home inside the sandbox.
const home = "/home/user"

// hostPath maps a sandbox path to the fake's directory: absolute paths
// under the sandbox's root, relative ones (and ~) under its home.
func (b *box) hostPath(p string) string {
	switch {
	case p == "" || p == "~":
		p = home
	case strings.HasPrefix(p, "~/"):
		p = path.Join(home, p[2:])
	case !strings.HasPrefix(p, "/"):
		p = path.Join(home, p)
	}
	return filepath.Join(b.dir, path.Clean(p))
}

// sandboxPath is the inverse of hostPath.
func (b *box) sandboxPath(host string) string {
	rel, _ := filepath.Rel(b.dir, host)
	return "/" + filepath.ToSlash(rel)
}

func (s *Server) files(w http.ResponseWriter, r *http.Request, b *box) {
	p := r.URL.Query().Get("path")
	if p == "" {
		writeJSON(w, 400, map[string]any{"code": 400, "message": "path is required"})
		return
	}
	host := b.hostPath(p)
	switch r.Method {
	case "GET":
		st, err := os.Stat(host)
		if err != nil {
			writeJSON(w, 404, map[string]any{"code": 404, "message": fmt.Sprintf("path '%s' does not exist", p)})
			return
		}
		if st.IsDir() {
			writeJSON(w, 400, map[string]any{"code": 400, "message": fmt.Sprintf("path '%s' is a directory", p)})
			return
		}
		w.Header().Set("Content-Disposition", "inline; filename="+path.Base(p))
		http.ServeFile(w, r, host)
	case "POST":
		if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
			writeJSON(w, 400, map[string]any{"code": 400, "message": "unsupported content type " + ct})
			return
		}
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			writeJSON(w, 500, map[string]any{"code": 500, "message": err.Error()})
			return
		}
		f, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			writeJSON(w, 400, map[string]any{"code": 400, "message": err.Error()})
			return
		}
		_, err = io.Copy(f, r.Body)
		f.Close()
		if err != nil {
			writeJSON(w, 500, map[string]any{"code": 500, "message": err.Error()})
			return
		}
		writeJSON(w, 200, []map[string]any{{"name": path.Base(p), "type": "file", "path": b.sandboxPath(host)}})
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (s *Server) entryInfo(b *box, host string) (map[string]any, error) {
	st, err := os.Lstat(host)
	if err != nil {
		return nil, err
	}
	typ := "FILE_TYPE_FILE"
	e := map[string]any{"name": filepath.Base(host), "path": b.sandboxPath(host), "size": strconv.FormatInt(st.Size(), 10),
		"mode": uint32(st.Mode().Perm()), "permissions": st.Mode().String(), "owner": "user", "group": "user", "modifiedTime": st.ModTime().UTC().Format(time.RFC3339Nano)}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		typ = "FILE_TYPE_SYMLINK"
		if t, err := os.Readlink(host); err == nil {
			e["symlinkTarget"] = t
		}
	case st.IsDir():
		typ = "FILE_TYPE_DIRECTORY"
	}
	e["type"] = typ
	return e, nil
}

func (s *Server) filesystem(w http.ResponseWriter, r *http.Request, b *box) {
	if r.Header.Get("Content-Type") != "application/json" {
		connectError(w, http.StatusUnsupportedMediaType, "unknown", "only the JSON codec is served")
		return
	}
	var req struct {
		Path  string `json:"path"`
		Depth int    `json:"depth"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		connectError(w, 400, "invalid_argument", err.Error())
		return
	}
	host := b.hostPath(req.Path)
	notFound := func() { connectError(w, 404, "not_found", fmt.Sprintf("path not found: %s", req.Path)) }
	switch path.Base(r.URL.Path) {
	case "Stat":
		e, err := s.entryInfo(b, host)
		if err != nil {
			notFound()
			return
		}
		writeJSON(w, 200, map[string]any{"entry": e})
	case "ListDir":
		st, err := os.Stat(host)
		if err != nil {
			notFound()
			return
		}
		if !st.IsDir() {
			connectError(w, 400, "invalid_argument", "path is not a directory: "+req.Path)
			return
		}
		depth := max(req.Depth, 1)
		var entries []map[string]any
		_ = filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == host {
				return nil
			}
			rel, _ := filepath.Rel(host, p)
			if strings.Count(rel, string(filepath.Separator))+1 > depth {
				return fs.SkipDir
			}
			if e, err := s.entryInfo(b, p); err == nil {
				entries = append(entries, e)
			}
			return nil
		})
		if entries == nil {
			entries = []map[string]any{}
		}
		writeJSON(w, 200, map[string]any{"entries": entries})
	case "Remove":
		_ = os.RemoveAll(host)
		writeJSON(w, 200, map[string]any{})
	case "MakeDir":
		if _, err := os.Stat(host); err == nil {
			connectError(w, 409, "already_exists", "directory already exists: "+req.Path)
			return
		}
		if err := os.MkdirAll(host, 0o755); err != nil {
			connectError(w, 400, "invalid_argument", err.Error())
			return
		}
		e, _ := s.entryInfo(b, host)
		writeJSON(w, 200, map[string]any{"entry": e})
	}
}

func (s *Server) processUnary(w http.ResponseWriter, r *http.Request, b *box) {
	var req struct {
		Process struct {
			Pid uint32 `json:"pid"`
		} `json:"process"`
		Input struct {
			Stdin string `json:"stdin"`
		} `json:"input"`
		Signal string `json:"signal"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		connectError(w, 400, "invalid_argument", err.Error())
		return
	}
	s.mu.Lock()
	p := b.procs[req.Process.Pid]
	s.mu.Unlock()
	if p == nil {
		connectError(w, 404, "not_found", fmt.Sprintf("process with pid %d not found", req.Process.Pid))
		return
	}
	switch path.Base(r.URL.Path) {
	case "SendInput":
		data, err := base64.StdEncoding.DecodeString(req.Input.Stdin)
		if err != nil || p.stdin == nil {
			connectError(w, 400, "failed_precondition", "stdin is not open")
			return
		}
		if _, err := p.stdin.Write(data); err != nil {
			connectError(w, 500, "internal", err.Error())
			return
		}
	case "CloseStdin":
		if p.stdin != nil {
			_ = p.stdin.Close()
		}
	case "SendSignal":
		sig := map[string]syscall.Signal{"SIGNAL_SIGKILL": syscall.SIGKILL, "SIGNAL_SIGTERM": syscall.SIGTERM}[req.Signal]
		if sig == 0 {
			connectError(w, 501, "unimplemented", "invalid signal: "+req.Signal)
			return
		}
		_ = p.cmd.Process.Signal(sig)
	}
	writeJSON(w, 200, map[string]any{})
}

func envelope(flags byte, v any) []byte {
	payload, _ := json.Marshal(v)
	out := make([]byte, 5+len(payload))
	out[0] = flags
	binary.BigEndian.PutUint32(out[1:5], uint32(len(payload)))
	copy(out[5:], payload)
	return out
}

func (s *Server) startProcess(w http.ResponseWriter, r *http.Request, b *box) {
	if r.Header.Get("Content-Type") != "application/connect+json" {
		connectError(w, http.StatusUnsupportedMediaType, "unknown", "a streaming call needs application/connect+json")
		return
	}
	br := bufio.NewReader(r.Body)
	var hdr [5]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		connectError(w, 400, "invalid_argument", "no enveloped request")
		return
	}
	payload := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(br, payload); err != nil {
		connectError(w, 400, "invalid_argument", "short request")
		return
	}
	var req struct {
		Process struct {
			Cmd  string            `json:"cmd"`
			Args []string          `json:"args"`
			Envs map[string]string `json:"envs"`
			Cwd  *string           `json:"cwd"`
		} `json:"process"`
		Stdin *bool `json:"stdin"`
	}
	if err := json.Unmarshal(payload, &req); err != nil {
		connectError(w, 400, "invalid_argument", err.Error())
		return
	}
	cwd := home
	if req.Process.Cwd != nil && *req.Process.Cwd != "" {
		cwd = *req.Process.Cwd
	}
	s.mu.Lock()
	s.starts = append(s.starts, StartRequest{Sandbox: b.id, Cmd: req.Process.Cmd, Args: req.Process.Args, Envs: req.Process.Envs, Cwd: cwd})
	s.mu.Unlock()
	dir := b.hostPath(cwd)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		connectError(w, 400, "invalid_argument", fmt.Sprintf("cwd '%s' does not exist", cwd))
		return
	}
	ctx := r.Context()
	if ms, err := strconv.Atoi(r.Header.Get("Connect-Timeout-Ms")); err == nil && ms > 0 {
		var cancel func()
		ctx, cancel = contextWithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	cmd := exec.Command(req.Process.Cmd, req.Process.Args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + b.hostPath(home), "USER=user", "LOGNAME=user", "LANG=C.UTF-8"}
	for k, v := range req.Process.Envs {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// envd runs each process in its own process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	var stdin io.WriteCloser
	if req.Stdin == nil || *req.Stdin {
		stdin, _ = cmd.StdinPipe()
	}
	if err := cmd.Start(); err != nil {
		connectError(w, 400, "invalid_argument", "error starting process: "+err.Error())
		return
	}
	pid := uint32(cmd.Process.Pid)
	s.mu.Lock()
	b.procs[pid] = &proc{cmd: cmd, stdin: stdin}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(b.procs, pid)
		s.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "application/connect+json")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	var wmu sync.Mutex
	send := func(flags byte, v any) {
		wmu.Lock()
		defer wmu.Unlock()
		_, _ = w.Write(envelope(flags, v))
		if fl != nil {
			fl.Flush()
		}
	}
	send(0, map[string]any{"event": map[string]any{"start": map[string]any{"pid": pid}}})
	var wg sync.WaitGroup
	for name, rd := range map[string]io.Reader{"stdout": stdout, "stderr": stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := rd.Read(buf)
				if n > 0 {
					send(0, map[string]any{"event": map[string]any{"data": map[string]any{name: base64.StdEncoding.EncodeToString(buf[:n])}}})
				}
				if err != nil {
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
		case <-done:
		}
	}()
	wg.Wait()
	err := cmd.Wait()
	close(done)
	if ctx.Err() != nil && r.Context().Err() == nil {
		send(2, map[string]any{"error": map[string]any{"code": "deadline_exceeded", "message": "context deadline exceeded"}})
		return
	}
	end := map[string]any{"status": cmd.ProcessState.String()}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		end["exitCode"] = code
	}
	if cmd.ProcessState.Exited() {
		end["exited"] = true
	}
	if err != nil {
		end["error"] = err.Error()
	}
	send(0, map[string]any{"event": map[string]any{"end": end}})
	send(2, map[string]any{})
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		}
		return nil
	})
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// EnvdCalls counts envd requests by "METHOD path" (all sandboxes).
func (s *Server) EnvdCalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.envdCalls {
		out[k] = v
	}
	return out
}

// Templates returns the ids of the templates and snapshots that exist.
func (s *Server) Templates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.templates {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
