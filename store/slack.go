package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// BindChannel makes channelID of surface work on project projectID,
// replacing an earlier binding of that channel. by is the platform
// identity that bound it. ErrNotFound if the project does not exist.
func (db *DB) BindChannel(ctx context.Context, surface, channelID string, projectID int64, by string) error {
	if surface == "" || channelID == "" {
		return errors.New("bind channel: surface and channel id are required")
	}
	if _, err := db.ProjectByID(ctx, projectID); err != nil {
		return fmt.Errorf("bind channel %s:%s: %w", surface, channelID, err)
	}
	t := now()
	b := &ChannelBinding{Surface: surface, ChannelID: channelID, ProjectID: projectID, BoundBy: by, CreatedAt: t, UpdatedAt: t}
	err := db.upsert(ctx, db.bun, b, []string{"surface", "channel_id"}, []string{"project_id", "bound_by", "updated_at"})
	return wrap(err, "bind channel %s:%s to project %d", surface, channelID, projectID)
}

// UnbindChannel removes a channel's binding; ErrNotFound if it had none.
func (db *DB) UnbindChannel(ctx context.Context, surface, channelID string) error {
	res, err := db.bun.NewDelete().Model((*ChannelBinding)(nil)).
		Where("surface = ? AND channel_id = ?", surface, channelID).Exec(ctx)
	if err != nil {
		return wrap(err, "unbind channel %s:%s", surface, channelID)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(ErrNotFound, "unbind channel %s:%s", surface, channelID)
	}
	return nil
}

// ChannelProject returns the project a channel is bound to; ErrNotFound if
// the channel is not bound (the surface then asks for `/hero use`).
func (db *DB) ChannelProject(ctx context.Context, surface, channelID string) (*Project, error) {
	p := new(Project)
	err := db.bun.NewSelect().Model(p).
		Join("JOIN chat_bindings AS b ON b.project_id = ?TableAlias.id").
		Where("b.surface = ? AND b.channel_id = ?", surface, channelID).
		Scan(ctx)
	if err != nil {
		return nil, wrap(err, "project of channel %s:%s", surface, channelID)
	}
	return p, nil
}

// ListBindings returns every channel binding, by surface and channel (for
// the settings page).
func (db *DB) ListBindings(ctx context.Context) ([]ChannelBinding, error) {
	var out []ChannelBinding
	if err := db.bun.NewSelect().Model(&out).Order("surface", "channel_id").Scan(ctx); err != nil {
		return nil, wrap(err, "list channel bindings")
	}
	return out, nil
}

// LinkThread records that a chat thread belongs to a run. Linking the same
// thread again to the same run is a no-op; to another run it replaces the
// link (a new run started in an old thread).
func (db *DB) LinkThread(ctx context.Context, surface, threadRef, executionID string) error {
	if surface == "" || threadRef == "" || executionID == "" {
		return errors.New("link thread: surface, thread and execution id are required")
	}
	t := &ChatThread{Surface: surface, ThreadRef: threadRef, ExecutionID: executionID, CreatedAt: now()}
	err := db.upsert(ctx, db.bun, t, []string{"surface", "thread_ref"}, []string{"execution_id"})
	return wrap(err, "link thread %s:%s to run %s", surface, threadRef, executionID)
}

// ThreadExecution returns the id of the run a chat thread belongs to;
// ErrNotFound if none.
func (db *DB) ThreadExecution(ctx context.Context, surface, threadRef string) (string, error) {
	var id string
	err := db.bun.NewSelect().Model((*ChatThread)(nil)).Column("execution_id").
		Where("surface = ? AND thread_ref = ?", surface, threadRef).Scan(ctx, &id)
	if err != nil {
		return "", wrap(err, "run of thread %s:%s", surface, threadRef)
	}
	return id, nil
}

// SlackTeam is a workspace installed through "Add to Slack", without its
// token.
type SlackTeam struct {
	TeamID      string
	TeamName    string
	BotUserID   string
	InstalledBy string
	// ApprovedBy is the email of the hero site administrator who installed
	// or allowed the workspace; "" means nobody did (an install from
	// before installs needed a hero login), and hero refuses its people.
	ApprovedBy string
}

func slackTokenName(teamID string) string { return "slack-bot-token/" + teamID }

