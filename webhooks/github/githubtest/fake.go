// Package githubtest is a fake GitHub for tests, faked only at the
// network edge: an httptest REST server speaking the real JSON shapes
// (reached by go-github through its base URL) that records what it was
// asked, and a real git-over-HTTP server (git http-backend) that checks
// tokens on every request.
package githubtest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Call is one request the fake received.
type Call struct {
	Method, Path string
	Body         []byte
	Token        string // the bearer token (or JWT) it carried
	At           time.Time
}

// Comment is an issue comment as the fake holds it.
type Comment struct {
	ID     int64
	Repo   string // owner/name
	Issue  int
	Body   string
	Author string // "" is hero[bot]
	// Association is the author's author_association ("" is NONE).
	Association string
	Edits       []time.Time // when it was edited
	Bodies      []string    // every version, first to last
}

// Reaction is a reaction created on a comment (CommentID), a review
// comment (ReviewCommentID) or an issue.
type Reaction struct {
	Repo            string
	CommentID       int64
	ReviewCommentID int64
	Issue           int
	Content         string
}

// PullRequest is a pull request opened through the fake (or added with
// AddPull).
type PullRequest struct {
	Number                  int
	Repo                    string
	Title, Head, Base, Body string
	Draft                   bool
	HTMLURL                 string
	Author                  string // "" is hero[bot]
	Labels                  []string
}

// Issue is an issue the fake serves (added with AddIssue).
type Issue struct {
	Number      int
	Repo        string
	Title, Body string
	Author      string
	State       string // "" is open
	Labels      []string
}

// ReviewComment is a comment on a line of a pull request's diff.
type ReviewComment struct {
	ID          int64
	Repo        string
	Pull        int
	Author      string
	Association string
	Body, Path  string
	Line        int
}

// RepoHook is a repository webhook; its deliveries are in the log given
// to AddRepoHook.
type RepoHook struct {
	ID   int64
	Repo string
	URL  string
}

// HookDelivery is a webhook delivery in the App's delivery log.
type HookDelivery struct {
	ID         int64
	GUID       string
	StatusCode int
	Event      string
	At         time.Time
}

// Server is the fake REST API.
type Server struct {
	*httptest.Server
	t *testing.T

	mu          sync.Mutex
	calls       []Call
	nextID      int64
	comments    map[int64]*Comment
	order       []int64
	reactions   []Reaction
	pulls       []PullRequest
	tokens      map[string]bool
	deliveries  []HookDelivery
	redelivered []int64
	issues      map[string]*Issue // "owner/repo#n"
	projects    []ProjectV2
	items       []*ProjectItem
	review      []ReviewComment
	hooks       []RepoHook
	hookLog     map[int64][]HookDelivery
	perms       map[string]string // "owner/repo@login" (lower case) → role name
	// App side.
	appID        int64
	appKey       *rsa.PublicKey
	installation int64
	tokenTTL     time.Duration
	minted       []string
	// OAuth side.
	refresh      map[string]bool // valid refresh tokens
	oauthTTL     time.Duration
	refreshCalls int
	// inject answers the next requests matching a path prefix with a
	// canned response (rate limits).
	inject []injected
}

type injected struct {
	prefix string
	status int
	header http.Header
}

