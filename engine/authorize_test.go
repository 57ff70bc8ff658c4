package engine_test

import (
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
)

// Start authorises like decide, cancel and steer: the member role is
// needed, whoever asks and from wherever; nothing is recorded for a
// refused start.
func TestStartNeedsMemberRole(t *testing.T) {
	t.Parallel()
	fin := openaitest.Tools(call("finish", `{"summary":"ok"}`))
	model := openaitest.NewServer(t, fin, fin, fin, fin)
	h := newHarness(t, model)
	ctx := t.Context()
	viewer, err := h.db.UpsertUser(ctx, "vic@example.com", "Vic")
	must(t, err)
	must(t, h.db.SetMember(ctx, h.project.ID, viewer.ID, store.RoleViewer))
	member, err := h.db.UpsertUser(ctx, "meg@example.com", "Meg")
	must(t, err)
	must(t, h.db.SetMember(ctx, h.project.ID, member.ID, store.RoleMember))
	stranger, err := h.db.UpsertUser(ctx, "sam@example.com", "Sam")
	must(t, err)
	admin, err := h.db.UpsertUser(ctx, "root@example.com", "Root")
	must(t, err)
	must(t, h.db.SetUserAdmin(ctx, admin.ID, true))

	for _, tc := range []struct {
		name string
		by   engine.Principal
		ok   bool
	}{
		{"unknown person", engine.Principal{ID: "slack:U9"}, false},
		{"platform grants viewer", engine.Principal{ID: "github:v", Granted: store.RoleViewer}, false},
		{"platform grants member", engine.Principal{ID: "github:w", Granted: store.RoleMember}, true},
		{"hero viewer", engine.Principal{ID: "slack:U2", UserID: viewer.ID}, false},
		// A linked person holds their hero role, whatever the platform says.
		{"hero viewer with a platform grant", engine.Principal{ID: "github:v2", UserID: viewer.ID, Granted: store.RoleApprover}, false},
		{"hero non-member", engine.Principal{ID: "slack:U3", UserID: stranger.ID}, false},
		{"hero member", engine.Principal{ID: "slack:U4", UserID: member.ID}, true},
		{"site admin", engine.Principal{ID: "web:root", UserID: admin.ID}, true},
		{"local operator", engine.Operator("local:me"), true},
	} {
		ex, err := h.eng.Start(h.ctx, engine.StartRequest{Project: h.project, Task: "look", Surface: "slack", ThreadRef: "C1/1.0", By: tc.by})
		if tc.ok {
			if err != nil {
				t.Errorf("%s: start refused: %v", tc.name, err)
				continue
			}
			h.outcome(ex.ID)
			continue
		}
		errIs(t, err, engine.ErrNotAllowed)
		if ex != nil {
			t.Errorf("%s: a refused start returned run %s", tc.name, ex.ID)
		}
	}
	exs, err := h.db.ListExecutions(ctx, store.ExecutionFilter{ProjectID: h.project.ID})
	must(t, err)
	if len(exs) != 4 {
		t.Fatalf("%d runs recorded, want the 4 allowed ones", len(exs))
	}
}
