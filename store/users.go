package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// normalizeEmail lower-cases an address so one person is one user however
// a login provider capitalises it.
func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// UpsertUser returns the user with this email, creating it on first sight
// and updating its display name otherwise (logins refresh names).
func (db *DB) UpsertUser(ctx context.Context, email, name string) (*User, error) {
	email = normalizeEmail(email)
	if email == "" {
		return nil, errors.New("upsert user: email is empty")
	}
	u := &User{Email: email, Name: name, CreatedAt: now()}
	if err := db.upsert(ctx, db.bun, u, []string{"email"}, []string{"name"}); err != nil {
		return nil, wrap(err, "upsert user %q", email)
	}
	return db.UserByEmail(ctx, email)
}

// UserByID returns a user; ErrNotFound if there is none.
func (db *DB) UserByID(ctx context.Context, id int64) (*User, error) {
	u := new(User)
	if err := db.bun.NewSelect().Model(u).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, wrap(err, "user %d", id)
	}
	return u, nil
}

// UserByEmail returns a user (case-insensitively); ErrNotFound if none.
func (db *DB) UserByEmail(ctx context.Context, email string) (*User, error) {
	email = normalizeEmail(email)
	u := new(User)
	if err := db.bun.NewSelect().Model(u).Where("email = ?", email).Scan(ctx); err != nil {
		return nil, wrap(err, "user %q", email)
	}
	return u, nil
}

// LinkIdentity maps a platform account (provider "slack", externalID
// "T1/U2") to a hero user, replacing an earlier mapping of that account.
// ErrNotFound if the user does not exist.
func (db *DB) LinkIdentity(ctx context.Context, provider, externalID string, userID int64) error {
	if provider == "" || externalID == "" {
		return errors.New("link identity: provider and external id are required")
	}
	if _, err := db.UserByID(ctx, userID); err != nil {
		return fmt.Errorf("link identity %s:%s: %w", provider, externalID, err)
	}
	id := &Identity{Provider: provider, ExternalID: externalID, UserID: userID, CreatedAt: now()}
	if err := db.upsert(ctx, db.bun, id, []string{"provider", "external_id"}, []string{"user_id"}); err != nil {
		return wrap(err, "link identity %s:%s", provider, externalID)
	}
	return nil
}

// UserByIdentity returns the user a platform account is linked to;
// ErrNotFound if it is not linked.
func (db *DB) UserByIdentity(ctx context.Context, provider, externalID string) (*User, error) {
	u := new(User)
	err := db.bun.NewSelect().Model(u).
		Join("JOIN identities AS i ON i.user_id = ?TableAlias.id").
		Where("i.provider = ? AND i.external_id = ?", provider, externalID).
		Scan(ctx)
	if err != nil {
		return nil, wrap(err, "user for identity %s:%s", provider, externalID)
	}
	return u, nil
}

// CreateProject inserts p and sets its ID and times. Governance and sandbox
// values are stored as given (zero means "server default" to the engine).
// ErrConflict if the name is taken.
func (db *DB) CreateProject(ctx context.Context, p *Project) error {
	if strings.TrimSpace(p.Name) == "" {
		return errors.New("create project: name is empty")
	}
	if p.PolicyRules == nil {
		p.PolicyRules = []PolicyRule{}
	}
	p.CreatedAt = now()
	p.UpdatedAt = p.CreatedAt
	if _, err := db.bun.NewInsert().Model(p).Exec(ctx); err != nil {
		return wrap(err, "create project %q", p.Name)
	}
	return nil
}

// ProjectByName returns a project; ErrNotFound if none has that name.
func (db *DB) ProjectByName(ctx context.Context, name string) (*Project, error) {
	p := new(Project)
	if err := db.bun.NewSelect().Model(p).Where("name = ?", name).Scan(ctx); err != nil {
		return nil, wrap(err, "project %q", name)
	}
	return p, nil
}

// ProjectByID returns a project; ErrNotFound if none has that id.
func (db *DB) ProjectByID(ctx context.Context, id int64) (*Project, error) {
	p := new(Project)
	if err := db.bun.NewSelect().Model(p).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, wrap(err, "project %d", id)
	}
	return p, nil
}

// ListProjects returns every project, by name.
func (db *DB) ListProjects(ctx context.Context) ([]Project, error) {
	var ps []Project
	if err := db.bun.NewSelect().Model(&ps).Order("name").Scan(ctx); err != nil {
		return nil, wrap(err, "list projects")
	}
	return ps, nil
}

