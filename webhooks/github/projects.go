package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// A board linked to a GitHub Project (v2) shows each card's column in the
// project's single-select "Status" field instead of a hero: label: the
// card's issue is added to the project (addProjectV2ItemById, which
// returns the existing item when it is there already) and its Status set
// (updateProjectV2ItemFieldValue). Moves made on GitHub arrive as
// projects_v2_item edited deliveries (organisation projects), read
// defensively: the item is read again through GraphQL rather than
// trusting the shape of changes.field_value, which GitHub has changed.

// graphqlURL is the GraphQL endpoint next to a REST root:
// https://api.github.com/graphql, or https://HOST/api/graphql on GitHub
// Enterprise (REST at https://HOST/api/v3).
func graphqlURL(apiURL string) string {
	if apiURL == "" {
		return "https://api.github.com/graphql"
	}
	u := strings.TrimRight(apiURL, "/")
	if strings.HasSuffix(u, "/api/v3") {
		return strings.TrimSuffix(u, "/v3") + "/graphql"
	}
	return u + "/graphql"
}

// graphql runs one query for repo's credentials; out receives "data".
func (b *Board) graphql(ctx context.Context, repo Repo, query string, vars map[string]any, out any) error {
	return graphqlDo(ctx, b.client(repo), b.apiURL, query, vars, out)
}

