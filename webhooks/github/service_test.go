package github

import (
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/store"
)

func TestCommandText(t *testing.T) {
	t.Parallel()
	db := openStore(t, t.TempDir())
	s, err := NewService(Config{Publisher: newTestPublisher(t, PublisherConfig{Credentials: StaticToken("x")}), Store: db, Engine: newRecorder(db)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		body, want string
		ok         bool
	}{
		{"/hero fix the parser", "fix the parser", true},
		{"  /hero\napprove c12", "approve c12", true},
		{"/hero", "", true},
		{"/heroes assemble", "", false},
		{"@hero the date parser breaks on leap years, please fix", "the date parser breaks on leap years, please fix", true},
		{"@hero, please look", "please look", true},
		{"Thanks! cc @Hero can you look", "Thanks! cc  can you look", true},
		{"(@hero) check", "() check", true},
		{"mail someone@hero.dev", "", false},
		{"@heroine", "", false},
		{"@hero-bot do it", "", false},
		{"see org/@hero", "", false},
		{"nothing here", "", false},
	}
	for _, c := range cases {
		got, ok := s.commandText(c.body)
		if ok != c.ok || got != c.want {
			t.Errorf("commandText(%q) = %q, %v; want %q, %v", c.body, got, ok, c.want, c.ok)
		}
	}
}

func TestParseRepoURL(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"https://github.com/o/r":            "github.com o/r",
		"https://github.com/o/r.git":        "github.com o/r",
		"https://GitHub.com/o/r/":           "github.com o/r",
		"git@github.com:o/r.git":            "github.com o/r",
		"ssh://git@ghe.corp:22/o/r.git":     "ghe.corp:22 o/r",
		"http://127.0.0.1:8080/Octo/Repo":   "127.0.0.1:8080 Octo/Repo",
		"https://github.com/o":              "",
		"https://github.com/o/r/tree/main":  "",
		"/srv/repos/local":                  "",
		"ftp://github.com/o/r":              "",
		"https://ghe.corp/api/v3/repos/o/r": "",
	}
	for in, want := range cases {
		host, repo, ok := parseRepoURL(in)
		got := ""
		if ok {
			got = host + " " + repo.String()
		}
		if got != want {
			t.Errorf("parseRepoURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestThreadRef(t *testing.T) {
	t.Parallel()
	for _, th := range []Thread{{Repo: Repo{"o", "r"}, Number: 12}, {Repo: Repo{"o", "r.js"}, Number: 1, CommentID: 4927004},
		{Repo: Repo{"o", "r"}, Number: 7, CommentID: 88, ReviewComment: true, Branch: "hero/12-fix-leap-years"},
		{Repo: Repo{"o", "r"}, Number: 7, Branch: "hero/x"}} {
		got, err := ParseThread(th.String())
		if err != nil || got != th {
			t.Errorf("round trip %v: %v %v", th, got, err)
		}
	}
	for _, bad := range []string{"", "o/r", "o/r#", "o/r#0", "o/r#x", "r#1", "o/r#1@c", "o/r#1@cx", "C1/1.0", "o/r#1@x5", "o/r#1@r", "o/r#1 on ", "o/r#1 on -x", "o/r#1 on a b"} {
		if _, err := ParseThread(bad); err == nil {
			t.Errorf("ParseThread(%q) accepted", bad)
		}
	}
}

func TestCommandsOnARunningIssue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	ctx := t.Context()
	ex := &store.Execution{ProjectID: e.project.ID, Status: store.StatusRunning, Surface: "github", ThreadRef: "Codertocat/Hello-World#1@c5",
		Requester: "github:Codertocat", Task: "fix", Model: "m", CreatedAt: time.Now(), UpdatedAt: time.Now(), LeaseUntil: time.Now()}
	if err := e.db.CreateExecution(ctx, ex); err != nil {
		t.Fatal(err)
	}
	other := &store.Execution{ProjectID: e.project.ID, Status: store.StatusRunning, Surface: "github", ThreadRef: "Codertocat/Hello-World#2",
		Requester: "github:x", Task: "other", Model: "m", CreatedAt: time.Now(), UpdatedAt: time.Now(), LeaseUntil: time.Now()}
	if err := e.db.CreateExecution(ctx, other); err != nil {
		t.Fatal(err)
	}
	// As a start on the issue records them (see bot.Dispatcher).
	for _, x := range []*store.Execution{ex, other} {
		th, _ := ParseThread(x.ThreadRef)
		if err := e.db.LinkThread(ctx, "github", Thread{Repo: th.Repo, Number: th.Number}.String(), x.ID); err != nil {
			t.Fatal(err)
		}
	}
	rec := e.rec()
	e.deliver("issue_comment", "s1", mentionComment(t, "@hero also cover February 29", "OWNER", "Codertocat", "User"))
	if err := e.waitHandled("s1"); err != nil {
		t.Fatal(err)
	}
	if steers := rec.Steers(); len(rec.Starts()) != 0 || len(steers) != 1 || steers[0] != (enginetest.Steered{ID: ex.ID, Body: "also cover February 29"}) {
		t.Fatalf("steer: starts %d, steers %+v", len(rec.Starts()), steers)
	}
	e.deliver("issue_comment", "s2", mentionComment(t, "/hero status", "OWNER", "Codertocat", "User"))
	e.deliver("issue_comment", "s3", mentionComment(t, "/hero cancel", "OWNER", "Codertocat", "User"))
	for _, id := range []string{"s2", "s3"} {
		if err := e.waitHandled(id); err != nil {
			t.Fatal(err)
		}
	}
	if cancels := rec.Cancels(); len(cancels) != 1 || cancels[0] != ex.ID {
		t.Fatalf("cancels %v, want [%s]", cancels, ex.ID)
	}
	cs := e.api.Comments()
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "Run `"+ex.ID+"` is *running*") {
		t.Fatalf("status reply %+v", cs)
	}
	// An open ask_human question is answered by the next comment.
	q := &store.Confirmation{ExecutionID: ex.ID, ProjectID: e.project.ID, Kind: store.ConfirmKindQuestion, Tool: "ask_human", Action: "Which calendar?",
		Status: store.ConfirmPending, ExpiresAt: time.Now().Add(time.Hour), CreatedAt: time.Now()}
	if err := e.db.CreateConfirmation(ctx, q); err != nil {
		t.Fatal(err)
	}
	e.deliver("issue_comment", "s4", mentionComment(t, "@hero the Gregorian one", "OWNER", "Codertocat", "User"))
	if err := e.waitHandled("s4"); err != nil {
		t.Fatal(err)
	}
	if decides := decided(rec); len(decides) != 1 || decides[0] != q.ID+":github:Codertocat" || len(rec.Steers()) != 1 {
		t.Fatalf("answer: decides %v steers %+v", decides, rec.Steers())
	}
}
