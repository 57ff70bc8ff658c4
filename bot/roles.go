package bot

import (
	"strings"

	"github.com/hero-dev/hero/store"
)

// GitHubRole is the hero role a GitHub repository permission grants to
// a person who has not linked a hero account (a linked account holds its
// hero role instead; see engine.Principal): maintainers and admins
// approve, people with write access start and steer work, read and
// triage access let people see runs (viewer), and no access grants
// nothing. permission is the role name the
// collaborator permission API reports (admin, maintain, write, triage,
// read, none), or its legacy "push"/"pull" spelling.
func GitHubRole(permission string) store.Role {
	switch strings.ToLower(strings.TrimSpace(permission)) {
	case "admin", "maintain":
		return store.RoleApprover
	case "write", "push":
		return store.RoleMember
	case "triage", "read", "pull":
		return store.RoleViewer
	}
	return ""
}
