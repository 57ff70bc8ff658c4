package github

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/engine/tools"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/bwrap"
	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// cloneWorkspaces gives each run a bubblewrap sandbox filled from the
// project's mirror, which fetched with the publisher's credentials, on
// the run's work branch (as cmd/hero's workspaces do).
type cloneWorkspaces struct {
	prov    *bwrap.Provider
	mirrors *mirror.Mirrors
	pub     *Publisher
}

func (w *cloneWorkspaces) Open(ctx context.Context, p *store.Project, ex *store.Execution, env map[string]string) (sandbox.Sandbox, error) {
	sb, err := w.prov.Create(ctx, sandbox.Spec{Env: env, Labels: map[string]string{"execution": ex.ID}})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (sandbox.Sandbox, error) { sb.Close(ctx); return nil, err }
	repo, err := w.mirrors.Repo(ctx, p.ID)
	if err != nil {
		return fail(err)
	}
	cred, err := w.pub.CloneCredential(ctx, p)
	if err != nil {
		return fail(err)
	}
	work, continues := w.pub.WorkBranch(ex)
	from := p.DefaultBranch
	if continues {
		from = work
	}
	branch, _, err := repo.Fetch(ctx, mirror.Remote{URL: p.RepoURL, Credential: cred}, from)
	if err != nil {
		return fail(err)
	}
	if _, err := sandbox.Hydrate(ctx, sb, sandbox.Source{Git: repo, Branch: branch, Origin: p.RepoURL}, nil); err != nil {
		return fail(err)
	}
	if !continues {
		res, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"git", "switch", "-q", "-c", work}})
		if err != nil || res.ExitCode != 0 {
			return fail(fmt.Errorf("switch to %s: %v (exit %d)", work, err, res.ExitCode))
		}
	}
	return sb, nil
}

func (w *cloneWorkspaces) Close(ctx context.Context, _ *store.Execution, sb sandbox.Sandbox) error {
	return sb.Close(ctx)
}

// e2e is a real engine (SQLite, bubblewrap, go-openai against the scripted
// fake model, the real tools) behind the GitHub surface, a fake GitHub API
// and a real git server.
type e2e struct {
	*env
	git   *githubtest.GitServer
	model *openaitest.Server
	eng   *engine.Engine
}

