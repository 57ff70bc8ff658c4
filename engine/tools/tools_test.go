package tools

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

func toolByName(t *testing.T, name string) engine.Tool {
	t.Helper()
	for _, tl := range All() {
		if tl.Name == name {
			return tl
		}
	}
	t.Fatalf("no tool %q", name)
	return engine.Tool{}
}

// env is one test's workspace and tool context.
type env struct {
	t     *testing.T
	sb    *hostSandbox
	forge *recordingForge
	tc    *engine.ToolContext
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sb := newHostSandbox(t)
	forge := &recordingForge{}
	return &env{t: t, sb: sb, forge: forge, tc: &engine.ToolContext{
		Sandbox: sb,
		Project: &store.Project{Name: "app", DefaultBranch: "trunk"},
		Forge:   forge,
	}}
}

// call runs a tool the way the engine does: Subject first, then Run.
func (e *env) call(name, args string) (string, error) {
	e.t.Helper()
	tl := toolByName(e.t, name)
	if _, _, err := tl.Subject(json.RawMessage(args)); err != nil {
		_, runErr := tl.Run(e.t.Context(), e.tc, json.RawMessage(args))
		if runErr == nil || runErr.Error() != err.Error() {
			e.t.Errorf("%s(%s): Subject says %v but Run says %v", name, args, err, runErr)
		}
		return "", err
	}
	return tl.Run(e.t.Context(), e.tc, json.RawMessage(args))
}

func (e *env) mustCall(name, args string) string {
	e.t.Helper()
	out, err := e.call(name, args)
	if err != nil {
		e.t.Fatalf("%s(%s): %v", name, args, err)
	}
	return out
}

func (e *env) write(rel, content string) {
	e.t.Helper()
	full := filepath.Join(e.sb.root, rel)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) read(rel string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.sb.root, rel))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func jsonArgs(v map[string]any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s = %q\nwant it to contain %q", what, got, w)
		}
	}
}

func wantErr(t *testing.T, what string, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error; want one containing %q", what, wants)
		return
	}
	if errors.Is(err, engine.ErrSandboxBroken) {
		t.Errorf("%s: %v is a sandbox failure; want a model-facing error", what, err)
	}
	wantContains(t, what+" error", err.Error(), wants...)
}

