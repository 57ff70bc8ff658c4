// Package membership holds the rules for who belongs to a project and in
// which role, for the settings page and the command line alike: who may
// give which role, that a project always keeps an owner, and the audit
// record of every change. Surfaces only translate its errors.
package membership

import (
	"context"
	"errors"
	"fmt"
	"github.com/hero-dev/hero/refusal"
	"log/slog"
	"strings"

	"github.com/hero-dev/hero/store"
)

// Kind, Error and KindOf are the rules' refusals (package refusal),
// named here so callers keep saying membership.Forbidden.
type (
	Kind  = refusal.Kind
	Error = refusal.Error
)

// Why the rules refuse a request.
const (
	Invalid   = refusal.Invalid
	Forbidden = refusal.Forbidden
	NotFound  = refusal.NotFound
	LastOwner = refusal.LastOwner
)

// KindOf returns the Kind of a refusal, or 0 for other errors.
func KindOf(err error) Kind { return refusal.KindOf(err) }

var refuse = refusal.New

// Actor is who makes a change.
type Actor struct {
	// Name is recorded in the audit log: an email on the settings page,
	// local:USER for the operator on the command line.
	Name string
	// Role is the actor's role in the project (owner for site admins and
	// for the local operator).
	Role store.Role
	// Via is where the change was made: "settings page", "command line".
	Via string
}

// Store is what the rules need from the database.
type Store interface {
	EnsureUser(ctx context.Context, email, name string) (*store.User, error)
	UserByEmail(ctx context.Context, email string) (*store.User, error)
	MemberRole(ctx context.Context, projectID, userID int64) (store.Role, error)
	ListMembers(ctx context.Context, projectID int64) ([]store.Member, error)
	SetMember(ctx context.Context, projectID, userID int64, role store.Role) error
	RemoveMember(ctx context.Context, projectID, userID int64) error
	AddProjectAudit(ctx context.Context, a *store.ProjectAudit) error
}

// Rules applies membership changes. Every accepted change is written to
// the project audit log and to log.
type Rules struct {
	db  Store
	log *slog.Logger
}

// New returns the rules over db, logging accepted changes to log.
func New(db Store, log *slog.Logger) (*Rules, error) {
	if db == nil {
		return nil, errors.New("membership: no store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Rules{db: db, log: log}, nil
}

// NormaliseEmail lower-cases and trims an email and checks it looks like
// one; the error is Invalid.
func NormaliseEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if !strings.Contains(e, "@") || strings.ContainsAny(e, " <>\"\t\r\n") || len(e) > 254 || strings.HasPrefix(e, "@") || strings.HasSuffix(e, "@") {
		return "", refuse(Invalid, "%q is not an email address. Add people by the email they log in with.", email)
	}
	return e, nil
}

// Set adds the person with email to the project in role, or changes
// their role. Admins manage everyone below owner; only owners make or
// unmake owners; the last owner stays. Refusals are *Error.
func (r *Rules) Set(ctx context.Context, p *store.Project, actor Actor, email string, role store.Role) (*store.User, error) {
	if !role.Valid() {
		names := make([]string, 0, 5)
		for _, x := range store.Roles() {
			names = append(names, string(x))
		}
		return nil, refuse(Invalid, "Role must be one of %s; got %q.", strings.Join(names, ", "), role)
	}
	email, err := NormaliseEmail(email)
	if err != nil {
		return nil, err
	}
	if !actor.Role.AtLeast(store.RoleAdmin) {
		return nil, refuse(Forbidden, "Only an admin or owner of project %s can change its members.", p.Name)
	}
	u, err := r.db.EnsureUser(ctx, email, "")
	if err != nil {
		return nil, fmt.Errorf("add member %s: %w", email, err)
	}
	old, err := r.db.MemberRole(ctx, p.ID, u.ID)
	if err != nil {
		return nil, fmt.Errorf("add member %s: %w", email, err)
	}
	if (role == store.RoleOwner || old == store.RoleOwner) && actor.Role != store.RoleOwner {
		return nil, refuse(Forbidden, "Only an owner can make someone an owner or change an owner's role.")
	}
	if old == store.RoleOwner && role != store.RoleOwner {
		if err := r.keepAnOwner(ctx, p); err != nil {
			return nil, err
		}
	}
	if err := r.db.SetMember(ctx, p.ID, u.ID, role); err != nil {
		return nil, fmt.Errorf("add member %s: %w", email, err)
	}
	detail := "added as " + string(role)
	if old != "" {
		detail = string(old) + " → " + string(role)
	}
	if err := r.audit(ctx, p, actor, store.AuditMemberSet, u.Email, detail); err != nil {
		return nil, err
	}
	return u, nil
}

// Remove takes the member with userID out of the project. Only owners
// remove owners, and the last owner stays. Refusals are *Error.
func (r *Rules) Remove(ctx context.Context, p *store.Project, actor Actor, userID int64) error {
	if !actor.Role.AtLeast(store.RoleAdmin) {
		return refuse(Forbidden, "Only an admin or owner of project %s can change its members.", p.Name)
	}
	old, err := r.db.MemberRole(ctx, p.ID, userID)
	if err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	if old == "" {
		return refuse(NotFound, "That person is not a member of project %s.", p.Name)
	}
	if old == store.RoleOwner {
		if actor.Role != store.RoleOwner {
			return refuse(Forbidden, "Only an owner can remove an owner.")
		}
		if err := r.keepAnOwner(ctx, p); err != nil {
			return err
		}
	}
	var email string
	ms, err := r.db.ListMembers(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	for _, m := range ms {
		if m.UserID == userID {
			email = m.Email
		}
	}
	if err := r.db.RemoveMember(ctx, p.ID, userID); err != nil {
		return fmt.Errorf("remove member %s: %w", email, err)
	}
	return r.audit(ctx, p, actor, store.AuditMemberRemoved, email, "was "+string(old))
}

// RemoveByEmail is Remove for the person with email.
func (r *Rules) RemoveByEmail(ctx context.Context, p *store.Project, actor Actor, email string) error {
	e, err := NormaliseEmail(email)
	if err != nil {
		return err
	}
	u, err := r.db.UserByEmail(ctx, e)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(NotFound, "%s is not a member of project %s.", e, p.Name)
	}
	if err != nil {
		return fmt.Errorf("remove member %s: %w", e, err)
	}
	if err := r.Remove(ctx, p, actor, u.ID); err != nil {
		if KindOf(err) == NotFound {
			return refuse(NotFound, "%s is not a member of project %s.", e, p.Name)
		}
		return err
	}
	return nil
}

// keepAnOwner refuses a change that takes away the project's only owner.
func (r *Rules) keepAnOwner(ctx context.Context, p *store.Project) error {
	ms, err := r.db.ListMembers(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("count the owners of project %s: %w", p.Name, err)
	}
	owners := 0
	for _, m := range ms {
		if m.Role == store.RoleOwner {
			owners++
		}
	}
	if owners <= 1 {
		return refuse(LastOwner, "The project needs at least one owner: make someone else owner first.")
	}
	return nil
}

func (r *Rules) audit(ctx context.Context, p *store.Project, actor Actor, action, subject, detail string) error {
	if err := r.db.AddProjectAudit(ctx, &store.ProjectAudit{ProjectID: p.ID, Action: action, Subject: subject, Detail: detail, Actor: actor.Name, Via: actor.Via}); err != nil {
		return fmt.Errorf("%s %s: %w", action, subject, err)
	}
	r.log.Info(action, "project", p.Name, "member", subject, "change", detail, "by", actor.Name, "via", actor.Via)
	return nil
}
