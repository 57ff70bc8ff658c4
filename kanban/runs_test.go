package kanban_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/engine/tools"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
	goopenai "github.com/sashabaranov/go-openai"
)

// chat is a place a card lives (a chat thread), as the engine sees any
// surface: it records what it was shown.
type chat struct {
	name string
	mu   sync.Mutex
	seen []string
}

func (c *chat) Name() string { return c.name }

func (c *chat) Update(_ context.Context, ex *store.Execution, ev engine.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := fmt.Sprintf("%s %s %s", ex.ThreadRef, ex.ID, ev.Kind)
	if ev.Confirmation != nil {
		line += " " + ev.Confirmation.Status + " ref=" + ev.Confirmation.SurfaceRef
	}
	if ev.Outcome != nil {
		line += " " + ev.Outcome.Status + " " + ev.Outcome.PullRequestURL + ev.Outcome.Error
	}
	c.seen = append(c.seen, line)
	return nil
}

func (c *chat) Ask(_ context.Context, ex *store.Execution, conf *store.Confirmation) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, fmt.Sprintf("%s %s ask %s", ex.ThreadRef, ex.ID, conf.Tool))
	return c.name + "-msg-" + conf.ID, nil
}

func (c *chat) lines() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.seen, "\n")
}

// prForge stands in for GitHub at the engine's forge port: pull requests
// get a URL.
type prForge struct{}

func (prForge) Push(_ context.Context, _ sandbox.Sandbox, b string) (string, error) { return b, nil }
func (prForge) CreatePullRequest(context.Context, string, string, string, bool) (string, error) {
	return "https://github.example/acme/shop/pull/42", nil
}
func (prForge) Comment(context.Context, string) error { return nil }
func (prForge) ReadIssue(context.Context, int) (*engine.ForgeIssue, error) {
	return nil, engine.ErrNoForge
}
func (prForge) ReadPullRequest(context.Context, int) (*engine.ForgePullRequest, error) {
	return nil, engine.ErrNoForge
}

type runEnv struct {
	*fixture
	eng   *engine.Engine
	chats []*chat
}

