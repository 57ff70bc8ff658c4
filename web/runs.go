package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

var runStatuses = []string{store.StatusQueued, store.StatusRunning, store.StatusWaiting, store.StatusSucceeded,
	store.StatusFailed, store.StatusCancelled, store.StatusInterrupted}

type runRow struct {
	store.Execution
	Project string
}

// runsPage lists the newest runs of the projects the user can see,
// filtered by project and status.
func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) {
	u := sessionFrom(r).user
	q := r.URL.Query()
	wantProject, wantStatus := q.Get("project"), q.Get("status")
	if wantStatus != "" && !slices.Contains(runStatuses, wantStatus) {
		s.problem(w, r, http.StatusBadRequest, fmt.Sprintf("Unknown status %q; use one of %s.", wantStatus, strings.Join(runStatuses, ", ")))
		return
	}
	// The projects this user may see, by id.
	visible := map[int64]string{}
	var names []string
	if u.IsAdmin {
		ps, err := s.cfg.DB.ListProjects(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, p := range ps {
			visible[p.ID] = p.Name
			names = append(names, p.Name)
		}
	} else {
		prs, err := s.cfg.DB.ProjectsOfUser(r.Context(), u.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, pr := range prs {
			visible[pr.Project.ID] = pr.Project.Name
			names = append(names, pr.Project.Name)
		}
	}
	f := store.ExecutionFilter{Limit: 100}
	if wantStatus != "" {
		f.Statuses = []string{wantStatus}
	}
	var ids []int64
	for id, name := range visible {
		if wantProject == "" || name == wantProject {
			ids = append(ids, id)
		}
	}
	if wantProject != "" && len(ids) == 0 {
		s.problem(w, r, http.StatusNotFound, "There is no such project, or you are not a member of it.")
		return
	}
	var rows []runRow
	if u.IsAdmin && wantProject == "" {
		es, err := s.cfg.DB.ListExecutions(r.Context(), f)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, e := range es {
			name, ok := visible[e.ProjectID]
			if !ok {
				name = fmt.Sprintf("(deleted %d)", e.ProjectID)
			}
			rows = append(rows, runRow{e, name})
		}
	} else {
		for _, id := range ids {
			f.ProjectID = id
			es, err := s.cfg.DB.ListExecutions(r.Context(), f)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			for _, e := range es {
				rows = append(rows, runRow{e, visible[id]})
			}
		}
		slices.SortFunc(rows, func(a, b runRow) int { return b.CreatedAt.Compare(a.CreatedAt) })
		if len(rows) > 100 {
			rows = rows[:100]
		}
	}
	slices.Sort(names)
	s.render(w, r, 0, "runs", &view{Title: "Runs", Nav: "runs", Data: map[string]any{
		"Runs": rows, "Projects": names, "Statuses": runStatuses, "Project": wantProject, "Status": wantStatus,
	}})
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request, ex *store.Execution, p *store.Project, role store.Role) {
	s.renderRun(w, r, 0, "", ex, p, role)
}

func (s *Server) renderRun(w http.ResponseWriter, r *http.Request, status int, errMsg string, ex *store.Execution, p *store.Project, role store.Role) {
	steps, err := s.cfg.DB.ListSteps(r.Context(), ex.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	confs, err := s.cfg.DB.ConfirmationsOf(r.Context(), ex.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	canCancel := s.cfg.Runs != nil && !store.Final(ex.Status) && role.AtLeast(store.RoleMember)
	// The engine's rule, for showing the buttons: the run's requester or
	// an approver decides.
	u := sessionFrom(r).user
	canDecide := s.cfg.Runs != nil && !store.Final(ex.Status) &&
		(role.AtLeast(store.RoleApprover) || ex.RequesterUserID == u.ID || ex.Requester == webPrincipal(u).ID)
	s.render(w, r, status, "run", &view{Title: "Run " + ex.ID, Nav: "runs", Error: errMsg, Project: p, Role: role,
		Data: map[string]any{"Run": ex, "Steps": steps, "Confirmations": confs, "CanCancel": canCancel, "CanDecide": canDecide}})
}

// decide approves or denies one of a run's pending confirmations: a tool
// call waiting for a person, a limit to extend, or an ask_human question
// (approving answers it with the form's text; an answer is required).
// A run that reports nowhere else (a schedule made on the command line
// with no channel) is decided only here.
func (s *Server) decide(approve bool) runHandler {
	return func(w http.ResponseWriter, r *http.Request, ex *store.Execution, p *store.Project, role store.Role) {
		if s.cfg.Runs == nil {
			s.renderRun(w, r, http.StatusServiceUnavailable, "Confirmations cannot be decided from this server.", ex, p, role)
			return
		}
		c, err := s.cfg.DB.Confirmation(r.Context(), r.PathValue("confirmation"))
		if errors.Is(err, store.ErrNotFound) || (err == nil && c.ExecutionID != ex.ID) {
			s.renderRun(w, r, http.StatusNotFound, fmt.Sprintf("Run %s has no confirmation %s.", ex.ID, r.PathValue("confirmation")), ex, p, role)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		answer := strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("answer"), "\r\n", "\n"))
		if approve && c.Kind == store.ConfirmKindQuestion && answer == "" {
			s.renderRun(w, r, http.StatusBadRequest, fmt.Sprintf("Write an answer to the question of %s first (or decline it).", c.ID), ex, p, role)
			return
		}
		if len(answer) > 10000 {
			s.renderRun(w, r, http.StatusBadRequest, fmt.Sprintf("The answer is %d characters; the limit is 10000.", len(answer)), ex, p, role)
			return
		}
		u := sessionFrom(r).user
		_, err = s.cfg.Runs.Decide(r.Context(), c.ID, engine.Decision{Approve: approve, By: webPrincipal(u), Answer: answer})
		switch {
		case errors.Is(err, engine.ErrNotAllowed):
			s.renderRun(w, r, http.StatusForbidden, err.Error(), ex, p, role)
			return
		case errors.Is(err, engine.ErrAlreadyDecided):
			s.renderRun(w, r, http.StatusConflict, err.Error()+".", ex, p, role)
			return
		case err != nil:
			s.fail(w, r, err)
			return
		}
		ok := "denied"
		switch {
		case approve && c.Kind == store.ConfirmKindQuestion:
			ok = "answered"
		case approve:
			ok = "approved"
		}
		s.log.Info("confirmation decided on the settings page", "run", ex.ID, "confirmation", c.ID, "approve", approve, "by", u.Email)
		redirect(w, r, "/settings/runs/"+url.PathEscape(ex.ID), ok)
	}
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request, ex *store.Execution, p *store.Project, role store.Role) {
	if s.cfg.Runs == nil {
		s.renderRun(w, r, http.StatusServiceUnavailable, "Runs cannot be cancelled from this server.", ex, p, role)
		return
	}
	u := sessionFrom(r).user
	err := s.cfg.Runs.Cancel(r.Context(), ex.ID, webPrincipal(u))
	switch {
	case errors.Is(err, engine.ErrFinished):
		s.renderRun(w, r, http.StatusConflict, fmt.Sprintf("Run %s has already ended.", ex.ID), ex, p, role)
		return
	case errors.Is(err, engine.ErrNotAllowed):
		s.renderRun(w, r, http.StatusForbidden, err.Error(), ex, p, role)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.log.Info("run cancelled from the settings page", "run", ex.ID, "by", u.Email)
	redirect(w, r, "/settings/runs/"+url.PathEscape(ex.ID), "cancelling")
}

// integrationsPage shows each platform's connection with a live check,
// the channel ↔ project bindings of the user's projects, and the user's
// linked chat accounts.
func (s *Server) integrationsPage(w http.ResponseWriter, r *http.Request) {
	s.renderIntegrations(w, r, "")
}

// renderIntegrations renders the integrations page; linkCode, when set,
// is a just-made chat link code, shown this once.
func (s *Server) renderIntegrations(w http.ResponseWriter, r *http.Request, linkCode string) {
	u := sessionFrom(r).user
	type row struct {
		Name, ConnectURL, ConnectLabel, Detail string
		OK, Checked                            bool
	}
	var rows []row
	for _, in := range s.cfg.Integrations {
		rw := row{Name: in.Name, ConnectURL: in.ConnectURL, ConnectLabel: in.ConnectLabel}
		if in.AdminOnly && !u.IsAdmin {
			rw.ConnectURL = ""
		}
		if in.Status != nil {
			rw.Checked = true
			rw.OK, rw.Detail = in.Status(r.Context())
		}
		rows = append(rows, rw)
	}
	bindings, err := s.bindings(r, u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	chats, err := s.chatAccounts(r, u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	teams, err := s.slackWorkspaces(r, u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	audit, err := s.cfg.DB.ListAccountAudit(r.Context(), u.ID, 10)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, 0, "integrations", &view{Title: "Integrations", Nav: "integrations", Data: map[string]any{
		"Integrations": rows, "Bindings": bindings, "Account": s.githubAccount(r, u),
		"Google": s.cfg.Google != nil, "GitHub": s.cfg.GitHub != nil,
		"ChatAccounts": chats, "LinkCode": linkCode, "LinkMinutes": int(store.LinkCodeTTL.Minutes()),
		"SlackTeams": teams, "AccountAudit": audit, "Platforms": chatPlatforms,
	}})
}

// chatAccount is a chat identity linked to the user, for display.
type chatAccount struct{ Provider, Platform, ID string }

// chatPlatforms are the identity providers that are chat accounts (login
// identities, such as Google's, are not listed).
var chatPlatforms = map[string]string{"slack": "Slack", "discord": "Discord"}

// chatAccounts lists the chat accounts that act as u.
func (s *Server) chatAccounts(r *http.Request, u *store.User) ([]chatAccount, error) {
	ids, err := s.cfg.DB.IdentitiesOfUser(r.Context(), u.ID)
	if err != nil {
		return nil, err
	}
	var out []chatAccount
	for _, id := range ids {
		if name, ok := chatPlatforms[id.Provider]; ok {
			out = append(out, chatAccount{Provider: id.Provider, Platform: name, ID: id.ExternalID})
		}
	}
	return out, nil
}

// createLinkCode makes a one-time code that links a chat account (Slack,
// Discord) to the logged-in user (typed as `/hero link CODE` there) and
// shows it once,
// in this response only: it is not in a URL, and the database has only
// its hash. A new code replaces the user's earlier one.
func (s *Server) createLinkCode(w http.ResponseWriter, r *http.Request) {
	u := sessionFrom(r).user
	code := store.NewLinkCode()
	if err := s.cfg.DB.CreateLinkCode(r.Context(), u.ID, code, s.now().Add(store.LinkCodeTTL)); err != nil {
		s.fail(w, r, fmt.Errorf("create chat link code: %w", err))
		return
	}
	s.log.Info("chat link code created", "user", u.Email)
	s.renderIntegrations(w, r, code)
}

// bindings returns the channel bindings of the projects u can see.
func (s *Server) bindings(r *http.Request, u *store.User) ([]Binding, error) {
	all, err := s.cfg.DB.ListBindings(r.Context())
	if err != nil || len(all) == 0 {
		return nil, err
	}
	names := map[int64]string{}
	if u.IsAdmin {
		ps, err := s.cfg.DB.ListProjects(r.Context())
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			names[p.ID] = p.Name
		}
	} else {
		prs, err := s.cfg.DB.ProjectsOfUser(r.Context(), u.ID)
		if err != nil {
			return nil, err
		}
		for _, pr := range prs {
			names[pr.Project.ID] = pr.Project.Name
		}
	}
	var out []Binding
	for _, b := range all {
		if name, ok := names[b.ProjectID]; ok {
			out = append(out, Binding{Surface: b.Surface, Channel: b.ChannelID, Project: name, By: b.BoundBy, At: b.UpdatedAt})
		}
	}
	return out, nil
}

// accountStatus is the GitHub account hero acts as with a user OAuth
// token, for the integrations page.
type accountStatus struct {
	Show       bool // GitHub OAuth is configured and the viewer is a site admin
	Login      string
	Connected  bool
	OK         bool
	Detail     string
	CanConnect bool
}

func (s *Server) githubAccount(r *http.Request, u *store.User) accountStatus {
	st := accountStatus{Show: s.cfg.GitHub != nil && u.IsAdmin, Login: s.cfg.GitHubOAuthAccount, CanConnect: u.IsAdmin}
	if !st.Show {
		return st
	}
	if st.Login == "" {
		st.Detail = "not used: hero acts through GITHUB_TOKEN or a GitHub App. To act as a GitHub user instead, set GITHUB_OAUTH_ACCOUNT to its login and connect it here."
		return st
	}
	tok, err := s.cfg.DB.GitHubToken(r.Context(), st.Login)
	if errors.Is(err, store.ErrNotFound) {
		st.Detail = "not connected yet"
		return st
	}
	if err != nil {
		st.Detail = "the stored token cannot be read: connect again"
		s.log.Warn("read github oauth token", "account", st.Login, "err", err)
		return st
	}
	st.Connected = true
	if !tok.Expiry.IsZero() && tok.Expiry.Before(s.now()) {
		if tok.RefreshToken == "" {
			st.Detail = "token expired at " + tok.Expiry.UTC().Format("2006-01-02 15:04 UTC") + " and cannot be refreshed: connect again"
			return st
		}
		st.OK = true
		st.Detail = "access token expired at " + tok.Expiry.UTC().Format("2006-01-02 15:04 UTC") + "; hero refreshes it at its next use"
		return st
	}
	ok, detail := GitHubTokenStatus(s.client, s.cfg.GitHub.APIURL, tok.AccessToken)(r.Context())
	st.OK, st.Detail = ok, detail
	if ok && !tok.Expiry.IsZero() {
		st.Detail += ", refreshed automatically (expires " + tok.Expiry.UTC().Format("15:04 UTC") + ")"
	}
	return st
}

// webPrincipal is the person signed in to the settings page, as the
// engine records them.
func webPrincipal(u *store.User) engine.Principal {
	return engine.Principal{ID: "web:" + u.Email, UserID: u.ID}
}
