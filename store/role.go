package store

import (
	"fmt"
	"strings"
)

// Role is what a person may do in a project. Roles are ordered: each one
// may do everything the roles below it may (see AtLeast). The zero Role
// ("") is no role at all: not a member.
type Role string

// Roles a user can hold in a project, from most to least powerful.
const (
	RoleOwner    Role = "owner"
	RoleAdmin    Role = "admin"
	RoleApprover Role = "approver"
	RoleMember   Role = "member"
	RoleViewer   Role = "viewer"
)

// Roles lists the project roles, most powerful first.
func Roles() []Role { return []Role{RoleOwner, RoleAdmin, RoleApprover, RoleMember, RoleViewer} }

// Rank orders roles: owner 5 … viewer 1; "" (no role) and unknown roles
// are 0.
func (r Role) Rank() int {
	switch r {
	case RoleOwner:
		return 5
	case RoleAdmin:
		return 4
	case RoleApprover:
		return 3
	case RoleMember:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Valid reports whether r is one of the roles (not "").
func (r Role) Valid() bool { return r.Rank() > 0 }

// AtLeast reports whether r is a role that ranks at or above min; no
// role is never enough, whatever min is.
func (r Role) AtLeast(min Role) bool { return r.Valid() && r.Rank() >= min.Rank() }

// Max returns the higher of two roles.
func (r Role) Max(o Role) Role {
	if o.Rank() > r.Rank() {
		return o
	}
	return r
}

// ParseRole reads a role name as people type it ("Approver ").
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !r.Valid() {
		names := make([]string, 0, 5)
		for _, x := range Roles() {
			names = append(names, string(x))
		}
		return "", fmt.Errorf("role must be one of %s; got %q", strings.Join(names, ", "), s)
	}
	return r, nil
}