// SaveSlackTeam stores (or replaces) a workspace's bot token, encrypted
// with the vault (bound to the team, under the project-less key id 0).
func (db *DB) SaveSlackTeam(ctx context.Context, team SlackTeam, botToken string) error {
	if err := db.needKeyring("save slack team"); err != nil {
		return err
	}
	if team.TeamID == "" || strings.TrimSpace(botToken) == "" {
		return errors.New("save slack team: team id and bot token are required")
	}
	blob, err := db.keyring.Seal(0, slackTokenName(team.TeamID), []byte(botToken))
	if err != nil {
		return fmt.Errorf("save slack team %s: %w", team.TeamID, err)
	}
	t := now()
	row := &slackTeam{TeamID: team.TeamID, TeamName: team.TeamName, BotUserID: team.BotUserID,
		TokenCiphertext: blob, KeyVersion: db.keyring.Version(), InstalledBy: team.InstalledBy, ApprovedBy: team.ApprovedBy, CreatedAt: t, UpdatedAt: t}
	err = db.upsert(ctx, db.bun, row, []string{"team_id"},
		[]string{"team_name", "bot_user_id", "token_ciphertext", "key_version", "installed_by", "approved_by", "updated_at"})
	return wrap(err, "save slack team %s", team.TeamID)
}

// SlackTeamToken decrypts a workspace's bot token; ErrNotFound if the
// workspace was never installed.
func (db *DB) SlackTeamToken(ctx context.Context, teamID string) (team *SlackTeam, botToken string, err error) {
	if err := db.needKeyring("slack team token"); err != nil {
		return nil, "", err
	}
	row := new(slackTeam)
	if err := db.bun.NewSelect().Model(row).Where("team_id = ?", teamID).Scan(ctx); err != nil {
		return nil, "", wrap(err, "slack team %s", teamID)
	}
	pt, err := db.keyring.Open(0, slackTokenName(teamID), row.TokenCiphertext)
	if err != nil {
		return nil, "", fmt.Errorf("slack team %s: %w", teamID, err)
	}
	return row.public(), string(pt), nil
}

func (r *slackTeam) public() *SlackTeam {
	return &SlackTeam{TeamID: r.TeamID, TeamName: r.TeamName, BotUserID: r.BotUserID, InstalledBy: r.InstalledBy, ApprovedBy: r.ApprovedBy}
}

// SlackTeamByID returns an installed workspace without its token;
// ErrNotFound if it was never installed.
func (db *DB) SlackTeamByID(ctx context.Context, teamID string) (*SlackTeam, error) {
	row := new(slackTeam)
	if err := db.bun.NewSelect().Model(row).Column("team_id", "team_name", "bot_user_id", "installed_by", "approved_by").
		Where("team_id = ?", teamID).Scan(ctx); err != nil {
		return nil, wrap(err, "slack team %s", teamID)
	}
	return row.public(), nil
}

// ApproveSlackTeam records that a hero site administrator (by, an email)
// allows an installed workspace: its people may use hero and are matched
// to hero users by email. ErrNotFound if it is not installed.
func (db *DB) ApproveSlackTeam(ctx context.Context, teamID, by string) error {
	if by == "" {
		return errors.New("approve slack team: the approving administrator is required")
	}
	res, err := db.bun.NewUpdate().Model((*slackTeam)(nil)).Set("approved_by = ?", by).Set("updated_at = ?", now()).
		Where("team_id = ?", teamID).Exec(ctx)
	if err != nil {
		return wrap(err, "approve slack team %s", teamID)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(ErrNotFound, "approve slack team %s", teamID)
	}
	return nil
}

// ListSlackTeams returns the installed workspaces (no tokens), by id.
func (db *DB) ListSlackTeams(ctx context.Context) ([]SlackTeam, error) {
	var rows []slackTeam
	if err := db.bun.NewSelect().Model(&rows).Column("team_id", "team_name", "bot_user_id", "installed_by", "approved_by").Order("team_id").Scan(ctx); err != nil {
		return nil, wrap(err, "list slack teams")
	}
	out := make([]SlackTeam, len(rows))
	for i := range rows {
		out[i] = *rows[i].public()
	}
	return out, nil
}
