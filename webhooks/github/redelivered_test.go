package github

import (
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/store"
)

// A start comment handled twice (the inbox delivers at least once; here
// the same delivery is handled again after it completed) starts one run
// and posts one progress comment: the delivery → run record holds for
// GitHub as for every surface.
func TestStartDeliveredTwiceStartsOneRun(t *testing.T) {
	t.Parallel()
	db := openStore(t, t.TempDir())
	eng := enginetest.New(t, db, enginetest.Script(enginetest.Finish("fixed")))
	e := newEnv(t, db, nil, eng, fixtureRepo)
	eng.AddSurface(e.svc)
	body := mentionComment(t, "@hero fix the leap year", "COLLABORATOR", "Codertocat", "User")
	e.deliver("issue_comment", "dup-1", body)
	if err := e.waitHandled("dup-1"); err != nil {
		t.Fatal(err)
	}
	// Handled again, as after a crash before the inbox recorded it done.
	d := &store.Delivery{Source: Source, DeliveryID: "dup-1", Event: "issue_comment", Payload: body}
	if err := e.svc.HandleDelivery(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	exs, err := db.ListExecutions(t.Context(), store.ExecutionFilter{ProjectID: e.project.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 1 {
		t.Fatalf("%d runs for one delivery", len(exs))
	}
	enginetest.WaitFinished(t, db, exs[0].ID)
	enginetest.Eventually(t, "the summary comment", func() bool {
		for _, c := range e.api.Comments() {
			if strings.Contains(c.Body, "tokens in") {
				return true
			}
		}
		return false
	})
	progress := 0
	for _, c := range e.api.Comments() {
		if strings.HasPrefix(c.Body, "**hero** · run `"+exs[0].ID+"`") {
			progress++
		}
	}
	if progress != 1 {
		t.Fatalf("%d progress comments, want 1: %+v", progress, e.api.Comments())
	}
}

// `/hero status <id>` finds any run of the project, not only among the
// newest 200.
func TestStatusFindsARunOlderThanTheNewest200(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	ctx := t.Context()
	var oldest string
	for i := range 201 {
		ex := &store.Execution{ProjectID: e.project.ID, Status: store.StatusSucceeded, Surface: "github", ThreadRef: "Codertocat/Hello-World#9",
			Requester: "github:Codertocat", Task: "t", Model: "m", CreatedAt: time.Now().Add(time.Duration(i-500) * time.Minute), UpdatedAt: time.Now(), LeaseUntil: time.Now()}
		if err := e.db.CreateExecution(ctx, ex); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			oldest = ex.ID
		}
	}
	e.deliver("issue_comment", "st-old", mentionComment(t, "/hero status "+oldest, "COLLABORATOR", "Codertocat", "User"))
	if err := e.waitHandled("st-old"); err != nil {
		t.Fatal(err)
	}
	if cs := e.api.Comments(); len(cs) != 1 || !strings.Contains(cs[0].Body, "Run `"+oldest+"` is *succeeded*") {
		t.Fatalf("comments %+v", cs)
	}
}
