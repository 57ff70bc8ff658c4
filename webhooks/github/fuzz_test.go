package github

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hero-dev/hero/inbox"
	"github.com/hero-dev/hero/store"
)

// FuzzHandleDelivery feeds any event name and body the intake would
// accept to the delivery handler, on a real store with a project for the
// recorded payloads' repository: it never panics, a body that does not
// decode is parked at once (a permanent error), and the replay key of
// what decodes fits its column. The seeds are the recorded payloads in
// testdata (and, as comments that call hero, the same with "@hero").
// GitHub's API is unreachable here, so handling that needs it fails with
// a retryable error, which is allowed.
func FuzzHandleDelivery(f *testing.F) {
	var names []string
	for _, glob := range []string{fixtures + "*.json", "testdata/*.json"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		names = append(names, m...)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		event, _, _ := strings.Cut(filepath.Base(name), ".")
		f.Add(event, b)
	}
	f.Add("issue_comment", fixture(f, "issue_comment.created.json", map[string]any{"comment.body": "@hero fix it", "comment.author_association": "OWNER"}))
	f.Add("issue_comment", fixture(f, "issue_comment.created.json", map[string]any{"comment.body": "/hero approve c1", "comment.author_association": "NONE"}))
	f.Add("issues", fixture(f, "issues.labeled.json", map[string]any{"label.name": "hero", "issue.id": "not a number"}))
	f.Add("pull_request_review", []byte(`{"action":"submitted","review":{"body":"@hero","state":"commented"},"pull_request":{},"repository":{"html_url":"::"}}`))
	if len(names) < 15 {
		f.Fatalf("only %d recorded payloads", len(names))
	}

	db := openStore(f, f.TempDir())
	if err := db.CreateProject(f.Context(), &store.Project{Name: "fuzz", RepoURL: fixtureRepo, DefaultBranch: "main"}); err != nil {
		f.Fatal(err)
	}
	svc, err := NewService(Config{Publisher: newTestPublisher(f, PublisherConfig{APIURL: "http://127.0.0.1:1/", Credentials: StaticToken("x"), WritePace: -1}),
		Store: db, Engine: newRecorder(db), BotLogin: "hero-bot", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		payload, err := jsonPayload("application/json", body)
		if err != nil || event == "" || len(event) > 255 {
			return // the intake refuses it: it is never stored
		}
		d := &store.Delivery{Source: Source, DeliveryID: fmt.Sprintf("fuzz-%d", n.Add(1)), Event: event, Payload: payload}
		herr := svc.HandleDelivery(t.Context(), d)
		var p eventPayload
		if uerr := json.Unmarshal(payload, &p); uerr != nil {
			if herr == nil || !errors.Is(herr, inbox.ErrPermanent) {
				t.Fatalf("undecodable payload (%v) handled with %v, want a permanent error", uerr, herr)
			}
			return
		}
		if k := replayKey(event, &p); len(k) > 255 {
			t.Fatalf("replay key of %d bytes", len(k))
		}
		if p.Comment != nil {
			svc.commandText(p.Comment.Body)
		}
	})
}