func newRunEnv(t *testing.T, model *openaitest.Server) *runEnv {
	t.Helper()
	ws := enginetest.NewGitWorkspaces(t, map[string]string{"README.md": "# shop\n"})
	f := newFixture(t, "sqlite://"+filepath.Join(t.TempDir(), "hero.db"))
	eng, err := engine.New(engine.Config{Store: f.db, Workspaces: ws, Model: enginetest.OpenAI(t, model.URL(), "gpt-4o-mini"), ModelName: "gpt-4o-mini",
		Tools: tools.All(), PollInterval: 20 * time.Millisecond, Owner: "test",
		Forge: func(context.Context, *store.Project, *store.Execution) (engine.Forge, error) { return prForge{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Wait)
	svc, err := kanban.New(kanban.Config{Store: f.db, Runs: eng, Places: eng, RunContext: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	e := &runEnv{fixture: f, eng: eng, chats: []*chat{{name: "slack"}, {name: "discord"}}}
	eng.AddSurface(svc)
	for _, c := range e.chats {
		eng.AddSurface(c)
	}
	return e
}

// card adds a card that lives in both chats.
func (e *runEnv) card(t *testing.T, title string) *store.KanbanCard {
	t.Helper()
	c, _, err := e.svc.AddCard(t.Context(), e.as("mia"), kanban.NewCard{Project: e.project, Title: title, Body: "Details of " + title})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range e.chats {
		if err := e.db.AddCardThread(t.Context(), c.ID, ch.name, ch.name+"-thread-"+c.ID); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// waitColumn waits until the card is in column.
func (e *runEnv) waitColumn(t *testing.T, id, column string) *kanban.Detail {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := e.svc.Card(t.Context(), e.as("vic"), "", id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Column.Name == column {
			return d
		}
		if time.Now().After(deadline) {
			var h []string
			for _, x := range d.History {
				h = append(h, kanban.Describe(x))
			}
			t.Fatalf("card %s stays in %s, want %s; history:\n%s", id, d.Column.Name, column, strings.Join(h, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCardRunOpensPullRequest: moving a card into In progress starts a
// run on it; the run's question shows in both chats the card lives in, an
// answer in one is shown as decided in both, and the pull request it
// opens takes the card to Review with the link.
func TestCardRunOpensPullRequest(t *testing.T) {
	model := openaitest.NewServer(t,
		openaitest.Turn{ToolCalls: []openaitest.ToolCall{openaitest.Call("create_pull_request", `{"title":"Fix checkout","body":"Fixes it."}`)},
			Check: func(req goopenai.ChatCompletionRequest) error {
				return expectTask(req, "Fix checkout", "Details of Fix checkout")
			}},
		openaitest.Tools(openaitest.Call("finish", `{"summary":"Opened the pull request."}`)),
	)
	e := newRunEnv(t, model)
	c := e.card(t, "Fix checkout")
	m, err := e.svc.MoveCard(t.Context(), e.as("mia"), "", c.ID, "In progress")
	if err != nil || m.Run == nil || m.RunErr != nil {
		t.Fatalf("move: %+v %v", m, err)
	}
	// The question reaches both places; one answer decides it.
	var conf *store.Confirmation
	deadline := time.Now().Add(30 * time.Second)
	for conf == nil {
		cs, err := e.db.PendingConfirmations(t.Context(), m.Run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) > 0 {
			conf = &cs[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("no confirmation; slack saw:\n%s", e.chats[0].lines())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := e.eng.Decide(t.Context(), conf.ID, engine.Decision{Approve: true, By: engine.Principal{ID: "test:mia"}}); err != nil {
		t.Fatal(err)
	}
	d := e.waitColumn(t, c.ID, "Review")
	if d.Card.PRURL != "https://github.example/acme/shop/pull/42" || len(d.Runs) != 1 || d.Runs[0] != m.Run.ID {
		t.Fatalf("card after the run: %+v runs %v", d.Card, d.Runs)
	}
	var h []string
	for _, x := range d.History {
		h = append(h, kanban.Describe(x))
	}
	for _, want := range []string{"test:mia moved it from To do to In progress (cli)", "test:mia: run — run " + m.Run.ID + " started (cli)",
		"hero moved it from In progress to Review — run " + m.Run.ID + " opened https://github.example/acme/shop/pull/42 (hero)"} {
		if !strings.Contains(strings.Join(h, "\n"), want) {
			t.Errorf("history lacks %q:\n%s", want, strings.Join(h, "\n"))
		}
	}
	for _, ch := range e.chats {
		seen := ch.lines()
		thread := ch.name + "-thread-" + c.ID + " " + m.Run.ID
		for _, want := range []string{thread + " started", thread + " ask create_pull_request",
			thread + " decided approved ref=" + ch.name + "-msg-" + conf.ID, thread + " finished succeeded https://github.example/acme/shop/pull/42"} {
			if !strings.Contains(seen, want) {
				t.Errorf("%s lacks %q:\n%s", ch.name, want, seen)
			}
		}
	}
}

// TestCardRunFailsBackToTodo: a run that fails takes its card back to To
// do with a note saying why.
func TestCardRunFailsBackToTodo(t *testing.T) {
	model := openaitest.NewServer(t, openaitest.Error(400), openaitest.Error(400))
	e := newRunEnv(t, model)
	c := e.card(t, "Upgrade the database")
	m, err := e.svc.MoveCard(t.Context(), e.as("mia"), "", c.ID, "in-progress")
	if err != nil || m.Run == nil {
		t.Fatalf("move: %+v %v", m, err)
	}
	d := e.waitColumn(t, c.ID, "To do")
	last := d.History[len(d.History)-1]
	if last.Actor != "hero" || last.FromColumn != "In progress" || !strings.HasPrefix(last.Note, "run "+m.Run.ID+" failed") {
		t.Fatalf("last history line: %+v", last)
	}
}

// expectTask checks that the run's task (its first user message) names
// the card.
func expectTask(req goopenai.ChatCompletionRequest, wants ...string) error {
	for _, m := range req.Messages {
		if m.Role == goopenai.ChatMessageRoleUser {
			for _, w := range wants {
				if !strings.Contains(m.Content, w) {
					return fmt.Errorf("the task lacks %q: %s", w, m.Content)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("no user message")
}

// TestCardRunCancelledBackToTodo: a run cancelled while it waits for an
// answer takes its card back to To do with a note saying who cancelled
// it, and both places the card lives see the run end as cancelled.
func TestCardRunCancelledBackToTodo(t *testing.T) {
	model := openaitest.NewServer(t, openaitest.Tools(openaitest.Call("create_pull_request", `{"title":"Bump deps","body":"Bumps them."}`)))
	e := newRunEnv(t, model)
	c := e.card(t, "Bump deps")
	m, err := e.svc.MoveCard(t.Context(), e.as("mia"), "", c.ID, "In progress")
	if err != nil || m.Run == nil || m.RunErr != nil {
		t.Fatalf("move: %+v %v", m, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cs, err := e.db.PendingConfirmations(t.Context(), m.Run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run never asked; slack saw:\n%s", e.chats[0].lines())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.eng.Cancel(t.Context(), m.Run.ID, engine.Principal{ID: "test:mia", Granted: store.RoleMember}); err != nil {
		t.Fatal(err)
	}
	d := e.waitColumn(t, c.ID, "To do")
	last := d.History[len(d.History)-1]
	if last.Actor != "hero" || last.FromColumn != "In progress" || !strings.HasPrefix(last.Note, "run "+m.Run.ID+" cancelled") {
		t.Fatalf("last history line: %+v", last)
	}
	for _, ch := range e.chats {
		if want := ch.name + "-thread-" + c.ID + " " + m.Run.ID + " finished cancelled"; !strings.Contains(ch.lines(), want) {
			t.Errorf("%s lacks %q:\n%s", ch.name, want, ch.lines())
		}
	}
}
