package store

import (
	"context"
	"errors"
	"time"

	"github.com/uptrace/bun"
)

// CreateSession stores a new browser session. ErrConflict if the id hash
// is already taken (a random 256-bit id never is).
func (db *DB) CreateSession(ctx context.Context, s *WebSession) error {
	if s.IDHash == "" || s.UserID == 0 || s.CSRFToken == "" {
		return errors.New("create session: id hash, user and csrf token are required")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	if s.LastSeenAt.IsZero() {
		s.LastSeenAt = s.CreatedAt
	}
	if len(s.UserAgent) > 255 {
		s.UserAgent = s.UserAgent[:255]
	}
	if _, err := db.bun.NewInsert().Model(s).Exec(ctx); err != nil {
		return wrap(err, "create session for user %d", s.UserID)
	}
	return nil
}

// SessionByHash returns the session whose id hashes to idHash;
// ErrNotFound if there is none (logged out, or never existed).
func (db *DB) SessionByHash(ctx context.Context, idHash string) (*WebSession, error) {
	s := new(WebSession)
	if err := db.bun.NewSelect().Model(s).Where("id_hash = ?", idHash).Scan(ctx); err != nil {
		return nil, wrap(err, "session")
	}
	return s, nil
}

// TouchSession records activity on a session, for the idle expiry.
func (db *DB) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	_, err := db.bun.NewUpdate().Model((*WebSession)(nil)).Set("last_seen_at = ?", at.UTC()).
		Where("id_hash = ?", idHash).Exec(ctx)
	return wrap(err, "touch session")
}

// DeleteSession ends one session (logout). Deleting a session that does
// not exist is not an error.
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	_, err := db.bun.NewDelete().Model((*WebSession)(nil)).Where("id_hash = ?", idHash).Exec(ctx)
	return wrap(err, "delete session")
}

