package bot

import (
	"testing"

	"github.com/hero-dev/hero/store"
)

func TestGitHubRole(t *testing.T) {
	for perm, want := range map[string]store.Role{
		"admin": store.RoleApprover, "maintain": store.RoleApprover, "Write": store.RoleMember, "push": store.RoleMember,
		"triage": store.RoleViewer, "read": store.RoleViewer, "pull": store.RoleViewer, "none": "", "": "", "owner": "",
	} {
		if got := GitHubRole(perm); got != want {
			t.Errorf("GitHubRole(%q) = %q, want %q", perm, got, want)
		}
	}
}