// graphqlDo runs one query with c's credentials at the GraphQL endpoint
// of apiURL (the same host, so the token stays where it belongs).
func graphqlDo(ctx context.Context, c *gh.Client, apiURL, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, graphqlURL(apiURL), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Client().Do(req)
	if err != nil {
		return fmt.Errorf("github graphql: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("github graphql: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("github graphql: HTTP %d: %.200s", resp.StatusCode, raw)
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("github graphql: answer does not parse: %w", err)
	}
	if len(env.Errors) > 0 {
		msgs := make([]string, len(env.Errors))
		for i, e := range env.Errors {
			msgs[i] = e.Message
		}
		return fmt.Errorf("github graphql: %s", strings.Join(msgs, "; "))
	}
	return json.Unmarshal(env.Data, out)
}

// statusField finds the linked project's node id and its Status field,
// with the field's options by name.
type statusField struct {
	projectID, fieldID string
	options            map[string]string // option name (lower case) → id
}

const projectQuery = `query($login: String!, $number: Int!) {
  %s(login: $login) {
    projectV2(number: $number) {
      id
      field(name: "Status") { ... on ProjectV2SingleSelectField { id options { id name } } }
    }
  }
}`

func (b *Board) statusField(ctx context.Context, repo Repo, link string) (*statusField, error) {
	gp, err := kanban.ParseGitHubProject(link)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(gp.Host, b.hosts[0]) {
		// The token belongs to hero's GitHub; a project elsewhere never
		// sees it.
		return nil, fmt.Errorf("GitHub Project %s is not on %s, where hero's credentials belong", link, b.hosts[0])
	}
	kind := "user"
	if gp.Org {
		kind = "organization"
	}
	var out map[string]struct {
		ProjectV2 *struct {
			ID    string `json:"id"`
			Field *struct {
				ID      string `json:"id"`
				Options []struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"options"`
			} `json:"field"`
		} `json:"projectV2"`
	}
	if err := b.graphql(ctx, repo, fmt.Sprintf(projectQuery, kind), map[string]any{"login": gp.Owner, "number": gp.Number}, &out); err != nil {
		return nil, fmt.Errorf("read GitHub Project %s: %w", link, err)
	}
	p := out[kind].ProjectV2
	if p == nil || p.ID == "" {
		return nil, fmt.Errorf("GitHub Project %s was not found (or hero's token may not read it)", link)
	}
	if p.Field == nil || p.Field.ID == "" {
		return nil, fmt.Errorf("GitHub Project %s has no single-select field named Status", link)
	}
	sf := &statusField{projectID: p.ID, fieldID: p.Field.ID, options: map[string]string{}}
	for _, o := range p.Field.Options {
		sf.options[strings.ToLower(o.Name)] = o.ID
	}
	return sf, nil
}

const addItemMutation = `mutation($project: ID!, $content: ID!) {
  addProjectV2ItemById(input: {projectId: $project, contentId: $content}) { item { id } }
}`

const setStatusMutation = `mutation($project: ID!, $item: ID!, $field: ID!, $option: String!) {
  updateProjectV2ItemFieldValue(input: {projectId: $project, itemId: $item, fieldId: $field, value: {singleSelectOptionId: $option}}) { projectV2Item { id } }
}`

// setStatus puts the card's issue into the linked project with the
// column as its Status, and records the project's node ids on the board
// (deliveries name the project by them).
func (b *Board) setStatus(ctx context.Context, repo Repo, board *store.KanbanBoard, issueNodeID string, col *store.KanbanColumn) error {
	sf, err := b.statusField(ctx, repo, board.GitHubProject)
	if err != nil {
		return err
	}
	if board.GitHubProjectID != sf.projectID || board.GitHubStatusField != sf.fieldID {
		board.GitHubProjectID, board.GitHubStatusField = sf.projectID, sf.fieldID
		if err := b.boards.UpdateBoard(ctx, board); err != nil {
			return err
		}
	}
	option, ok := sf.options[strings.ToLower(col.Name)]
	if !ok {
		return fmt.Errorf("the Status field of GitHub Project %s has no option %q; add one named like each column", board.GitHubProject, col.Name)
	}
	var added struct {
		Add struct {
			Item struct {
				ID string `json:"id"`
			} `json:"item"`
		} `json:"addProjectV2ItemById"`
	}
	if err := b.graphql(ctx, repo, addItemMutation, map[string]any{"project": sf.projectID, "content": issueNodeID}, &added); err != nil {
		return fmt.Errorf("add the issue to GitHub Project %s: %w", board.GitHubProject, err)
	}
	if added.Add.Item.ID == "" {
		return errors.New("add the issue to the GitHub Project: no item id in the answer")
	}
	var set json.RawMessage
	if err := b.graphql(ctx, repo, setStatusMutation, map[string]any{"project": sf.projectID, "item": added.Add.Item.ID, "field": sf.fieldID, "option": option}, &set); err != nil {
		return fmt.Errorf("set Status in GitHub Project %s: %w", board.GitHubProject, err)
	}
	return nil
}

const itemQuery = `query($item: ID!) {
  node(id: $item) {
    ... on ProjectV2Item {
      project { id }
      content { ... on Issue { number repository { nameWithOwner } } }
      fieldValueByName(name: "Status") { ... on ProjectV2ItemFieldSingleSelectValue { name } }
    }
  }
}`

// ProjectItem is a project item as hero reads it back: which issue, and
// its Status.
type ProjectItem struct {
	ProjectID string
	Repo      string // owner/name
	Issue     int
	Status    string
}

// readProjectItem reads a project item again (see the comment at the top).
func readProjectItem(ctx context.Context, c *gh.Client, apiURL, itemID string) (*ProjectItem, error) {
	var out struct {
		Node *struct {
			Project struct {
				ID string `json:"id"`
			} `json:"project"`
			Content *struct {
				Number     int `json:"number"`
				Repository struct {
					NameWithOwner string `json:"nameWithOwner"`
				} `json:"repository"`
			} `json:"content"`
			Status *struct {
				Name string `json:"name"`
			} `json:"fieldValueByName"`
		} `json:"node"`
	}
	if err := graphqlDo(ctx, c, apiURL, itemQuery, map[string]any{"item": itemID}, &out); err != nil {
		return nil, fmt.Errorf("read project item %s: %w", itemID, err)
	}
	n := out.Node
	if n == nil || n.Content == nil || n.Content.Number == 0 || n.Status == nil {
		return nil, nil // not an issue (a draft, a pull request) or no Status
	}
	return &ProjectItem{ProjectID: n.Project.ID, Repo: n.Content.Repository.NameWithOwner, Issue: n.Content.Number, Status: n.Status.Name}, nil
}