// DeleteUserSessions ends every session of a user ("log out everywhere")
// and returns how many there were.
func (db *DB) DeleteUserSessions(ctx context.Context, userID int64) (int, error) {
	res, err := db.bun.NewDelete().Model((*WebSession)(nil)).Where("user_id = ?", userID).Exec(ctx)
	if err != nil {
		return 0, wrap(err, "delete sessions of user %d", userID)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// DeleteExpiredSessions removes sessions idle since before idleBefore or
// created before createdBefore, and returns how many it removed.
func (db *DB) DeleteExpiredSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int, error) {
	res, err := db.bun.NewDelete().Model((*WebSession)(nil)).
		Where("last_seen_at < ? OR created_at < ?", idleBefore.UTC(), createdBefore.UTC()).Exec(ctx)
	if err != nil {
		return 0, wrap(err, "delete expired sessions")
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// CreateLoginToken stores a one-time login token (by hash).
func (db *DB) CreateLoginToken(ctx context.Context, t *LoginToken) error {
	if t.TokenHash == "" || t.UserID == 0 || t.ExpiresAt.IsZero() {
		return errors.New("create login token: hash, user and expiry are required")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now()
	}
	if _, err := db.bun.NewInsert().Model(t).Exec(ctx); err != nil {
		return wrap(err, "create login token for user %d", t.UserID)
	}
	return nil
}

// UseLoginToken spends a one-time login token and returns its user. It is
// a conditional UPDATE, so of two concurrent uses exactly one wins.
// ErrNotFound if the token does not exist, was used, or has expired.
func (db *DB) UseLoginToken(ctx context.Context, tokenHash string, at time.Time) (int64, error) {
	at = at.UTC()
	res, err := db.bun.NewUpdate().Model((*LoginToken)(nil)).Set("used_at = ?", at).
		Where("token_hash = ? AND used_at IS NULL AND expires_at > ?", tokenHash, at).Exec(ctx)
	if err != nil {
		return 0, wrap(err, "use login token")
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return 0, wrap(ErrNotFound, "login token is unknown, used or expired")
	}
	var userID int64
	err = db.bun.NewSelect().Model((*LoginToken)(nil)).Column("user_id").
		Where("token_hash = ?", tokenHash).Scan(ctx, &userID)
	if err != nil {
		return 0, wrap(err, "use login token")
	}
	return userID, nil
}

// RevokeAdminLinks spends the unused admin login links issuer printed
// for a user, so only a link it prints afterwards works; it returns how
// many it revoked. Links of other replicas (another issuer) and the
// user's chat-account link codes, which share the table, stay valid.
func (db *DB) RevokeAdminLinks(ctx context.Context, userID int64, issuer string, at time.Time) (int, error) {
	if issuer == "" {
		return 0, errors.New("revoke admin links: the issuing replica is required")
	}
	res, err := db.bun.NewUpdate().Model((*LoginToken)(nil)).Set("used_at = ?", at.UTC()).
		Where("user_id = ? AND issuer = ? AND used_at IS NULL AND token_hash NOT LIKE ?", userID, issuer, "link:%").Exec(ctx)
	if err != nil {
		return 0, wrap(err, "revoke admin links of user %d", userID)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// SaveOAuthState stores a login attempt until the provider redirects back.
func (db *DB) SaveOAuthState(ctx context.Context, s *OAuthState) error {
	if s.StateHash == "" || s.BindingHash == "" || s.Provider == "" || s.ExpiresAt.IsZero() {
		return errors.New("save oauth state: state, binding, provider and expiry are required")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	if _, err := db.bun.NewInsert().Model(s).Exec(ctx); err != nil {
		return wrap(err, "save oauth state")
	}
	return nil
}

// TakeOAuthState returns and deletes the login attempt with this state, so
// a state is good for one callback only. ErrNotFound if it does not exist,
// was taken already or has expired.
func (db *DB) TakeOAuthState(ctx context.Context, stateHash string, at time.Time) (*OAuthState, error) {
	s := new(OAuthState)
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := db.forUpdate(tx.NewSelect().Model(s).Where("state_hash = ?", stateHash)).Scan(ctx); err != nil {
			return err
		}
		res, err := tx.NewDelete().Model((*OAuthState)(nil)).Where("state_hash = ?", stateHash).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err, "oauth state")
	}
	if !s.ExpiresAt.After(at.UTC()) {
		return nil, wrap(ErrNotFound, "oauth state expired at %s", s.ExpiresAt.Format(time.RFC3339))
	}
	return s, nil
}

// DeleteExpiredOAuthStates removes login attempts nobody finished.
func (db *DB) DeleteExpiredOAuthStates(ctx context.Context, at time.Time) (int, error) {
	res, err := db.bun.NewDelete().Model((*OAuthState)(nil)).Where("expires_at <= ?", at.UTC()).Exec(ctx)
	if err != nil {
		return 0, wrap(err, "delete expired oauth states")
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// SetUserAdmin makes a user a site administrator (or not). Site
// administrators create projects and act as owners of every project.
// ErrNotFound if the user does not exist.
func (db *DB) SetUserAdmin(ctx context.Context, userID int64, admin bool) error {
	res, err := db.bun.NewUpdate().Model((*User)(nil)).Set("is_admin = ?", admin).Where("id = ?", userID).Exec(ctx)
	if err != nil {
		return wrap(err, "set admin flag of user %d", userID)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(ErrNotFound, "set admin flag of user %d", userID)
	}
	return nil
}

// EnsureUser returns the user with this email, creating it (with name) if
// there is none. Unlike UpsertUser it leaves an existing user's name
// alone: adding a member by email must not rename them.
func (db *DB) EnsureUser(ctx context.Context, email, name string) (*User, error) {
	u, err := db.UserByEmail(ctx, email)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	email = normalizeEmail(email)
	if email == "" {
		return nil, errors.New("ensure user: email is empty")
	}
	u = &User{Email: email, Name: name, CreatedAt: now()}
	if _, err := db.bun.NewInsert().Model(u).Ignore().Exec(ctx); err != nil && !isUniqueViolation(err) {
		return nil, wrap(err, "create user %q", email)
	}
	return db.UserByEmail(ctx, email)
}

// ProjectRole is a project with the role a user holds in it.
type ProjectRole struct {
	Project Project
	Role    Role
}

// ProjectsOfUser returns the projects a user is a member of, by name,
// with the user's role in each.
func (db *DB) ProjectsOfUser(ctx context.Context, userID int64) ([]ProjectRole, error) {
	var ms []ProjectMember
	if err := db.bun.NewSelect().Model(&ms).Where("user_id = ?", userID).Scan(ctx); err != nil {
		return nil, wrap(err, "projects of user %d", userID)
	}
	if len(ms) == 0 {
		return nil, nil
	}
	roles := make(map[int64]Role, len(ms))
	ids := make([]int64, 0, len(ms))
	for _, m := range ms {
		roles[m.ProjectID] = m.Role
		ids = append(ids, m.ProjectID)
	}
	var ps []Project
	if err := db.bun.NewSelect().Model(&ps).Where("id IN (?)", bun.In(ids)).Order("name").Scan(ctx); err != nil {
		return nil, wrap(err, "projects of user %d", userID)
	}
	out := make([]ProjectRole, len(ps))
	for i, p := range ps {
		out[i] = ProjectRole{Project: p, Role: roles[p.ID]}
	}
	return out, nil
}

// SetSecretAudited stores a secret like SetSecret and writes who did it to
// the secret audit log. It returns SecretAdded or SecretReplaced.
func (db *DB) SetSecretAudited(ctx context.Context, projectID int64, name string, value []byte, actor string) (string, error) {
	exists, err := db.bun.NewSelect().Model((*ProjectSecret)(nil)).
		Where("project_id = ? AND name = ?", projectID, name).Exists(ctx)
	if err != nil {
		return "", wrap(err, "set secret %s of project %d", name, projectID)
	}
	if err := db.SetSecret(ctx, projectID, name, value, actor); err != nil {
		return "", err
	}
	action := SecretAdded
	if exists {
		action = SecretReplaced
	}
	if err := db.addSecretAudit(ctx, projectID, name, action, actor); err != nil {
		return "", err
	}
	return action, nil
}

// DeleteSecretAudited deletes a secret like DeleteSecret and records it in
// the audit log. ErrNotFound if there is no such secret.
func (db *DB) DeleteSecretAudited(ctx context.Context, projectID int64, name, actor string) error {
	if err := db.DeleteSecret(ctx, projectID, name); err != nil {
		return err
	}
	return db.addSecretAudit(ctx, projectID, name, SecretDeleted, actor)
}

func (db *DB) addSecretAudit(ctx context.Context, projectID int64, name, action, actor string) error {
	a := &SecretAudit{ProjectID: projectID, SecretName: name, Action: action, Actor: actor, At: now()}
	if _, err := db.bun.NewInsert().Model(a).Exec(ctx); err != nil {
		return wrap(err, "audit secret %s of project %d", name, projectID)
	}
	return nil
}

// ListSecretAudit returns a project's secret changes, newest first, at
// most limit (default 100).
func (db *DB) ListSecretAudit(ctx context.Context, projectID int64, limit int) ([]SecretAudit, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []SecretAudit
	err := db.bun.NewSelect().Model(&out).Where("project_id = ?", projectID).
		Order("at DESC", "id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, wrap(err, "secret audit of project %d", projectID)
	}
	return out, nil
}