// UpdateProject saves every field of p (by ID) and sets UpdatedAt.
// ErrNotFound if it does not exist, ErrConflict if renamed onto another
// project's name.
func (db *DB) UpdateProject(ctx context.Context, p *Project) error {
	if strings.TrimSpace(p.Name) == "" {
		return errors.New("update project: name is empty")
	}
	if p.PolicyRules == nil {
		p.PolicyRules = []PolicyRule{}
	}
	p.UpdatedAt = now()
	res, err := db.bun.NewUpdate().Model(p).WherePK().ExcludeColumn("id", "created_at").Exec(ctx)
	if err != nil {
		return wrap(err, "update project %q", p.Name)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(ErrNotFound, "update project %d", p.ID)
	}
	return nil
}

// DeleteProject removes a project with its members and secrets. Its
// executions stay, for history. ErrNotFound if there is no such project.
func (db *DB) DeleteProject(ctx context.Context, name string) error {
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		p := new(Project)
		if err := db.forUpdate(tx.NewSelect().Model(p).Where("name = ?", name)).Scan(ctx); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*ProjectMember)(nil)).Where("project_id = ?", p.ID).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*ProjectSecret)(nil)).Where("project_id = ?", p.ID).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewDelete().Model(p).WherePK().Exec(ctx)
		return err
	})
	return wrap(err, "delete project %q", name)
}

// SetMember gives a user a role in a project, replacing any earlier role.
// ErrNotFound if the project or user does not exist.
func (db *DB) SetMember(ctx context.Context, projectID, userID int64, role Role) error {
	if !role.Valid() {
		return fmt.Errorf("set member: unknown role %q (want owner, admin, approver, member or viewer)", role)
	}
	if _, err := db.ProjectByID(ctx, projectID); err != nil {
		return fmt.Errorf("set member: %w", err)
	}
	if _, err := db.UserByID(ctx, userID); err != nil {
		return fmt.Errorf("set member: %w", err)
	}
	m := &ProjectMember{ProjectID: projectID, UserID: userID, Role: role, CreatedAt: now()}
	if err := db.upsert(ctx, db.bun, m, []string{"project_id", "user_id"}, []string{"role"}); err != nil {
		return wrap(err, "set member %d of project %d", userID, projectID)
	}
	return nil
}

// RemoveMember takes a user out of a project; ErrNotFound if not a member.
func (db *DB) RemoveMember(ctx context.Context, projectID, userID int64) error {
	res, err := db.bun.NewDelete().Model((*ProjectMember)(nil)).
		Where("project_id = ? AND user_id = ?", projectID, userID).Exec(ctx)
	if err != nil {
		return wrap(err, "remove member %d of project %d", userID, projectID)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(ErrNotFound, "remove member %d of project %d", userID, projectID)
	}
	return nil
}

// MemberRole returns the user's role in the project, or "" if the user is
// not a member.
func (db *DB) MemberRole(ctx context.Context, projectID, userID int64) (Role, error) {
	var role Role
	err := db.bun.NewSelect().Model((*ProjectMember)(nil)).Column("role").
		Where("project_id = ? AND user_id = ?", projectID, userID).Scan(ctx, &role)
	if err != nil {
		if err = wrap(err, "member role"); errors.Is(err, ErrNotFound) {
			return "", nil
		}
		return "", fmt.Errorf("member %d of project %d: %w", userID, projectID, err)
	}
	return role, nil
}

// Member is a project member with the user's email and name, for display.
type Member struct {
	UserID    int64     `bun:"user_id"`
	Email     string    `bun:"email"`
	Name      string    `bun:"name"`
	Role      Role      `bun:"role"`
	CreatedAt time.Time `bun:"created_at"`
}

// ListMembers returns a project's members by email.
func (db *DB) ListMembers(ctx context.Context, projectID int64) ([]Member, error) {
	var ms []Member
	err := db.bun.NewSelect().
		TableExpr("project_members AS m").
		Join("JOIN users AS u ON u.id = m.user_id").
		ColumnExpr("m.user_id, u.email, u.name, m.role, m.created_at").
		Where("m.project_id = ?", projectID).
		Order("u.email").
		Scan(ctx, &ms)
	if err != nil {
		return nil, wrap(err, "list members of project %d", projectID)
	}
	return ms, nil
}
