package githubtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Issues written through the API, for the board's GitHub projection:
// create an issue (with labels), add and remove labels, close and reopen.
// Shapes follow GitHub's REST documentation ("Create an issue", "Add
// labels to an issue", "Remove a label from an issue", "Update an issue").

func (s *Server) mountIssues(mux *http.ServeMux) {
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues", s.createIssue)
	mux.HandleFunc("PATCH /repos/{owner}/{repo}/issues/{number}", s.updateIssue)
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues/{number}/labels", s.addLabels)
	mux.HandleFunc("DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}", s.removeLabel)
	mux.HandleFunc("POST /graphql", s.graphql)
}

// IssueNodeID is the GraphQL node id the fake gives an issue.
func IssueNodeID(repo string, n int) string { return fmt.Sprintf("I_%s_%d", repo, n) }

// Issue returns a copy of an issue the fake holds, or false.
func (s *Server) Issue(repo string, n int) (Issue, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issues[fmt.Sprintf("%s#%d", repo, n)]
	if is == nil {
		return Issue{}, false
	}
	out := *is
	out.Labels = slices.Clone(is.Labels)
	return out, true
}

// SetIssue changes an issue as a person on GitHub would (labels, state);
// the test then sends the matching webhook delivery.
func (s *Server) SetIssue(repo string, n int, change func(*Issue)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if is := s.issues[fmt.Sprintf("%s#%d", repo, n)]; is != nil {
		change(is)
	}
}

func (s *Server) issueJSON(is *Issue) map[string]any {
	state := is.State
	if state == "" {
		state = "open"
	}
	ic, _ := s.counts(is.Repo, is.Number)
	return map[string]any{"id": is.Number, "node_id": IssueNodeID(is.Repo, is.Number), "number": is.Number, "title": is.Title, "body": is.Body, "state": state,
		"user": person(orBot(is.Author)), "labels": labelsJSON(is.Labels), "comments": ic,
		"html_url": fmt.Sprintf("https://github.com/%s/issues/%d", is.Repo, is.Number)}
}

func (s *Server) issueAt(w http.ResponseWriter, r *http.Request) *Issue {
	n, _ := strconv.Atoi(r.PathValue("number"))
	is := s.issues[fmt.Sprintf("%s/%s#%d", r.PathValue("owner"), r.PathValue("repo"), n)]
	if is == nil {
		notFound(w)
	}
	return is
}

func (s *Server) createIssue(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title  string   `json:"title"`
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || strings.TrimSpace(in.Title) == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"resource": "Issue", "code": "missing_field", "field": "title"}}})
		return
	}
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 1
	for _, is := range s.issues {
		if is.Repo == repo && is.Number >= n {
			n = is.Number + 1
		}
	}
	for _, pr := range s.pulls {
		if pr.Repo == repo && pr.Number >= n {
			n = pr.Number + 1
		}
	}
	is := &Issue{Number: n, Repo: repo, Title: in.Title, Body: in.Body, Labels: in.Labels}
	s.issues[fmt.Sprintf("%s#%d", repo, n)] = is
	writeJSON(w, http.StatusCreated, s.issueJSON(is))
}

func (s *Server) updateIssue(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title  *string   `json:"title"`
		Body   *string   `json:"body"`
		State  *string   `json:"state"`
		Labels *[]string `json:"labels"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || (in.State != nil && *in.State != "open" && *in.State != "closed") {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issueAt(w, r)
	if is == nil {
		return
	}
	if in.Title != nil {
		is.Title = *in.Title
	}
	if in.Body != nil {
		is.Body = *in.Body
	}
	if in.State != nil {
		is.State = *in.State
	}
	if in.Labels != nil {
		is.Labels = slices.Clone(*in.Labels)
	}
	writeJSON(w, http.StatusOK, s.issueJSON(is))
}

func (s *Server) addLabels(w http.ResponseWriter, r *http.Request) {
	// GitHub takes {"labels": [...]} or a bare array (go-github sends that).
	var in struct {
		Labels []string `json:"labels"`
	}
	raw, _ := io.ReadAll(r.Body)
	if json.Unmarshal(raw, &in.Labels) != nil {
		json.Unmarshal(raw, &in)
	}
	if len(in.Labels) == 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issueAt(w, r)
	if is == nil {
		return
	}
	for _, l := range in.Labels {
		if !slices.Contains(is.Labels, l) {
			is.Labels = append(is.Labels, l)
		}
	}
	writeJSON(w, http.StatusOK, labelsJSON(is.Labels))
}

func (s *Server) removeLabel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issueAt(w, r)
	if is == nil {
		return
	}
	i := slices.Index(is.Labels, r.PathValue("name"))
	if i < 0 {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Label does not exist", "documentation_url": "https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue"})
		return
	}
	is.Labels = slices.Delete(is.Labels, i, i+1)
	writeJSON(w, http.StatusOK, labelsJSON(is.Labels))
}
