package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// A GitHub Projects (v2) stand-in at POST /graphql, answering the
// operations hero uses with the shapes of GitHub's GraphQL API: read an
// organisation's or user's project with its Status field
// (projectV2(number) { id field(name: "Status") }), addProjectV2ItemById,
// updateProjectV2ItemFieldValue, and reading an item back (node(id)).

// ProjectV2 is a GitHub Project the fake serves.
type ProjectV2 struct {
	NodeID  string
	Owner   string
	Org     bool
	Number  int
	FieldID string   // the Status field's node id
	Options []string // Status options, in order; their ids are "OPT_<name>"
}

// ProjectItem is an issue in a project, with its Status option name.
type ProjectItem struct {
	ID, Project, Content string
	Status               string
}

func optionID(name string) string { return "OPT_" + strings.ReplaceAll(name, " ", "_") }

// AddProject makes the fake serve a project.
func (s *Server) AddProject(p ProjectV2) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projects = append(s.projects, p)
}

// ItemOf returns the project item of an issue, if it was added.
func (s *Server) ItemOf(project, repo string, issue int) (ProjectItem, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.items {
		if it.Project == project && it.Content == IssueNodeID(repo, issue) {
			return *it, true
		}
	}
	return ProjectItem{}, false
}

// SetItemStatus changes an item's Status as a person on GitHub would.
func (s *Server) SetItemStatus(itemID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.items {
		if it.ID == itemID {
			it.Status = status
		}
	}
}

func (s *Server) graphql(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Problems parsing JSON"})
		return
	}
	str := func(k string) string { v, _ := in.Variables[k].(string); return v }
	fail := func(msg string) {
		writeJSON(w, http.StatusOK, map[string]any{"data": nil, "errors": []any{map[string]any{"type": "NOT_FOUND", "message": msg}}})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch q := in.Query; {
	case strings.Contains(q, "projectV2(number"):
		kind := "user"
		if strings.Contains(q, "organization(") {
			kind = "organization"
		}
		num, _ := in.Variables["number"].(float64)
		for _, p := range s.projects {
			if p.Owner == str("login") && p.Number == int(num) && p.Org == (kind == "organization") {
				var opts []any
				for _, o := range p.Options {
					opts = append(opts, map[string]any{"id": optionID(o), "name": o})
				}
				writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{kind: map[string]any{
					"projectV2": map[string]any{"id": p.NodeID, "field": map[string]any{"id": p.FieldID, "options": opts}}}}})
				return
			}
		}
		fail(fmt.Sprintf("Could not resolve to a ProjectV2 with the number %d.", int(num)))
	case strings.Contains(q, "addProjectV2ItemById"):
		for _, it := range s.items {
			if it.Project == str("project") && it.Content == str("content") {
				writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"addProjectV2ItemById": map[string]any{"item": map[string]any{"id": it.ID}}}})
				return
			}
		}
		it := &ProjectItem{ID: fmt.Sprintf("PVTI_%d", s.id()), Project: str("project"), Content: str("content")}
		s.items = append(s.items, it)
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"addProjectV2ItemById": map[string]any{"item": map[string]any{"id": it.ID}}}})
	case strings.Contains(q, "updateProjectV2ItemFieldValue"):
		for _, it := range s.items {
			if it.ID == str("item") && it.Project == str("project") {
				for _, p := range s.projects {
					if p.NodeID == it.Project && p.FieldID == str("field") {
						for _, o := range p.Options {
							if optionID(o) == str("option") {
								it.Status = o
								writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"updateProjectV2ItemFieldValue": map[string]any{"projectV2Item": map[string]any{"id": it.ID}}}})
								return
							}
						}
					}
				}
			}
		}
		fail("The single select option Id does not belong to the field")
	case strings.Contains(q, "node(id"):
		for _, it := range s.items {
			if it.ID == str("item") {
				var repo string
				var n int
				rest := strings.TrimPrefix(it.Content, "I_")
				if i := strings.LastIndex(rest, "_"); i > 0 {
					repo = rest[:i]
					fmt.Sscan(rest[i+1:], &n)
				}
				var status any
				if it.Status != "" {
					status = map[string]any{"name": it.Status}
				}
				writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"node": map[string]any{
					"project":          map[string]any{"id": it.Project},
					"content":          map[string]any{"number": n, "repository": map[string]any{"nameWithOwner": repo}},
					"fieldValueByName": status}}})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"node": nil}})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"errors": []any{map[string]any{"message": "the fake does not answer this query"}}})
	}
}