// NewServer starts a fake API accepting the given bearer tokens.
func NewServer(t *testing.T, tokens ...string) *Server {
	s := &Server{t: t, nextID: 1000, comments: map[int64]*Comment{}, issues: map[string]*Issue{}, hookLog: map[int64][]HookDelivery{}, perms: map[string]string{}, tokens: map[string]bool{}, refresh: map[string]bool{}, tokenTTL: time.Hour, oauthTTL: 8 * time.Hour}
	for _, tok := range tokens {
		s.tokens[tok] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues/comments/{id}/reactions", s.createReaction)
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues/{number}/reactions", s.createReaction)
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues/{number}/comments", s.createComment)
	mux.HandleFunc("PATCH /repos/{owner}/{repo}/issues/comments/{id}", s.editComment)
	mux.HandleFunc("POST /repos/{owner}/{repo}/pulls", s.createPull)
	mux.HandleFunc("GET /repos/{owner}/{repo}", s.getRepo)
	mux.HandleFunc("GET /repos/{owner}/{repo}/installation", s.getInstallation)
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", s.mintToken)
	mux.HandleFunc("GET /app/hook/deliveries", s.listDeliveries)
	mux.HandleFunc("POST /app/hook/deliveries/{id}/attempts", s.redeliver)
	mux.HandleFunc("POST /login/oauth/access_token", s.oauthToken)
	mux.HandleFunc("GET /repos/{owner}/{repo}/issues/{number}", s.getIssue)
	mux.HandleFunc("GET /repos/{owner}/{repo}/issues/{number}/comments", s.listComments)
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}", s.getPull)
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/comments", s.listReviewComments)
	mux.HandleFunc("POST /repos/{owner}/{repo}/pulls/comments/{id}/reactions", s.createReviewReaction)
	mux.HandleFunc("GET /repos/{owner}/{repo}/collaborators/{user}/permission", s.getPermission)
	mux.HandleFunc("GET /user", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, user("hero-token-user")) })
	mux.HandleFunc("GET /repos/{owner}/{repo}/hooks", s.listHooks)
	mux.HandleFunc("GET /repos/{owner}/{repo}/hooks/{hook}/deliveries", s.listRepoDeliveries)
	mux.HandleFunc("POST /repos/{owner}/{repo}/hooks/{hook}/deliveries/{id}/attempts", s.redeliverRepo)
	s.mountIssues(mux)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Body: body, Token: tok, At: time.Now()})
		for i, in := range s.inject {
			if strings.HasPrefix(r.URL.Path, in.prefix) {
				s.inject = append(s.inject[:i], s.inject[i+1:]...)
				s.mu.Unlock()
				for k, v := range in.header {
					w.Header()[k] = v
				}
				writeJSON(w, in.status, map[string]any{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})
				return
			}
		}
		s.mu.Unlock()
		if r.URL.Path != "/login/oauth/access_token" && !s.authorized(r.URL.Path, tok) {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// APIURL is the base URL to give the client (GITHUB_API_URL).
func (s *Server) APIURL() string { return s.URL + "/" }

// AcceptToken adds a valid bearer token.
func (s *Server) AcceptToken(tok string) {
	s.mu.Lock()
	s.tokens[tok] = true
	s.mu.Unlock()
}

// ValidToken reports whether tok is accepted (git servers share it).
func (s *Server) ValidToken(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[tok]
}

// EnableApp makes the fake a GitHub App host: JWTs signed with the key of
// pub for appID are accepted on /app endpoints, the repositories belong to
// installation, and minted tokens live ttl.
func (s *Server) EnableApp(appID int64, pub *rsa.PublicKey, installation int64, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appID, s.appKey, s.installation, s.tokenTTL = appID, pub, installation, ttl
}

// EnableOAuth accepts refresh as a refresh token; refreshed access tokens
// live ttl.
func (s *Server) EnableOAuth(refresh string, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh[refresh] = true
	s.oauthTTL = ttl
}

// RateLimitNext answers the next request whose path starts with prefix
// with status and the given header pairs ("Retry-After", "1").
func (s *Server) RateLimitNext(prefix string, status int, headerPairs ...string) {
	h := http.Header{}
	for i := 0; i+1 < len(headerPairs); i += 2 {
		h.Set(headerPairs[i], headerPairs[i+1])
	}
	s.mu.Lock()
	s.inject = append(s.inject, injected{prefix: prefix, status: status, header: h})
	s.mu.Unlock()
}

// AddDelivery adds an entry to the App's delivery log.
func (s *Server) AddDelivery(d HookDelivery) {
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
}

func (s *Server) authorized(path, tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.HasPrefix(path, "/app/") || strings.HasSuffix(path, "/installation") {
		return s.appKey != nil && s.verifyJWT(tok)
	}
	return s.tokens[tok]
}

// verifyJWT checks an RS256 App JWT: signature, issuer, expiry.
func (s *Server) verifyJWT(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(s.appKey, crypto.SHA256, sum[:], sig) != nil {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims struct {
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
		Iat int64  `json:"iat"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return false
	}
	now := time.Now().Unix()
	return claims.Iss == strconv.FormatInt(s.appID, 10) && claims.Exp > now && claims.Iat <= now && claims.Exp-claims.Iat <= 600
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func user(login string) map[string]any {
	return map[string]any{"login": login, "id": 1, "type": "Bot", "html_url": "https://github.com/" + login}
}

func (s *Server) id() int64 { s.nextID++; return s.nextID }

func (s *Server) createReaction(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Content string `json:"content"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.Content == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return
	}
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	rx := Reaction{Repo: repo, Content: in.Content}
	rx.CommentID, _ = strconv.ParseInt(r.PathValue("id"), 10, 64)
	rx.Issue, _ = strconv.Atoi(r.PathValue("number"))
	s.mu.Lock()
	s.reactions = append(s.reactions, rx)
	id := s.id()
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "node_id": "REA_" + fmt.Sprint(id), "user": user("hero[bot]"), "content": in.Content, "created_at": time.Now().UTC().Format(time.RFC3339)})
}

