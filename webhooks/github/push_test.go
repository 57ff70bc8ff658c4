package github

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/hero-dev/hero/store"
)

// A push delivery to a project's repository is passed on (OnPush: the
// project's mirror is fetched before the next run asks); tags and
// repositories that are no project are not.
func TestPushDeliveryReachesOnPush(t *testing.T) {
	t.Parallel()
	db := openStore(t, t.TempDir())
	if err := db.CreateProject(t.Context(), &store.Project{Name: "p", RepoURL: fixtureRepo, DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	type push struct{ project, branch string }
	var got []push
	svc, err := NewService(Config{Publisher: newTestPublisher(t, PublisherConfig{APIURL: "http://127.0.0.1:1/", Credentials: StaticToken("x"), WritePace: -1}),
		Store: db, Engine: newRecorder(db), BotLogin: "hero-bot", Log: slog.New(slog.DiscardHandler),
		OnPush: func(_ context.Context, p *store.Project, branch string) { got = append(got, push{p.Name, branch}) }})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct{ ref, repo string }{
		{"refs/heads/main", fixtureRepo},
		{"refs/tags/v1", fixtureRepo},
		{"refs/heads/main", "https://github.com/someone/else"},
		{"refs/heads/feature/x", fixtureRepo},
	} {
		body, _ := json.Marshal(map[string]any{"ref": c.ref, "repository": map[string]any{"html_url": c.repo, "full_name": "x/y"}})
		d := &store.Delivery{Source: Source, DeliveryID: "push-" + string(rune('a'+i)), Event: "push", Payload: body}
		if err := svc.HandleDelivery(t.Context(), d); err != nil {
			t.Fatalf("%s %s: %v", c.ref, c.repo, err)
		}
	}
	if len(got) != 2 || got[0] != (push{"p", "main"}) || got[1] != (push{"p", "feature/x"}) {
		t.Fatalf("OnPush heard %v", got)
	}
}
