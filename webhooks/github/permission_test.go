package github

import (
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// The repository permission, read from the API, decides what an unlinked
// account may do; the payload's author_association (MEMBER: of the
// organisation) does not.
func TestRepositoryPermissionDecidesNotAssociation(t *testing.T) {
	t.Parallel()
	db := openStore(t, t.TempDir())
	rec := newRecorder(db)
	rec.DecideWith = func(id string, d engine.Decision) (*store.Confirmation, error) {
		return &store.Confirmation{ID: id, Status: store.ConfirmApproved}, nil
	}
	e := newEnv(t, db, nil, rec, fixtureRepo)
	repo := "Codertocat/Hello-World"
	e.api.SetPermission(repo, "reader", "read")
	e.api.SetPermission(repo, "triager", "triage")
	e.api.SetPermission(repo, "maint", "maintain")
	e.api.SetPermission(repo, "writer", "write")

	// An organisation member with read access only: no run, and a reply
	// that says why.
	e.deliver("issue_comment", "p1", mentionComment(t, "@hero fix it", "MEMBER", "reader", "User"))
	if err := e.waitHandled("p1"); err != nil {
		t.Fatal(err)
	}
	e.deliver("issue_comment", "p2", mentionComment(t, "@hero fix it", "COLLABORATOR", "triager", "User"))
	if err := e.waitHandled("p2"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.rec().Starts()); n != 0 {
		t.Fatalf("read and triage access started %d runs", n)
	}
	cs := e.api.Comments()
	if len(cs) != 2 || !strings.Contains(cs[0].Body, "@reader You have read access to this repository") ||
		!strings.Contains(cs[1].Body, "@triager You have triage access") || !strings.Contains(cs[1].Body, "write access or above") {
		t.Fatalf("comments = %+v", cs)
	}

	// Write access starts a run as a member; maintain approves.
	e.deliver("issue_comment", "p3", mentionComment(t, "@hero fix it", "COLLABORATOR", "writer", "User"))
	if err := e.waitHandled("p3"); err != nil {
		t.Fatal(err)
	}
	starts := rec.Starts()
	if len(starts) != 1 || starts[0].By.Granted != store.RoleMember || starts[0].By.ID != "github:writer" {
		t.Fatalf("starts = %+v", starts)
	}
	e.deliver("issue_comment", "p4", mentionComment(t, "/hero approve c1", "CONTRIBUTOR", "maint", "User"))
	if err := e.waitHandled("p4"); err != nil {
		t.Fatal(err)
	}
	if decides := decided(rec); len(decides) != 0 {
		t.Fatalf("a CONTRIBUTOR association reached the engine: %v (strangers get a courtesy reply, with no API call)", decides)
	}
	e.deliver("issue_comment", "p5", mentionComment(t, "/hero approve c1", "MEMBER", "maint", "User"))
	if err := e.waitHandled("p5"); err != nil {
		t.Fatal(err)
	}
	if decides := rec.Decides(); len(decides) != 1 || decides[0].ID != "c1" || decides[0].Decision.By.ID != "github:maint" || decides[0].Decision.By.Granted != store.RoleApprover {
		t.Fatalf("decides = %+v", decides)
	}
}

// The permission is read once a minute per person and repository, not on
// every comment.
func TestRepositoryPermissionIsCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo)
	for _, id := range []string{"q1", "q2", "q3"} {
		e.deliver("issue_comment", id, mentionComment(t, "/hero status", "COLLABORATOR", "writer", "User"))
		if err := e.waitHandled(id); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, c := range e.api.Calls() {
		if strings.HasSuffix(c.Path, "/collaborators/writer/permission") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("permission read %d times for three comments, want 1", n)
	}
}