func (s *Server) commentJSON(c *Comment, owner, repo string) map[string]any {
	author, assoc := c.Author, c.Association
	if author == "" {
		author = "hero[bot]"
	}
	if assoc == "" {
		assoc = "NONE"
	}
	return map[string]any{
		"id": c.ID, "node_id": fmt.Sprintf("IC_%d", c.ID), "body": c.Body, "user": person(author),
		"html_url":           fmt.Sprintf("https://github.com/%s/%s/issues/%d#issuecomment-%d", owner, repo, c.Issue, c.ID),
		"issue_url":          fmt.Sprintf("%s/repos/%s/%s/issues/%d", s.URL, owner, repo, c.Issue),
		"author_association": assoc, "created_at": time.Now().UTC().Format(time.RFC3339), "updated_at": time.Now().UTC().Format(time.RFC3339),
	}
}

// person is a user object: a Bot for "[bot]" logins, else a User.
func person(login string) map[string]any {
	u := user(login)
	if !strings.HasSuffix(login, "[bot]") {
		u["type"] = "User"
	}
	return u
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Body string `json:"body"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.Body == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"resource": "IssueComment", "code": "missing_field", "field": "body"}}})
		return
	}
	n, _ := strconv.Atoi(r.PathValue("number"))
	s.mu.Lock()
	c := &Comment{ID: s.id(), Repo: r.PathValue("owner") + "/" + r.PathValue("repo"), Issue: n, Body: in.Body, Bodies: []string{in.Body}}
	s.comments[c.ID] = c
	s.order = append(s.order, c.ID)
	out := s.commentJSON(c, r.PathValue("owner"), r.PathValue("repo"))
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) editComment(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Body string `json:"body"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.Body == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	c := s.comments[id]
	if c == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest/issues/comments#update-an-issue-comment"})
		return
	}
	c.Body = in.Body
	c.Bodies = append(c.Bodies, in.Body)
	c.Edits = append(c.Edits, time.Now())
	out := s.commentJSON(c, r.PathValue("owner"), r.PathValue("repo"))
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title string `json:"title"`
		Head  string `json:"head"`
		Base  string `json:"base"`
		Body  string `json:"body"`
		Draft bool   `json:"draft"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.Title == "" || in.Head == "" || in.Base == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return
	}
	owner, repo := r.PathValue("owner"), r.PathValue("repo")
	s.mu.Lock()
	n := len(s.pulls) + 2
	for _, p := range s.pulls {
		n = max(n, p.Number+1)
	}
	pr := PullRequest{Number: n, Repo: owner + "/" + repo, Title: in.Title, Head: in.Head, Base: in.Base, Body: in.Body, Draft: in.Draft,
		HTMLURL: fmt.Sprintf("https://github.com/%s/%s/pull/%d", owner, repo, n)}
	s.pulls = append(s.pulls, pr)
	id := s.id()
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": id, "number": n, "state": "open", "title": in.Title, "body": in.Body, "draft": in.Draft,
		"html_url": pr.HTMLURL, "url": fmt.Sprintf("%s/repos/%s/%s/pulls/%d", s.URL, owner, repo, n),
		"head": map[string]any{"ref": in.Head, "label": owner + ":" + in.Head}, "base": map[string]any{"ref": in.Base, "label": owner + ":" + in.Base},
		"user": user("hero[bot]"),
	})
}

// SetPermission gives login a role in repo ("owner/name"): admin,
// maintain, write, triage, read or none. People the test did not
// mention have write access: the fake's repositories are worked on by
// their collaborators.
func (s *Server) SetPermission(repo, login, role string) {
	s.mu.Lock()
	s.perms[strings.ToLower(repo+"@"+login)] = role
	s.mu.Unlock()
}

// getPermission answers the collaborator permission API as GitHub does:
// the legacy permission (maintain reads as write, triage as read) and
// the role's own name.
func (s *Server) getPermission(w http.ResponseWriter, r *http.Request) {
	login := r.PathValue("user")
	s.mu.Lock()
	role, ok := s.perms[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo")+"@"+login)]
	s.mu.Unlock()
	if !ok {
		role = "write"
	}
	legacy := map[string]string{"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}[role]
	if legacy == "" {
		legacy = "none"
	}
	writeJSON(w, http.StatusOK, map[string]any{"permission": legacy, "role_name": role, "user": user(login)})
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) {
	owner, repo := r.PathValue("owner"), r.PathValue("repo")
	writeJSON(w, http.StatusOK, map[string]any{"id": 1, "name": repo, "full_name": owner + "/" + repo, "default_branch": "main", "owner": user(owner), "private": false})
}

func (s *Server) getInstallation(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	id, app := s.installation, s.appID
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "app_id": app, "target_type": "Organization", "account": user(r.PathValue("owner")), "permissions": map[string]string{"issues": "write", "contents": "write", "pull_requests": "write"}})
}

func (s *Server) mintToken(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	if id != s.installation {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
		return
	}
	tok := fmt.Sprintf("ghs_fake%d_%d", id, s.id())
	s.tokens[tok] = true
	s.minted = append(s.minted, tok)
	exp := time.Now().Add(s.tokenTTL).UTC()
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "expires_at": exp.Format(time.RFC3339), "permissions": map[string]string{"issues": "write"}, "repository_selection": "all"})
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var out []map[string]any
	for i := len(s.deliveries) - 1; i >= 0; i-- { // newest first, like GitHub
		d := s.deliveries[i]
		status := "OK"
		if d.StatusCode >= 300 || d.StatusCode == 0 {
			status = "failed to connect to host"
		}
		out = append(out, map[string]any{"id": d.ID, "guid": d.GUID, "delivered_at": d.At.UTC().Format(time.RFC3339), "redelivery": false,
			"duration": 0.2, "status": status, "status_code": d.StatusCode, "event": d.Event, "action": nil, "installation_id": s.installation, "repository_id": 1})
	}
	s.mu.Unlock()
	if out == nil {
		out = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	s.redelivered = append(s.redelivered, id)
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad_request"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshCalls++
	rt := r.PostForm.Get("refresh_token")
	if r.PostForm.Get("grant_type") != "refresh_token" || !s.refresh[rt] || r.PostForm.Get("client_id") == "" || r.PostForm.Get("client_secret") == "" {
		// GitHub answers 200 with an error object.
		writeJSON(w, http.StatusOK, map[string]any{"error": "bad_refresh_token", "error_description": "The refresh token passed is incorrect or expired."})
		return
	}
	delete(s.refresh, rt) // rotated: the old one stops working
	n := s.id()
	access, next := fmt.Sprintf("ghu_fresh%d", n), fmt.Sprintf("ghr_next%d", n)
	s.refresh[next] = true
	s.tokens[access] = true
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "expires_in": int(s.oauthTTL.Seconds()), "refresh_token": next,
		"refresh_token_expires_in": 15811200, "scope": "", "token_type": "bearer"})
}

// Calls returns every request received.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Comments returns the comments, oldest first.
func (s *Server) Comments() []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Comment, 0, len(s.order))
	for _, id := range s.order {
		c := *s.comments[id]
		c.Edits = append([]time.Time(nil), c.Edits...)
		c.Bodies = append([]string(nil), c.Bodies...)
		out = append(out, c)
	}
	return out
}

// Reactions returns the reactions created.
func (s *Server) Reactions() []Reaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Reaction(nil), s.reactions...)
}

// Pulls returns the pull requests opened.
func (s *Server) Pulls() []PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PullRequest(nil), s.pulls...)
}

// Minted returns the installation tokens minted.
func (s *Server) Minted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.minted...)
}

// Redelivered returns the delivery ids whose redelivery was requested.
func (s *Server) Redelivered() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.redelivered...)
}

// RefreshCalls counts requests to the OAuth token endpoint.
func (s *Server) RefreshCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshCalls
}

// AddIssue makes the fake serve an issue.
func (s *Server) AddIssue(is Issue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issues[fmt.Sprintf("%s#%d", is.Repo, is.Number)] = &is
}

// AddPull makes the fake serve a pull request (as if opened on GitHub).
func (s *Server) AddPull(pr PullRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pr.HTMLURL == "" {
		pr.HTMLURL = fmt.Sprintf("https://github.com/%s/pull/%d", pr.Repo, pr.Number)
	}
	s.pulls = append(s.pulls, pr)
}

// AddComment adds an issue (or pull request) comment written by author
// and returns its id.
func (s *Server) AddComment(repo string, issue int, author, association, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &Comment{ID: s.id(), Repo: repo, Issue: issue, Body: body, Author: author, Association: association, Bodies: []string{body}}
	s.comments[c.ID] = c
	s.order = append(s.order, c.ID)
	return c.ID
}

// AddReviewComment adds a comment on a line of a pull request's diff and
// returns its id.
func (s *Server) AddReviewComment(rc ReviewComment) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	rc.ID = s.id()
	s.review = append(s.review, rc)
	return rc.ID
}

// AddRepoHook adds a repository webhook with its delivery log.
func (s *Server) AddRepoHook(h RepoHook, log ...HookDelivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, h)
	s.hookLog[h.ID] = append(s.hookLog[h.ID], log...)
}

// AddRepoHookDelivery appends an attempt to a repository hook's log.
func (s *Server) AddRepoHookDelivery(hookID int64, d HookDelivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hookLog[hookID] = append(s.hookLog[hookID], d)
}

// FailNext answers the next request whose path starts with prefix with
// status (and a GitHub error body).
func (s *Server) FailNext(prefix string, status int) { s.RateLimitNext(prefix, status) }

func labelsJSON(names []string) []map[string]any {
	out := []map[string]any{}
	for i, n := range names {
		out = append(out, map[string]any{"id": i + 1, "name": n, "color": "d73a4a"})
	}
	return out
}

func (s *Server) pull(repo string, n int) *PullRequest {
	for i := range s.pulls {
		if s.pulls[i].Repo == repo && s.pulls[i].Number == n {
			return &s.pulls[i]
		}
	}
	return nil
}

// counts returns the issue comments and review comments of repo#n.
func (s *Server) counts(repo string, n int) (int, int) {
	var ic, rc int
	for _, id := range s.order {
		if c := s.comments[id]; c.Repo == repo && c.Issue == n {
			ic++
		}
	}
	for _, c := range s.review {
		if c.Repo == repo && c.Pull == n {
			rc++
		}
	}
	return ic, rc
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
}

func (s *Server) getIssue(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	n, _ := strconv.Atoi(r.PathValue("number"))
	s.mu.Lock()
	defer s.mu.Unlock()
	ic, _ := s.counts(repo, n)
	if pr := s.pull(repo, n); pr != nil {
		writeJSON(w, http.StatusOK, map[string]any{"id": n, "number": n, "title": pr.Title, "body": pr.Body, "state": "open", "user": person(orBot(pr.Author)),
			"labels": labelsJSON(pr.Labels), "comments": ic, "html_url": pr.HTMLURL,
			"pull_request": map[string]any{"url": fmt.Sprintf("%s/repos/%s/pulls/%d", s.URL, repo, n), "html_url": pr.HTMLURL}})
		return
	}
	is := s.issues[fmt.Sprintf("%s#%d", repo, n)]
	if is == nil {
		notFound(w)
		return
	}
	state := is.State
	if state == "" {
		state = "open"
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": n, "node_id": IssueNodeID(repo, n), "number": n, "title": is.Title, "body": is.Body, "state": state, "user": person(is.Author),
		"labels": labelsJSON(is.Labels), "comments": ic, "html_url": fmt.Sprintf("https://github.com/%s/issues/%d", repo, n)})
}

func orBot(login string) string {
	if login == "" {
		return "hero[bot]"
	}
	return login
}

// page applies GitHub's page/per_page to n items, setting the Link header,
// and returns the slice bounds.
func page(w http.ResponseWriter, r *http.Request, n int) (int, int) {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 || per > 100 {
		per = 30
	}
	p, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if p <= 0 {
		p = 1
	}
	last := max((n+per-1)/per, 1)
	if last > 1 {
		u := *r.URL
		q := u.Query()
		q.Set("page", strconv.Itoa(last))
		u.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s>; rel="last"`, r.Host, u.RequestURI()))
	}
	lo, hi := min((p-1)*per, n), min(p*per, n)
	return lo, hi
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request) {
	owner, name := r.PathValue("owner"), r.PathValue("repo")
	n, _ := strconv.Atoi(r.PathValue("number"))
	s.mu.Lock()
	var all []map[string]any
	for _, id := range s.order {
		if c := s.comments[id]; c.Repo == owner+"/"+name && c.Issue == n {
			all = append(all, s.commentJSON(c, owner, name))
		}
	}
	s.mu.Unlock()
	lo, hi := page(w, r, len(all))
	writeJSON(w, http.StatusOK, append([]map[string]any{}, all[lo:hi]...))
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	n, _ := strconv.Atoi(r.PathValue("number"))
	s.mu.Lock()
	defer s.mu.Unlock()
	pr := s.pull(repo, n)
	if pr == nil {
		notFound(w)
		return
	}
	ic, rc := s.counts(repo, n)
	repoJSON := map[string]any{"full_name": repo, "name": r.PathValue("repo"), "owner": person(r.PathValue("owner"))}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": 5000 + n, "number": n, "state": "open", "title": pr.Title, "body": pr.Body, "draft": pr.Draft, "merged": false,
		"html_url": pr.HTMLURL, "user": person(orBot(pr.Author)), "labels": labelsJSON(pr.Labels), "comments": ic, "review_comments": rc,
		"head": map[string]any{"ref": pr.Head, "label": r.PathValue("owner") + ":" + pr.Head, "repo": repoJSON},
		"base": map[string]any{"ref": pr.Base, "label": r.PathValue("owner") + ":" + pr.Base, "repo": repoJSON},
	})
}

