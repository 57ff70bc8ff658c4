package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hero-dev/hero/store"
)

// sessionCookie holds the session id; only its hash is in the database.
const sessionCookie = "hero_session"

// csrfField is the form field carrying the session's CSRF token.
const csrfField = "csrf"

// session is the logged-in user of a request.
type session struct {
	idHash string
	user   *store.User
	csrf   string
}

type ctxKey struct{}

func sessionFrom(r *http.Request) *session {
	s, _ := r.Context().Value(ctxKey{}).(*session)
	return s
}

// loadSession returns the request's live session, or nil. An expired
// session is deleted on sight.
func (s *Server) loadSession(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	idHash := hashToken(c.Value)
	ws, err := s.cfg.DB.SessionByHash(r.Context(), idHash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	if now.Sub(ws.LastSeenAt) > s.cfg.SessionIdle || now.Sub(ws.CreatedAt) > s.cfg.SessionMax {
		if err := s.cfg.DB.DeleteSession(r.Context(), idHash); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if now.Sub(ws.LastSeenAt) > time.Minute {
		if err := s.cfg.DB.TouchSession(r.Context(), idHash, now); err != nil {
			return nil, err
		}
	}
	u, err := s.cfg.DB.UserByID(r.Context(), ws.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &session{idHash: idHash, user: u, csrf: ws.CSRFToken}, nil
}

// startSession logs user in: any session the browser had is ended and a
// new id is issued (no session fixation).
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user *store.User) error {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := s.cfg.DB.DeleteSession(r.Context(), hashToken(c.Value)); err != nil {
			return fmt.Errorf("end previous session: %w", err)
		}
	}
	id := randomToken()
	now := s.now().UTC().Truncate(time.Microsecond)
	err := s.cfg.DB.CreateSession(r.Context(), &store.WebSession{
		IDHash: hashToken(id), UserID: user.ID, CSRFToken: randomToken(),
		CreatedAt: now, LastSeenAt: now, UserAgent: r.UserAgent(),
	})
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: s.secure(r), MaxAge: int(s.cfg.SessionMax.Seconds()),
	})
	s.log.Info("logged in", "user", user.Email)
	return nil
}

func (s *Server) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.secure(r), MaxAge: -1})
}

// user wraps a handler that needs a logged-in user. Anonymous GETs are
// sent to the login page (and back afterwards); anonymous POSTs get 401.
// Every POST must carry the session's CSRF token.
func (s *Server) user(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.loadSession(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if sess == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/settings/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.clearSessionCookie(w, r)
			s.problem(w, r, http.StatusUnauthorized, "Your session has ended. Log in again, then repeat what you were doing.")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, sess))
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
			if !equalTokens(r.PostFormValue(csrfField), sess.csrf) {
				s.problem(w, r, http.StatusForbidden, "This form has expired or did not come from this page. Reload the page and try again.")
				return
			}
		}
		next(w, r)
	}
}

// effectiveRole is the user's role in a project; site administrators
// are owners everywhere.
func (s *Server) effectiveRole(ctx context.Context, u *store.User, projectID int64) (store.Role, error) {
	if u.IsAdmin {
		return store.RoleOwner, nil
	}
	return s.cfg.DB.MemberRole(ctx, projectID, u.ID)
}

// projectHandler is a handler for one project the user may see.
type projectHandler func(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role)

// project wraps a handler of /settings/projects/{project}/…: the user must
// hold at least min in the project. Non-members get 404 (the project's
// existence is not revealed); members below min get 403.
func (s *Server) project(min store.Role, next projectHandler) http.HandlerFunc {
	return s.user(func(w http.ResponseWriter, r *http.Request) {
		sess := sessionFrom(r)
		p, err := s.cfg.DB.ProjectByName(r.Context(), r.PathValue("project"))
		if errors.Is(err, store.ErrNotFound) {
			s.problem(w, r, http.StatusNotFound, "There is no such project, or you are not a member of it.")
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		role, err := s.effectiveRole(r.Context(), sess.user, p.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if role == "" {
			s.problem(w, r, http.StatusNotFound, "There is no such project, or you are not a member of it.")
			return
		}
		if !role.AtLeast(min) {
			s.problem(w, r, http.StatusForbidden, fmt.Sprintf("This needs the %s role in project %s; you are %s. Ask an owner of the project.", min, p.Name, article(role)))
			return
		}
		next(w, r, p, role)
	})
}

// runHandler is a handler for one run the user may see.
type runHandler func(w http.ResponseWriter, r *http.Request, ex *store.Execution, p *store.Project, role store.Role)

// run wraps a handler of /settings/runs/{run}: like project, for the
// run's project.
func (s *Server) run(min store.Role, next runHandler) http.HandlerFunc {
	return s.user(func(w http.ResponseWriter, r *http.Request) {
		sess := sessionFrom(r)
		notFound := func() {
			s.problem(w, r, http.StatusNotFound, "There is no such run, or you are not a member of its project.")
		}
		ex, err := s.cfg.DB.Execution(r.Context(), r.PathValue("run"))
		if errors.Is(err, store.ErrNotFound) {
			notFound()
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p, err := s.cfg.DB.ProjectByID(r.Context(), ex.ProjectID)
		if errors.Is(err, store.ErrNotFound) {
			// The project was deleted; its runs stay for site admins.
			if !sess.user.IsAdmin {
				notFound()
				return
			}
			p = &store.Project{ID: ex.ProjectID, Name: fmt.Sprintf("(deleted project %d)", ex.ProjectID)}
		} else if err != nil {
			s.fail(w, r, err)
			return
		}
		role, err := s.effectiveRole(r.Context(), sess.user, ex.ProjectID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if role == "" {
			notFound()
			return
		}
		if !role.AtLeast(min) {
			s.problem(w, r, http.StatusForbidden, fmt.Sprintf("This needs the %s role in project %s; you are %s.", min, p.Name, article(role)))
			return
		}
		next(w, r, ex, p, role)
	})
}

func article(r store.Role) string {
	role := string(r)
	if role != "" && strings.ContainsRune("aeiou", rune(role[0])) {
		return "an " + role
	}
	return "a " + role
}

// loginPage offers the configured providers.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	type provider struct{ Name, URL string }
	var ps []provider
	if s.cfg.Google != nil {
		ps = append(ps, provider{"Google", "/auth/google/login?next=" + url.QueryEscape(next)})
	}
	if s.cfg.GitHub != nil {
		ps = append(ps, provider{"GitHub", "/auth/github/login?next=" + url.QueryEscape(next)})
	}
	msg := ""
	switch r.URL.Query().Get("error") {
	case "":
	case "denied":
		msg = "The login was cancelled at the provider."
	case "expired":
		msg = "That login attempt expired or was started in another browser. Please try again."
	case "unverified":
		msg = "Your account has no verified email address; hero needs one to know who you are."
	default:
		msg = "The login did not work. Please try again."
	}
	s.render(w, r, 0, "login", &view{Title: "Log in", Error: msg, Data: ps})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.DB.DeleteSession(r.Context(), sessionFrom(r).idHash); err != nil {
		s.fail(w, r, err)
		return
	}
	s.clearSessionCookie(w, r)
	redirect(w, r, "/settings/login", "logged-out")
}

func (s *Server) logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	sess := sessionFrom(r)
	n, err := s.cfg.DB.DeleteUserSessions(r.Context(), sess.user.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("logged out everywhere", "user", sess.user.Email, "sessions", n)
	s.clearSessionCookie(w, r)
	redirect(w, r, "/settings/login", "logged-out-all")
}
