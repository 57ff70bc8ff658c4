package membership_test

import (
	"strings"
	"testing"

	"github.com/hero-dev/hero/membership"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

func setup(t *testing.T) (*store.DB, *membership.Rules, *store.Project) {
	t.Helper()
	db := storetest.Open(t)
	p := &store.Project{Name: "shop", RepoURL: "https://example.com/shop.git", DefaultBranch: "main"}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	r, err := membership.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db, r, p
}

// The rules the settings page and `hero member` share, one case each.
func TestMembershipRules(t *testing.T) {
	db, r, p := setup(t)
	ctx := t.Context()
	owner := membership.Actor{Name: "olga@example.com", Role: store.RoleOwner, Via: "settings page"}
	admin := membership.Actor{Name: "adam@example.com", Role: store.RoleAdmin, Via: "settings page"}
	member := membership.Actor{Name: "mia@example.com", Role: store.RoleMember, Via: "settings page"}
	operator := membership.Actor{Name: "local:ops", Role: store.RoleOwner, Via: "command line"}

	if _, err := r.Set(ctx, p, operator, "Olga@Example.com ", store.RoleOwner); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		actor        membership.Actor
		email        string
		role         store.Role
		kind         membership.Kind
		wantInErrMsg string
	}{
		{"unknown role", owner, "x@example.com", "god", membership.Invalid, "Role must be one of owner, admin, approver, member, viewer"},
		{"not an email", owner, "x at example", store.RoleMember, membership.Invalid, "is not an email address"},
		{"member may not manage", member, "x@example.com", store.RoleViewer, membership.Forbidden, "Only an admin or owner"},
		{"admin may not make owners", admin, "x@example.com", store.RoleOwner, membership.Forbidden, "Only an owner can make someone an owner"},
		{"admin may not demote an owner", admin, "olga@example.com", store.RoleMember, membership.Forbidden, "Only an owner"},
		{"the last owner stays", owner, "olga@example.com", store.RoleAdmin, membership.LastOwner, "at least one owner"},
	} {
		_, err := r.Set(ctx, p, tc.actor, tc.email, tc.role)
		if membership.KindOf(err) != tc.kind || err == nil || !strings.Contains(err.Error(), tc.wantInErrMsg) {
			t.Errorf("%s: err = %v (kind %d), want kind %d with %q", tc.name, err, membership.KindOf(err), tc.kind, tc.wantInErrMsg)
		}
	}
	if _, err := r.Set(ctx, p, admin, "x@example.com", store.RoleApprover); err != nil {
		t.Fatalf("admin adds an approver: %v", err)
	}
	if _, err := r.Set(ctx, p, admin, "x@example.com", store.RoleAdmin); err != nil {
		t.Fatalf("admin promotes to admin: %v", err)
	}
	if err := r.RemoveByEmail(ctx, p, admin, "olga@example.com"); membership.KindOf(err) != membership.Forbidden {
		t.Errorf("admin removes the owner: %v", err)
	}
	if err := r.RemoveByEmail(ctx, p, operator, "olga@example.com"); membership.KindOf(err) != membership.LastOwner {
		t.Errorf("the last owner removed: %v", err)
	}
	if err := r.RemoveByEmail(ctx, p, operator, "nobody@example.com"); membership.KindOf(err) != membership.NotFound || !strings.Contains(err.Error(), "nobody@example.com is not a member of project shop") {
		t.Errorf("removing a stranger: %v", err)
	}
	if err := r.RemoveByEmail(ctx, p, admin, "x@example.com"); err != nil {
		t.Fatal(err)
	}
	// A second owner frees the first.
	if _, err := r.Set(ctx, p, operator, "second@example.com", store.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveByEmail(ctx, p, owner, "olga@example.com"); err != nil {
		t.Fatalf("removing one of two owners: %v", err)
	}

	audit, err := db.ListProjectAudit(ctx, p.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(audit) - 1; i >= 0; i-- {
		a := audit[i]
		got = append(got, a.Action+" "+a.Subject+" ("+a.Detail+") by "+a.Actor+" via "+a.Via)
	}
	want := []string{
		"member.set olga@example.com (added as owner) by local:ops via command line",
		"member.set x@example.com (added as approver) by adam@example.com via settings page",
		"member.set x@example.com (approver → admin) by adam@example.com via settings page",
		"member.removed x@example.com (was admin) by adam@example.com via settings page",
		"member.set second@example.com (added as owner) by local:ops via command line",
		"member.removed olga@example.com (was owner) by olga@example.com via settings page",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