func newE2E(t *testing.T, script ...openaitest.Turn) *e2e {
	t.Helper()
	prov := enginetest.Bwrap(t)
	dir := t.TempDir()
	db := openStore(t, dir)
	api := githubtest.NewServer(t, testToken)
	git := githubtest.NewGitServer(t, "Codertocat", "Hello-World", map[string]string{
		"README.md": "# Hello-World\n\nHelo world\n",
		"test.sh":   "#!/bin/sh\ngrep -q 'Hello world' README.md && echo 'all tests passed'\n",
	}, api.ValidToken)
	model := openaitest.NewServer(t, script...)
	mirrors, err := mirror.New(filepath.Join(dir, "mirrors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// As cmd/hero wires it: the publisher, then the workspaces and the
	// engine that take it, then the surface.
	pub := newTestPublisher(t, PublisherConfig{APIURL: api.APIURL(), Credentials: StaticToken(testToken), WritePace: -1,
		Mirrors: mirrors, Hosts: []string{hostOf(git.URL)}}) // the git server is this GitHub's web host
	eng, err := engine.New(engine.Config{
		Store: db, Model: enginetest.OpenAI(t, model.URL(), "gpt-4o-mini"), ModelName: "gpt-4o-mini",
		Workspaces: &cloneWorkspaces{prov: prov, mirrors: mirrors, pub: pub},
		Tools:      tools.All(), PollInterval: 20 * time.Millisecond, Owner: "e2e",
		Forge: pub.Forge,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(t.Context())
	e := newEnv(t, db, api, eng, git.RepoURL("Codertocat", "Hello-World"), func(c *envConfig) {
		c.RunContext = runCtx
		c.Publisher = pub
	})
	eng.AddSurface(e.svc)
	t.Cleanup(func() { stop(); eng.Wait() })
	return &e2e{env: e, git: git, model: model, eng: eng}
}

// comment delivers an issue_comment on issue 1 of the served repository.
func (e *e2e) comment(id string, commentID int64, login, assoc, body string) {
	e.t.Helper()
	payload := fixture(e.t, "issue_comment.created.json", map[string]any{
		"repository.html_url": e.git.RepoURL("Codertocat", "Hello-World"),
		"comment.id":          commentID, "comment.body": body, "comment.user.login": login, "comment.author_association": assoc,
		"comment.updated_at": freshTime(),
	})
	if code := e.deliver("issue_comment", id, payload); code != 202 {
		e.t.Fatalf("delivery %s: status %d", id, code)
	}
}

var approveRe = regexp.MustCompile("`/hero approve (c[a-z0-9]+)`")

// pendingID waits for a pending confirmation other than skip in the
// progress comment and returns its id.
func (e *e2e) pendingID(skip string) string {
	e.t.Helper()
	var id string
	enginetest.Eventually(e.t, "a confirmation in the progress comment", func() bool {
		for _, c := range e.api.Comments() {
			for _, m := range approveRe.FindAllStringSubmatch(c.Body, -1) {
				if m[1] != skip {
					id = m[1]
					return true
				}
			}
		}
		return false
	})
	return id
}

func (e *e2e) summary() string {
	e.t.Helper()
	var body string
	enginetest.Eventually(e.t, "the summary comment", func() bool {
		for _, c := range e.api.Comments() {
			if strings.Contains(c.Body, "tokens in") {
				body = c.Body
				return true
			}
		}
		return false
	})
	return body
}

func fixScript(pushThen ...openaitest.Turn) []openaitest.Turn {
	s := []openaitest.Turn{
		openaitest.Tools(openaitest.Call("run_command", `{"command":"git switch -c hero/1-fix-readme"}`)),
		openaitest.Tools(openaitest.Call("edit_file", `{"path":"README.md","old":"Helo world","new":"Hello world"}`)),
		openaitest.Tools(openaitest.Call("run_command", `{"command":"sh test.sh"}`)),
		openaitest.Tools(openaitest.Call("git_commit", `{"message":"Fix the typo in the README"}`)),
		openaitest.Tools(openaitest.Call("git_push", `{"branch":"hero/1-fix-readme"}`)),
	}
	return append(s, pushThen...)
}

func TestEndToEndApprove(t *testing.T) {
	t.Parallel()
	e := newE2E(t, fixScript(
		openaitest.Tools(openaitest.Call("create_pull_request", `{"title":"Fix the README typo","body":"The README said Helo."}`)),
		openaitest.Text("Fixed the typo; the tests pass and the pull request is open."),
	)...)
	e.comment("e2e-1", 492700400, "Codertocat", "OWNER", "@hero the README has a typo, please fix")

	enginetest.Eventually(t, "👀 on the comment", func() bool {
		rx := e.api.Reactions()
		return len(rx) > 0 && rx[0].Content == "eyes" && rx[0].CommentID == 492700400
	})
	push := e.pendingID("")
	// Someone else may not approve; the run keeps waiting.
	e.comment("e2e-intruder", 9001, "someone", "COLLABORATOR", "/hero approve "+push)
	if err := e.waitHandled("e2e-intruder"); err != nil {
		t.Fatal(err)
	}
	if _, _, pushes := e.git.Counts(); pushes != 0 {
		t.Fatal("pushed before approval")
	}
	e.comment("e2e-approve-push", 9002, "Codertocat", "OWNER", "/hero approve "+push)
	pr := e.pendingID(push)
	e.comment("e2e-approve-pr", 9003, "Codertocat", "OWNER", "/hero approve "+pr)
	sum := e.summary()

	// The branch is in the served repository, with the fix.
	out, err := e.git.Git("show", "hero/1-fix-readme:README.md")
	if err != nil || !strings.Contains(out, "Hello world") {
		t.Fatalf("branch content: %v\n%s", err, out)
	}
	if log, _ := e.git.Git("log", "-1", "--format=%an %s", "hero/1-fix-readme"); strings.TrimSpace(log) != "hero Fix the typo in the README" {
		t.Fatalf("commit: %q", log)
	}
	if main, _ := e.git.Git("show", "main:README.md"); !strings.Contains(main, "Helo world") {
		t.Fatal("main changed")
	}
	pulls := e.api.Pulls()
	if len(pulls) != 1 || pulls[0].Head != "hero/1-fix-readme" || pulls[0].Base != "main" || !strings.Contains(pulls[0].Body, "Fixes #1") {
		t.Fatalf("pulls %+v", pulls)
	}
	if !strings.Contains(sum, pulls[0].HTMLURL) || !strings.Contains(sum, "hero finished") || !strings.Contains(sum, "Files changed (1): `README.md`") || !strings.Contains(sum, "steps") {
		t.Fatalf("summary:\n%s", sum)
	}

	comments := e.api.Comments()
	var progress *githubtest.Comment
	var refusal bool
	for i := range comments {
		if strings.HasPrefix(comments[i].Body, "**hero** · run") {
			if progress != nil {
				t.Fatal("more than one progress comment")
			}
			progress = &comments[i]
		}
		refusal = refusal || strings.Contains(comments[i].Body, "@someone You may not decide")
	}
	if progress == nil || !refusal {
		t.Fatalf("progress %v, refusal %v; comments %+v", progress != nil, refusal, comments)
	}
	for _, want := range []string{"✅ done", "- [x] `run_command` `sh test.sh`", "- [x] `git_push`", "approved by Codertocat"} {
		if !strings.Contains(progress.Body, want) {
			t.Errorf("progress comment lacks %q:\n%s", want, progress.Body)
		}
	}
	// Edits of the progress comment are spaced by the edit interval
	// (100 ms here), less the jitter of their arrival on a loaded machine.
	for i := 1; i < len(progress.Edits); i++ {
		if gap := progress.Edits[i].Sub(progress.Edits[i-1]); gap < 60*time.Millisecond {
			t.Errorf("edits %d and %d only %s apart", i-1, i, gap)
		}
	}
	// The confirmation showed risk, exact action and how to answer.
	var asked string
	for _, b := range progress.Bodies {
		if strings.Contains(b, "Needs approval") && strings.Contains(b, push) {
			asked = b
			break
		}
	}
	t.Logf("confirmation as shown:\n%s\nfinal progress comment:\n%s\nsummary:\n%s", asked, progress.Body, sum)
	if !strings.Contains(asked, "risk: **") || !strings.Contains(asked, "push branch hero/1-fix-readme") || !strings.Contains(asked, "/hero deny "+push) {
		t.Fatalf("confirmation rendering:\n%s", asked)
	}
	// The token appears in no step record.
	exs, _ := e.db.ListExecutions(t.Context(), store.ExecutionFilter{})
	for _, ex := range exs {
		steps, _ := e.db.ListSteps(t.Context(), ex.ID)
		for _, s := range steps {
			if strings.Contains(s.Arguments+s.Output, testToken) {
				t.Fatalf("token in step %+v", s)
			}
		}
	}
}

func TestEndToEndDeny(t *testing.T) {
	t.Parallel()
	e := newE2E(t, fixScript(openaitest.Text("Understood: nothing was pushed."))...)
	e.comment("deny-1", 492700400, "Codertocat", "OWNER", "/hero fix the README typo")
	push := e.pendingID("")
	e.comment("deny-2", 9100, "Codertocat", "OWNER", fmt.Sprintf("/hero deny %s not now", push))
	sum := e.summary()
	if !strings.Contains(sum, "nothing was pushed") {
		t.Fatalf("summary:\n%s", sum)
	}
	if out, err := e.git.Git("branch", "--list", "hero/*"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("branches: %q %v", out, err)
	}
	if _, _, pushes := e.git.Counts(); pushes != 0 {
		t.Fatalf("%d pushes", pushes)
	}
	if len(e.api.Pulls()) != 0 {
		t.Fatal("a pull request was opened")
	}
}

// A model that never manages branches — edit, test, git_commit, git_push
// to a branch it names, create_pull_request — gets its pull request: the
// workspace started on the run's own work branch (hero/<issue>-<slug>),
// the push created hero/fix-add from HEAD, and the pull request opens
// from the branch pushed last into the default branch.
func TestEndToEndWorkBranch(t *testing.T) {
	t.Parallel()
	e := newE2E(t,
		openaitest.Tools(openaitest.Call("run_command", `{"command":"git symbolic-ref --short HEAD"}`)),
		openaitest.Tools(openaitest.Call("edit_file", `{"path":"README.md","old":"Helo world","new":"Hello world"}`)),
		openaitest.Tools(openaitest.Call("run_command", `{"command":"sh test.sh"}`)),
		openaitest.Tools(openaitest.Call("git_commit", `{"message":"Fix the typo in the README"}`)),
		openaitest.Tools(openaitest.Call("git_push", `{"branch":"hero/fix-add"}`)),
		openaitest.Tools(openaitest.Call("create_pull_request", `{"title":"Fix the README typo","body":"The README said Helo."}`)),
		openaitest.Text("Fixed; the pull request is open."),
	)
	e.comment("wb-1", 492700400, "Codertocat", "OWNER", "@hero the README has a typo, please fix")
	push := e.pendingID("")
	e.comment("wb-approve-push", 9202, "Codertocat", "OWNER", "/hero approve "+push)
	pr := e.pendingID(push)
	e.comment("wb-approve-pr", 9203, "Codertocat", "OWNER", "/hero approve "+pr)
	sum := e.summary()

	if out, err := e.git.Git("show", "hero/fix-add:README.md"); err != nil || !strings.Contains(out, "Hello world") {
		t.Fatalf("hero/fix-add: %v %s", err, out)
	}
	pulls := e.api.Pulls()
	if len(pulls) != 1 || pulls[0].Head != "hero/fix-add" || pulls[0].Base != "main" || !strings.Contains(sum, pulls[0].HTMLURL) {
		t.Fatalf("pulls %+v\nsummary:\n%s", pulls, sum)
	}
	exs, _ := e.db.ListExecutions(t.Context(), store.ExecutionFilter{})
	var outputs []string
	for _, ex := range exs {
		steps, _ := e.db.ListSteps(t.Context(), ex.ID)
		for _, s := range steps {
			outputs = append(outputs, s.Tool+": "+s.Output)
		}
	}
	all := strings.Join(outputs, "\n")
	for _, want := range []string{"\nhero/1-spelling-error-in-the\n", "git_commit: committed", "on branch hero/1-spelling-error-in-the", "git_push: pushed branch hero/fix-add", "create_pull_request: opened pull request: "} {
		if !strings.Contains(all, want) {
			t.Errorf("steps lack %q:\n%s", want, all)
		}
	}
}
