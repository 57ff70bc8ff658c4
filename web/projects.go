package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/membership"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
)

// projectNameRE keeps names typeable in chat (`/hero use NAME`) and safe
// in URLs.
var projectNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

type projectRow struct {
	Name, RepoURL, Branch string
	Role                  store.Role
}

func (s *Server) projectsPage(w http.ResponseWriter, r *http.Request) {
	s.renderProjects(w, r, 0, "", projectForm{Branch: "main"})
}

func (s *Server) renderProjects(w http.ResponseWriter, r *http.Request, status int, errMsg string, form projectForm) {
	u := sessionFrom(r).user
	var rows []projectRow
	if u.IsAdmin {
		ps, err := s.cfg.DB.ListProjects(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, p := range ps {
			rows = append(rows, projectRow{p.Name, p.RepoURL, p.DefaultBranch, store.RoleOwner})
		}
	} else {
		prs, err := s.cfg.DB.ProjectsOfUser(r.Context(), u.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, pr := range prs {
			rows = append(rows, projectRow{pr.Project.Name, pr.Project.RepoURL, pr.Project.DefaultBranch, pr.Role})
		}
	}
	s.render(w, r, status, "projects", &view{Title: "Projects", Nav: "projects", Error: errMsg,
		Data: map[string]any{"Projects": rows, "CanCreate": u.IsAdmin, "Form": form}})
}

// projectForm is the project settings form, as typed (so a form with an
// error comes back as the person left it).
type projectForm struct {
	Name, RepoURL, Branch                                   string
	Provider, Template                                      string
	Network, InstallSecrets                                 bool
	CPUSeconds, MemoryMB, MaxProcesses, IdleTimeoutMin      string
	DiskMB                                                  string
	BudgetRun, BudgetDay, MaxSteps, WallClockMin, Threshold string
	ConfirmTTLMin                                           string
	Rules                                                   string
	IssuesBecomeCards                                       bool
}

func formOf(p *store.Project) projectForm {
	num := func(v int) string {
		if v == 0 {
			return ""
		}
		return strconv.Itoa(v)
	}
	mins := func(v int) string {
		if v == 0 {
			return ""
		}
		return strconv.FormatFloat(float64(v)/60, 'f', -1, 64)
	}
	flt := func(v float64) string {
		if v == 0 {
			return ""
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return projectForm{
		Name: p.Name, RepoURL: p.RepoURL, Branch: p.DefaultBranch,
		Provider: p.Sandbox.Provider, Template: p.Sandbox.Template, Network: p.Sandbox.NetworkAllowed,
		InstallSecrets: p.Sandbox.InstallSecrets,
		CPUSeconds:     num(p.Sandbox.CPUSeconds), MemoryMB: num(p.Sandbox.MemoryMB), MaxProcesses: num(p.Sandbox.MaxProcesses),
		IdleTimeoutMin: mins(p.Sandbox.IdleTimeoutS), DiskMB: num(p.Sandbox.DiskMB),
		BudgetRun: flt(p.Governance.BudgetPerRunUSD), BudgetDay: flt(p.Governance.BudgetPerDayUSD),
		MaxSteps: num(p.Governance.MaxSteps), WallClockMin: mins(p.Governance.WallClockS),
		Threshold: flt(p.Governance.UncertaintyThreshold), ConfirmTTLMin: mins(p.Governance.ConfirmationTTLS),
		Rules:             engine.FormatPolicyRules(p.PolicyRules),
		IssuesBecomeCards: p.IssuesBecomeCards,
	}
}

func readProjectForm(r *http.Request) projectForm {
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return projectForm{
		Name: f("name"), RepoURL: f("repo_url"), Branch: f("default_branch"),
		Provider: f("sandbox_provider"), Template: f("sandbox_template"), Network: r.PostFormValue("sandbox_network") == "on",
		InstallSecrets: r.PostFormValue("sandbox_install_secrets") == "on",
		CPUSeconds:     f("sandbox_cpu_seconds"), MemoryMB: f("sandbox_memory_mb"), MaxProcesses: f("sandbox_max_processes"),
		IdleTimeoutMin: f("sandbox_idle_timeout_min"), DiskMB: f("sandbox_disk_mb"),
		BudgetRun: f("budget_per_run_usd"), BudgetDay: f("budget_per_day_usd"), MaxSteps: f("max_steps"),
		WallClockMin: f("wall_clock_min"), Threshold: f("uncertainty_threshold"), ConfirmTTLMin: f("confirmation_ttl_min"),
		Rules:             strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("policy_rules"), "\r\n", "\n")),
		IssuesBecomeCards: r.PostFormValue("issues_become_cards") == "on",
	}
}

// apply validates the form into p; the error says which field and why.
func (f projectForm) apply(p *store.Project, local sandbox.LocalRepos) error {
	if err := validRepoURL(f.RepoURL, local); err != nil {
		return err
	}
	branch := f.Branch
	if branch == "" {
		branch = "main"
	}
	if strings.ContainsAny(branch, " ~^:?*[\\") || strings.Contains(branch, "..") || strings.HasPrefix(branch, "-") || strings.HasPrefix(branch, "/") {
		return fmt.Errorf("Default branch %q is not a valid git branch name.", branch)
	}
	switch f.Provider {
	case "", "local", "e2b":
	default:
		return fmt.Errorf("Sandbox provider must be local or e2b (or empty for the server default), got %q.", f.Provider)
	}
	var err error
	// intField reads a whole number; with scale 60 it reads minutes
	// (fractions allowed) and returns seconds.
	intField := func(label, v string, scale int) int {
		if err != nil || v == "" {
			return 0
		}
		if scale == 1 {
			n, e := strconv.Atoi(v)
			if e != nil || n < 0 || n > 1e9 {
				err = fmt.Errorf("%s must be a whole number of at least 0, got %q.", label, v)
			}
			return n
		}
		n, e := strconv.ParseFloat(v, 64)
		if e != nil || n < 0 || n > 1e7 {
			err = fmt.Errorf("%s must be a number of minutes of at least 0, got %q.", label, v)
			return 0
		}
		return int(math.Round(n * float64(scale)))
	}
	floatField := func(label, v string, max float64) float64 {
		if err != nil || v == "" {
			return 0
		}
		n, e := strconv.ParseFloat(v, 64)
		if e != nil || n < 0 || n > max {
			err = fmt.Errorf("%s must be a number from 0 to %g, got %q.", label, max, v)
			return 0
		}
		return n
	}
	sb := store.SandboxConfig{
		Provider: f.Provider, Template: f.Template, NetworkAllowed: f.Network, InstallSecrets: f.InstallSecrets,
		CPUSeconds:   intField("CPU seconds", f.CPUSeconds, 1),
		MemoryMB:     intField("Memory (MB)", f.MemoryMB, 1),
		MaxProcesses: intField("Max processes", f.MaxProcesses, 1),
		IdleTimeoutS: intField("Idle timeout", f.IdleTimeoutMin, 60),
		DiskMB:       intField("Disk (MB)", f.DiskMB, 1),
	}
	if err == nil && sb.DiskMB > 0 && sb.DiskMB < 16 {
		err = fmt.Errorf("Disk (MB) must be at least 16 (or empty for the default), got %q.", f.DiskMB)
	}
	gov := store.Governance{
		BudgetPerRunUSD:      floatField("Budget per run", f.BudgetRun, 1e6),
		BudgetPerDayUSD:      floatField("Budget per day", f.BudgetDay, 1e6),
		MaxSteps:             intField("Max steps", f.MaxSteps, 1),
		WallClockS:           intField("Wall-clock limit", f.WallClockMin, 60),
		UncertaintyThreshold: floatField("Uncertainty threshold", f.Threshold, 1),
		ConfirmationTTLS:     intField("Confirmation expiry", f.ConfirmTTLMin, 60),
	}
	if err != nil {
		return err
	}
	// The same bounds as `hero project set`.
	if err := gov.Validate(); err != nil {
		return err
	}
	if err := sb.Validate(); err != nil {
		return err
	}
	rules, err := engine.ParsePolicyRules(f.Rules)
	if err != nil {
		return fmt.Errorf("Confirmation policy, %v.", err)
	}
	p.RepoURL, p.DefaultBranch, p.Sandbox, p.Governance, p.PolicyRules = f.RepoURL, branch, sb, gov, rules
	p.IssuesBecomeCards = f.IssuesBecomeCards
	return nil
}

// validRepoURL checks a repository URL from the page. A directory on
// this machine (a path or file:// URL) is allowed only under the
// operator's HERO_LOCAL_REPO_ROOT, never holding hero's data directory;
// the run checks again when it starts.
func validRepoURL(u string, local sandbox.LocalRepos) error {
	if u == "" {
		return errors.New("Repository URL is required (https://github.com/org/repo.git, git@github.com:org/repo.git, or a directory under HERO_LOCAL_REPO_ROOT).")
	}
	if strings.ContainsAny(u, " \t\r\n\x00") || strings.HasPrefix(u, "-") {
		return fmt.Errorf("Repository URL %q must not contain spaces or start with a dash.", u)
	}
	if sandbox.IsLocal(u) {
		if _, err := local.Resolve(u, false); err != nil {
			return fmt.Errorf("Repository URL: %s.", strings.TrimSuffix(err.Error(), "."))
		}
		return nil
	}
	if pu, err := url.Parse(u); err == nil && pu.Scheme != "" {
		switch pu.Scheme {
		case "https", "http", "ssh", "git":
			if pu.Host == "" {
				return fmt.Errorf("Repository URL %q has no host.", u)
			}
			if pu.User != nil {
				if _, hasPass := pu.User.Password(); hasPass {
					return errors.New("Repository URL must not contain a password or token; add it as a secret (GITHUB_TOKEN) instead.")
				}
			}
			return nil
		}
		return fmt.Errorf("Repository URL scheme %q is not supported (use https, ssh or git).", pu.Scheme)
	}
	if at, colon := strings.Index(u, "@"), strings.Index(u, ":"); at > 0 && colon > at {
		return nil // scp-like git@host:org/repo.git
	}
	return fmt.Errorf("Repository URL %q is not a URL (https://…, git@host:org/repo.git) or an absolute path.", u)
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	u := sessionFrom(r).user
	if !u.IsAdmin {
		s.problem(w, r, http.StatusForbidden, "Only site administrators create projects. Ask one to create it and add you.")
		return
	}
	form := readProjectForm(r)
	if !projectNameRE.MatchString(form.Name) {
		s.renderProjects(w, r, http.StatusBadRequest, fmt.Sprintf("Project name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters.", form.Name), form)
		return
	}
	p := &store.Project{Name: form.Name}
	if err := form.apply(p, s.cfg.LocalRepos); err != nil {
		s.renderProjects(w, r, http.StatusBadRequest, err.Error(), form)
		return
	}
	if err := s.cfg.DB.CreateProject(r.Context(), p); err != nil {
		if errors.Is(err, store.ErrConflict) {
			s.renderProjects(w, r, http.StatusConflict, fmt.Sprintf("There is already a project called %q.", p.Name), form)
			return
		}
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.DB.SetMember(r.Context(), p.ID, u.ID, store.RoleOwner); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("project created", "project", p.Name, "by", u.Email)
	redirect(w, r, "/settings/projects/"+url.PathEscape(p.Name), "created")
}

func (s *Server) projectPage(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	s.renderProject(w, r, 0, "", p, role, formOf(p))
}

func (s *Server) renderProject(w http.ResponseWriter, r *http.Request, status int, errMsg string, p *store.Project, role store.Role, form projectForm) {
	s.render(w, r, status, "project", &view{Title: p.Name, Nav: "projects", Error: errMsg, Project: p, Role: role,
		Data: map[string]any{"Form": form, "Defaults": engine.DefaultPolicyRules(), "CanEdit": role.AtLeast(store.RoleAdmin)}})
}

func (s *Server) saveProject(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	form := readProjectForm(r)
	form.Name = p.Name
	before := p.Settings()
	if err := form.apply(p, s.cfg.LocalRepos); err != nil {
		s.renderProject(w, r, http.StatusBadRequest, err.Error(), p, role, form)
		return
	}
	if err := s.cfg.DB.UpdateProject(r.Context(), p); err != nil {
		s.fail(w, r, err)
		return
	}
	by := sessionFrom(r).user.Email
	if changes := store.SettingsChanges(before, p.Settings()); changes != "" {
		if err := s.cfg.DB.AddProjectAudit(r.Context(), &store.ProjectAudit{ProjectID: p.ID, Action: store.AuditSettingsSaved, Subject: p.Name, Detail: changes, Actor: by, Via: "settings page"}); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.log.Info("project saved", "project", p.Name, "by", by)
	redirect(w, r, "/settings/projects/"+url.PathEscape(p.Name), "saved")
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	if r.PostFormValue("confirm_name") != p.Name {
		s.renderProject(w, r, http.StatusBadRequest, fmt.Sprintf("To delete the project, type its name (%s) in the box.", p.Name), p, role, formOf(p))
		return
	}
	if err := s.cfg.DB.DeleteProject(r.Context(), p.Name); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.cfg.ProjectDeleted != nil {
		s.cfg.ProjectDeleted(r.Context(), p.ID)
	}
	s.log.Info("project deleted", "project", p.Name, "by", sessionFrom(r).user.Email)
	redirect(w, r, "/settings/projects", "deleted")
}

func (s *Server) membersPage(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	s.renderMembers(w, r, 0, "", p, role)
}

func (s *Server) renderMembers(w http.ResponseWriter, r *http.Request, status int, errMsg string, p *store.Project, role store.Role) {
	ms, err := s.cfg.DB.ListMembers(r.Context(), p.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, "members", &view{Title: p.Name + " · members", Nav: "projects", Error: errMsg, Project: p, Role: role,
		Data: map[string]any{"Members": ms, "CanEdit": role.AtLeast(store.RoleAdmin), "IsOwner": role == store.RoleOwner}})
}

// setMember adds a member by email or changes a member's role, by the
// membership rules (shared with `hero member add`).
func (s *Server) setMember(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	_, err := s.members.Set(r.Context(), p, s.actor(r, role), r.PostFormValue("email"), store.Role(r.PostFormValue("role")))
	if err != nil {
		s.memberRefused(w, r, err, p, role)
		return
	}
	redirect(w, r, "/settings/projects/"+url.PathEscape(p.Name)+"/members", "member")
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	uid, err := strconv.ParseInt(r.PathValue("user"), 10, 64)
	if err != nil {
		s.problem(w, r, http.StatusNotFound, "No such member.")
		return
	}
	if err := s.members.Remove(r.Context(), p, s.actor(r, role), uid); err != nil {
		s.memberRefused(w, r, err, p, role)
		return
	}
	redirect(w, r, "/settings/projects/"+url.PathEscape(p.Name)+"/members", "removed")
}

// actor is the logged-in person acting in a project with role.
func (s *Server) actor(r *http.Request, role store.Role) membership.Actor {
	return membership.Actor{Name: sessionFrom(r).user.Email, Role: role, Via: "settings page"}
}

// memberRefused shows a refused membership change on the members page
// with the status that fits it.
func (s *Server) memberRefused(w http.ResponseWriter, r *http.Request, err error, p *store.Project, role store.Role) {
	status := refusalStatus(err)
	if status == 0 {
		s.fail(w, r, err)
		return
	}
	s.renderMembers(w, r, status, err.Error(), p, role)
}

func (s *Server) secretsPage(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	s.renderSecrets(w, r, 0, "", "", p, role)
}

func (s *Server) renderSecrets(w http.ResponseWriter, r *http.Request, status int, errMsg, name string, p *store.Project, role store.Role) {
	secrets, err := s.cfg.DB.ListSecrets(r.Context(), p.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	audit, err := s.cfg.DB.ListSecretAudit(r.Context(), p.ID, 50)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, "secrets", &view{Title: p.Name + " · secrets", Nav: "projects", Error: errMsg, Project: p, Role: role,
		Data: map[string]any{"Secrets": secrets, "Audit": audit, "Name": name, "CanEdit": role.AtLeast(store.RoleAdmin)}})
}

// setSecret adds or replaces a secret. The value goes from the form to the
// vault and nowhere else: it is not echoed back, logged, or put in an
// error, even when the form is rejected.
func (s *Server) setSecret(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	value := r.PostFormValue("value")
	if err := store.ValidateSecretName(name); err != nil {
		s.renderSecrets(w, r, http.StatusBadRequest, err.Error(), name, p, role)
		return
	}
	if value == "" {
		s.renderSecrets(w, r, http.StatusBadRequest, fmt.Sprintf("The value of %s is empty; paste the value (it is never shown again).", name), name, p, role)
		return
	}
	if len(value) > store.MaxSecretSize {
		s.renderSecrets(w, r, http.StatusBadRequest, fmt.Sprintf("The value of %s is %d bytes; the limit is %d.", name, len(value), store.MaxSecretSize), name, p, role)
		return
	}
	by := sessionFrom(r).user.Email
	action, err := s.cfg.DB.SetSecretAudited(r.Context(), p.ID, name, []byte(value), by)
	if err != nil {
		// Store errors name the secret, never its value.
		s.fail(w, r, err)
		return
	}
	s.log.Info("secret "+action, "project", p.Name, "secret", name, "by", by)
	ok := "secret-added"
	if action == store.SecretReplaced {
		ok = "secret-set"
	}
	redirect(w, r, "/settings/projects/"+url.PathEscape(p.Name)+"/secrets", ok)
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	name := r.PathValue("secret")
	by := sessionFrom(r).user.Email
	err := s.cfg.DB.DeleteSecretAudited(r.Context(), p.ID, name, by)
	if errors.Is(err, store.ErrNotFound) {
		s.renderSecrets(w, r, http.StatusNotFound, fmt.Sprintf("There is no secret called %q.", name), "", p, role)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("secret deleted", "project", p.Name, "secret", name, "by", by)
	redirect(w, r, "/settings/projects/"+url.PathEscape(p.Name)+"/secrets", "secret-gone")
}
