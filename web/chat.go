package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hero-dev/hero/store"
)

// LoggedIn returns the user logged in on r's browser (nil when nobody
// is) and a key of that session: a digest that never leaves hero and
// differs for every login, so an OAuth state bound to it works only in
// the browser that asked for it. The Slack install flow uses it.
func (s *Server) LoggedIn(r *http.Request) (*store.User, string, error) {
	sess, err := s.loadSession(r)
	if err != nil || sess == nil {
		return nil, "", err
	}
	return sess.user, sess.idHash, nil
}

// slackWorkspaces lists the installed Slack workspaces for a site
// administrator (nil for anyone else).
func (s *Server) slackWorkspaces(r *http.Request, u *store.User) ([]store.SlackTeam, error) {
	if !u.IsAdmin {
		return nil, nil
	}
	return s.cfg.DB.ListSlackTeams(r.Context())
}

// allowSlackWorkspace lets a site administrator allow a workspace that
// was installed without one (before installs needed a hero login): its
// people may then use hero, matched by their confirmed email.
func (s *Server) allowSlackWorkspace(w http.ResponseWriter, r *http.Request) {
	u := sessionFrom(r).user
	if !u.IsAdmin {
		s.problem(w, r, http.StatusForbidden, "Only a site administrator can allow a Slack workspace.")
		return
	}
	team := r.PathValue("team")
	err := s.cfg.DB.ApproveSlackTeam(r.Context(), team, u.Email)
	if errors.Is(err, store.ErrNotFound) {
		s.problem(w, r, http.StatusNotFound, "hero is not installed in that Slack workspace.")
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("allow slack workspace %s: %w", team, err))
		return
	}
	s.log.Info("slack workspace allowed", "team", team, "by", u.Email)
	redirect(w, r, "/settings/integrations", "slack-allowed")
}

// unlinkChatAccount removes one of the user's own chat accounts. It is
// audited, and the account is not matched by email again: only a new
// link code links it.
func (s *Server) unlinkChatAccount(w http.ResponseWriter, r *http.Request) {
	u := sessionFrom(r).user
	provider, ext := r.PostFormValue("provider"), r.PostFormValue("account")
	if _, ok := chatPlatforms[provider]; !ok || ext == "" {
		s.problem(w, r, http.StatusBadRequest, "Say which chat account to unlink (a chat account listed on the Integrations page).")
		return
	}
	err := s.cfg.DB.UnlinkIdentity(r.Context(), u.ID, provider, ext, "web:"+u.Email)
	if errors.Is(err, store.ErrNotFound) {
		s.problem(w, r, http.StatusNotFound, "That chat account is not linked to you.")
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("unlink chat account: %w", err))
		return
	}
	s.log.Info("chat account unlinked", "user", u.Email, "provider", provider, "account", ext)
	redirect(w, r, "/settings/integrations", "unlinked")
}