func (s *Server) listReviewComments(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	n, _ := strconv.Atoi(r.PathValue("number"))
	s.mu.Lock()
	var all []map[string]any
	for _, c := range s.review {
		if c.Repo == repo && c.Pull == n {
			all = append(all, map[string]any{"id": c.ID, "body": c.Body, "path": c.Path, "line": c.Line, "user": person(c.Author),
				"author_association": c.Association, "created_at": time.Now().UTC().Format(time.RFC3339)})
		}
	}
	s.mu.Unlock()
	lo, hi := page(w, r, len(all))
	writeJSON(w, http.StatusOK, append([]map[string]any{}, all[lo:hi]...))
}

func (s *Server) createReviewReaction(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Content string `json:"content"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.Content == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	s.reactions = append(s.reactions, Reaction{Repo: r.PathValue("owner") + "/" + r.PathValue("repo"), ReviewCommentID: id, Content: in.Content})
	rid := s.id()
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"id": rid, "user": user("hero[bot]"), "content": in.Content})
}

func (s *Server) listHooks(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	s.mu.Lock()
	out := []map[string]any{}
	for _, h := range s.hooks {
		if h.Repo == repo {
			out = append(out, map[string]any{"id": h.ID, "type": "Repository", "name": "web", "active": true, "events": []string{"issue_comment", "issues"},
				"config": map[string]any{"url": h.URL, "content_type": "json", "insecure_ssl": "0"}})
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) hookFor(r *http.Request) (int64, bool) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	id, _ := strconv.ParseInt(r.PathValue("hook"), 10, 64)
	for _, h := range s.hooks {
		if h.ID == id && h.Repo == repo {
			return id, true
		}
	}
	return 0, false
}

func (s *Server) listRepoDeliveries(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	id, ok := s.hookFor(r)
	log := append([]HookDelivery(nil), s.hookLog[id]...)
	s.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	out := []map[string]any{}
	for i := len(log) - 1; i >= 0; i-- {
		d := log[i]
		status := "OK"
		if d.StatusCode >= 300 || d.StatusCode == 0 {
			status = "failed to connect to host"
		}
		out = append(out, map[string]any{"id": d.ID, "guid": d.GUID, "delivered_at": d.At.UTC().Format(time.RFC3339), "redelivery": false,
			"duration": 0.2, "status": status, "status_code": d.StatusCode, "event": d.Event, "action": nil, "repository_id": 1})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) redeliverRepo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, ok := s.hookFor(r)
	if ok {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		s.redelivered = append(s.redelivered, id)
	}
	s.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{})
}