func TestAllSchemas(t *testing.T) {
	t.Parallel()
	mutating := map[string]bool{
		"read_file": false, "list_files": false, "search": false,
		"write_file": true, "edit_file": true, "delete_file": true, "run_command": true,
		"git_commit": true, "git_push": true, "create_pull_request": true, "comment": true,
		"read_issue": false, "read_pull_request": false,
	}
	params := map[string][]string{
		"read_file": {"path"}, "list_files": {"path", "recursive"}, "search": {"pattern", "path"},
		"write_file": {"path", "content"}, "edit_file": {"path", "old", "new"}, "delete_file": {"path"},
		"run_command": {"command", "cwd", "timeout_s"}, "git_commit": {"message"}, "git_push": {"branch"},
		"create_pull_request": {"title", "body", "draft"}, "comment": {"body"},
		"read_issue": {"number"}, "read_pull_request": {"number"},
	}
	required := map[string][]string{
		"read_file": {"path"}, "list_files": {}, "search": {"pattern"},
		"write_file": {"path", "content"}, "edit_file": {"path", "old", "new"}, "delete_file": {"path"},
		"run_command": {"command"}, "git_commit": {"message"}, "git_push": {},
		"create_pull_request": {"title"}, "comment": {"body"},
		"read_issue": {}, "read_pull_request": {},
	}
	all := All()
	var names []string
	for _, tl := range all {
		names = append(names, tl.Name)
	}
	if got, want := slices.Sorted(slices.Values(names)), slices.Sorted(maps.Keys(mutating)); !slices.Equal(got, want) {
		t.Fatalf("tools = %v; want %v", got, want)
	}
	for _, tl := range all {
		if len(tl.Description) < 40 || tl.Subject == nil || tl.Run == nil {
			t.Errorf("%s: description %q, Subject nil %v, Run nil %v", tl.Name, tl.Description, tl.Subject == nil, tl.Run == nil)
		}
		if tl.Mutating != mutating[tl.Name] {
			t.Errorf("%s: Mutating = %v", tl.Name, tl.Mutating)
		}
		var s struct {
			Type       string `json:"type"`
			Properties map[string]struct {
				Type        string   `json:"type"`
				Description string   `json:"description"`
				Minimum     *float64 `json:"minimum"`
				Maximum     *float64 `json:"maximum"`
			} `json:"properties"`
			Required             []string `json:"required"`
			AdditionalProperties *bool    `json:"additionalProperties"`
		}
		dec := json.NewDecoder(strings.NewReader(string(tl.Parameters)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			t.Errorf("%s: schema %s: %v", tl.Name, tl.Parameters, err)
			continue
		}
		if s.Type != "object" || s.AdditionalProperties == nil || *s.AdditionalProperties {
			t.Errorf("%s: schema type %q additionalProperties %v", tl.Name, s.Type, s.AdditionalProperties)
		}
		want := slices.Clone(params[tl.Name])
		if tl.Mutating {
			want = append(want, "confidence", "reason")
			c := s.Properties["confidence"]
			if c.Type != "number" || c.Minimum == nil || *c.Minimum != 0 || c.Maximum == nil || *c.Maximum != 1 {
				t.Errorf("%s: confidence property = %+v", tl.Name, c)
			}
			if s.Properties["reason"].Type != "string" {
				t.Errorf("%s: reason property = %+v", tl.Name, s.Properties["reason"])
			}
		}
		if got := slices.Sorted(maps.Keys(s.Properties)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("%s: properties %v; want %v", tl.Name, got, want)
		}
		for name, p := range s.Properties {
			if p.Type == "" || p.Description == "" {
				t.Errorf("%s.%s: type %q description %q", tl.Name, name, p.Type, p.Description)
			}
		}
		if !slices.Equal(s.Required, required[tl.Name]) {
			t.Errorf("%s: required %v; want %v", tl.Name, s.Required, required[tl.Name])
		}
	}
}

func TestArgumentErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		tool, args string
		want       []string
	}{
		{"read_file", `{"path": 5}`, []string{`argument "path" must be a string, got a number (5)`, "path (string, required)"}},
		{"read_file", `{"file": "a.go"}`, []string{`unknown argument "file"`, `missing required argument "path"`}},
		{"read_file", `{}`, []string{`missing required argument "path" (string)`}},
		{"read_file", ``, []string{`missing required argument "path"`}},
		{"read_file", `{"path": null}`, []string{`missing required argument "path"`}},
		{"read_file", `not json`, []string{"must be one JSON object", `{"path": "…"}`, "got: not json"}},
		{"read_file", `["a.go"]`, []string{"must be one JSON object"}},
		{"read_file", `{"path": "a.go", "confidence": 0.5}`, []string{`unknown argument "confidence"`}},
		{"list_files", `{"recursive": "true"}`, []string{`argument "recursive" must be a boolean (true or false, not in quotes), got a string ("true")`}},
		{"search", `{"pattern": ["a"]}`, []string{`argument "pattern" must be a string, got an array`}},
		{"write_file", `{"path": "a.go"}`, []string{`missing required argument "content"`}},
		{"edit_file", `{"path": "a.go", "old": "x"}`, []string{`missing required argument "new"`}},
		{"run_command", `{"command": "ls", "timeout_s": 1.5}`, []string{`argument "timeout_s" must be an integer`, "got a number (1.5)"}},
		{"run_command", `{"command": "ls", "timeout_s": "30"}`, []string{`argument "timeout_s" must be an integer`}},
		{"run_command", `{"command": "ls", "timeout_s": 0}`, []string{`argument "timeout_s" must be at least 1, got 0`}},
		{"run_command", `{"command": "ls", "timeout_s": 99999}`, []string{`must be at most 3600`}},
		{"run_command", `{"cmd": "ls"}`, []string{`unknown argument "cmd"`, `missing required argument "command"`, "command (string, required), cwd (string), timeout_s (integer)"}},
		{"run_command", `{"command": "  "}`, []string{"command is empty"}},
		{"write_file", `{"path": "a", "content": "", "confidence": 1.5}`, []string{`argument "confidence" must be at most 1, got 1.5`}},
		{"write_file", `{"path": "a", "content": "", "confidence": "high"}`, []string{`argument "confidence" must be a number`}},
		{"git_commit", `{"message": {"text": "x"}}`, []string{`argument "message" must be a string, got an object`}},
		{"git_commit", `{"message": " \n"}`, []string{"message is empty"}},
		{"create_pull_request", `{"title": "x", "draft": "yes"}`, []string{`argument "draft" must be a boolean`}},
		{"create_pull_request", `{"title": "a\nb"}`, []string{"title has a line break"}},
		{"comment", `{"body": ""}`, []string{"body is empty"}},
		{"edit_file", `{"path": "a.go", "old": "", "new": "x"}`, []string{"old is empty"}},
		{"edit_file", `{"path": "a.go", "old": "x", "new": "x"}`, []string{"old and new are identical"}},
		{"search", `{"pattern": "a(b"}`, []string{`pattern "a(b" is not a valid regular expression`, "missing closing )"}},
		{"search", `{"pattern": "(?<=a)b"}`, []string{"not a valid regular expression", "RE2"}},
		{"git_push", `{"branch": "x", "force": true}`, []string{`unknown argument "force"`}},
	}
	before := e.sb.calls.Load()
	for _, c := range cases {
		_, err := e.call(c.tool, c.args)
		wantErr(t, c.tool+"("+c.args+")", err, c.want...)
		if err != nil && !strings.HasPrefix(err.Error(), c.tool+": ") {
			t.Errorf("%s(%s) error %q does not start with the tool's name", c.tool, c.args, err)
		}
	}
	if n := e.sb.calls.Load() - before; n != 0 {
		t.Errorf("bad arguments reached the sandbox %d times", n)
	}
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		tool, args, subject, action string
	}{
		{"read_file", `{"path": "./src//a.go"}`, "src/a.go", "read file src/a.go"},
		{"list_files", `{}`, ".", "list files in ."},
		{"list_files", `{"path": "src", "recursive": true}`, "src", "list files in src (recursively)"},
		{"search", `{"pattern": "NOTE", "path": "src"}`, "src", "search for /NOTE/ in src"},
		{"write_file", `{"path": "a.txt", "content": "hello"}`, "a.txt", "write 5 bytes to a.txt"},
		{"edit_file", `{"path": "a.txt", "old": "a\nb\n", "new": "c"}`, "a.txt", "edit a.txt: replace 2 lines with 1 line"},
		{"delete_file", `{"path": "a.txt"}`, "a.txt", "delete a.txt"},
		{"run_command", `{"command": "rm -rf build"}`, "rm -rf build", "run `rm -rf build` in /repo"},
		{"run_command", `{"command": "make", "cwd": "sub/dir"}`, "make", "run `make` in /repo/sub/dir"},
		{"run_command", `{"command": "echo a\nrm -rf /"}`, "echo a\nrm -rf /", `run "echo a\nrm -rf /" in /repo`},
		{"git_commit", `{"message": "Fix parser\n\nDetails"}`, "Fix parser\n\nDetails", `commit all changes: "Fix parser"`},
		{"git_push", `{"branch": "hero/12-fix"}`, "hero/12-fix", "push branch hero/12-fix"},
		{"git_push", `{"branch": "refs/heads/hero/12-fix"}`, "hero/12-fix", "push branch hero/12-fix"},
		{"git_push", `{}`, "", "push the run's commits to its work branch"},
		{"create_pull_request", `{"title": "Fix parser", "draft": true}`, "Fix parser", `open a draft pull request "Fix parser" from the branch pushed last with no description`},
		{"create_pull_request", `{"title": "Fix parser", "body": "Handles empty input.\nTested with go test."}`, "Fix parser", `open a pull request "Fix parser" from the branch pushed last, description: "Handles empty input.\nTested with go test."`},
		{"comment", `{"body": "Looks good\nthanks"}`, "Looks good\nthanks", `post a comment: "Looks good\nthanks"`},
	}
	for _, c := range cases {
		subject, action, err := toolByName(t, c.tool).Subject(json.RawMessage(c.args))
		if err != nil || subject != c.subject || action != c.action {
			t.Errorf("%s(%s).Subject = %q, %q, %v; want %q, %q", c.tool, c.args, subject, action, err, c.subject, c.action)
		}
		if strings.Contains(action, "\n") {
			t.Errorf("%s action %q is not one line", c.tool, action)
		}
	}
}
