package store_test

import (
	"testing"

	"github.com/hero-dev/hero/store"
)

func TestRoleOrder(t *testing.T) {
	for _, tc := range []struct {
		r, min store.Role
		want   bool
	}{
		{store.RoleOwner, store.RoleAdmin, true},
		{store.RoleAdmin, store.RoleApprover, true},
		{store.RoleApprover, store.RoleApprover, true},
		{store.RoleMember, store.RoleApprover, false},
		{store.RoleViewer, store.RoleMember, false},
		{store.RoleViewer, store.RoleViewer, true},
		{"", store.RoleViewer, false},
		{"", "", false}, // no role is never enough
		{"root", store.RoleViewer, false},
	} {
		if got := tc.r.AtLeast(tc.min); got != tc.want {
			t.Errorf("%q.AtLeast(%q) = %v, want %v", tc.r, tc.min, got, tc.want)
		}
	}
	if got := store.RoleMember.Max(store.RoleApprover); got != store.RoleApprover {
		t.Errorf("max: %q", got)
	}
	if r, err := store.ParseRole(" Approver "); err != nil || r != store.RoleApprover {
		t.Errorf("parse: %q %v", r, err)
	}
	if _, err := store.ParseRole("root"); err == nil {
		t.Error("parse accepted an unknown role")
	}
}
