package web

import (
	"context"
	"fmt"
	"github.com/hero-dev/hero/refusal"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// The board page (/settings/projects/{project}/board): columns and cards,
// forms to add, edit and move cards (plain buttons; board.js adds drag
// and drop), and a page per card with its history, links and runs. The
// rules are kanban's: the page only translates its refusals.

func (s *Server) mountBoard(h func(string, http.HandlerFunc)) {
	h("GET /settings/projects/{project}/board", s.project(store.RoleViewer, s.boardPage))
	h("POST /settings/projects/{project}/board/cards", s.project(store.RoleViewer, s.addCard))
	h("GET /settings/projects/{project}/board/cards/{card}", s.project(store.RoleViewer, s.cardPage))
	h("POST /settings/projects/{project}/board/cards/{card}", s.project(store.RoleViewer, s.editCard))
	h("POST /settings/projects/{project}/board/cards/{card}/move", s.project(store.RoleViewer, s.moveCard))
	h("POST /settings/projects/{project}/board/settings", s.project(store.RoleViewer, s.boardSettings))
}

// boardActor is the signed-in person on the board, with their role as
// the settings page derives it.
func (s *Server) boardActor(r *http.Request) kanban.Actor {
	u := sessionFrom(r).user
	return kanban.Actor{ID: u.Email, Surface: "web", Role: func(ctx context.Context, projectID int64) (store.Role, error) {
		return s.effectiveRole(ctx, u, projectID)
	}}
}

// refusalStatus is the HTTP status of a refusal by hero's rules (the
// board, schedules, membership); 0 for other errors.
func refusalStatus(err error) int {
	switch refusal.KindOf(err) {
	case refusal.Invalid, refusal.LastOwner:
		return http.StatusBadRequest
	case refusal.Forbidden:
		return http.StatusForbidden
	case refusal.NotFound:
		return http.StatusNotFound
	case refusal.Limit, refusal.Conflict:
		return http.StatusConflict
	}
	return 0
}

type boardData struct {
	Board    *kanban.Board
	CanWrite bool
	// CanManage shows the board's settings (WIP limits, links): admins.
	CanManage bool
	// Cards are each column's cards, rendered by cardItems.
	Cards map[int64]template.HTML
	// Form is a card form as typed, when adding it was refused.
	Title, Body, Column string
}

func (s *Server) boardPage(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	s.renderBoard(w, r, p, role, 0, "", boardData{})
}

func (s *Server) renderBoard(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role, status int, errMsg string, d boardData) {
	b, err := s.board.Board(r.Context(), s.boardActor(r), p.Name)
	if err != nil {
		if st := refusalStatus(err); st != 0 {
			s.problem(w, r, st, err.Error())
			return
		}
		s.fail(w, r, err)
		return
	}
	d.Board = b
	d.CanWrite = role.AtLeast(store.RoleMember)
	d.CanManage = role.AtLeast(store.RoleAdmin)
	d.Cards = cardItems(p.Name, sessionFrom(r).csrf, d.CanWrite, b.Columns)
	s.render(w, r, status, "board", &view{Title: p.Name + " · board", Project: p, Role: role, Error: errMsg, Data: d})
}

// refused answers a refusal of the rules on the board page (status and
// message), or fails for other errors.
func (s *Server) refused(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role, err error, d boardData) {
	if st := refusalStatus(err); st != 0 {
		s.renderBoard(w, r, p, role, st, err.Error(), d)
		return
	}
	s.fail(w, r, err)
}

func (s *Server) addCard(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	d := boardData{Title: r.PostFormValue("title"), Body: strings.ReplaceAll(r.PostFormValue("body"), "\r\n", "\n"), Column: r.PostFormValue("column")}
	c, _, err := s.board.AddCard(r.Context(), s.boardActor(r), kanban.NewCard{Project: p.Name, Title: d.Title, Body: d.Body, Column: d.Column})
	if err != nil {
		s.refused(w, r, p, role, err, d)
		return
	}
	http.Redirect(w, r, "/settings/projects/"+p.Name+"/board?ok=card-added#"+c.ID, http.StatusSeeOther)
}

func (s *Server) moveCard(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	m, err := s.board.MoveCard(r.Context(), s.boardActor(r), p.Name, r.PathValue("card"), r.PostFormValue("column"))
	if err != nil {
		s.refused(w, r, p, role, err, boardData{})
		return
	}
	ok := "card-moved"
	switch {
	case !m.Moved:
		ok = ""
	case m.RunErr != nil:
		s.log.Warn("card run did not start", "card", m.Card.ID, "err", m.RunErr)
		ok = "card-moved-no-run"
	case m.Run != nil:
		ok = "card-run"
	}
	back := "/settings/projects/" + p.Name + "/board"
	if r.PostFormValue("back") == "card" {
		back += "/cards/" + m.Card.ID
	}
	redirect(w, r, back, ok)
}

type cardData struct {
	*kanban.Detail
	Columns  []store.KanbanColumn
	CanWrite bool
	Lines    []historyLine
}

type historyLine struct {
	At   any
	Text string
}

func (s *Server) cardPage(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	s.renderCard(w, r, p, role, 0, "", nil)
}

func (s *Server) renderCard(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role, status int, errMsg string, typed *store.KanbanCard) {
	d, err := s.board.Card(r.Context(), s.boardActor(r), p.Name, r.PathValue("card"))
	if err != nil {
		if st := refusalStatus(err); st != 0 {
			s.problem(w, r, st, err.Error())
			return
		}
		s.fail(w, r, err)
		return
	}
	cols, err := s.cfg.DB.BoardColumns(r.Context(), d.Card.BoardID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if typed != nil {
		d.Card.Title, d.Card.Body, d.Card.Assignee = typed.Title, typed.Body, typed.Assignee
	}
	cd := cardData{Detail: d, Columns: cols, CanWrite: role.AtLeast(store.RoleMember)}
	for i := len(d.History) - 1; i >= 0; i-- {
		cd.Lines = append(cd.Lines, historyLine{At: d.History[i].At, Text: kanban.Describe(d.History[i])})
	}
	s.render(w, r, status, "card", &view{Title: p.Name + " · card " + d.Card.ID, Project: p, Role: role, Error: errMsg, Data: cd})
}

func (s *Server) editCard(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	title, body, assignee := r.PostFormValue("title"), strings.ReplaceAll(r.PostFormValue("body"), "\r\n", "\n"), r.PostFormValue("assignee")
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil {
		s.problem(w, r, http.StatusBadRequest, "The form lacks the card's version; reload the card and edit again.")
		return
	}
	c, err := s.board.EditCard(r.Context(), s.boardActor(r), p.Name, r.PathValue("card"), kanban.Edit{Title: &title, Body: &body, Assignee: &assignee, Version: version})
	if err != nil {
		if st := refusalStatus(err); st != 0 {
			s.renderCard(w, r, p, role, st, err.Error(), &store.KanbanCard{Title: title, Body: body, Assignee: assignee})
			return
		}
		s.fail(w, r, err)
		return
	}
	redirect(w, r, "/settings/projects/"+p.Name+"/board/cards/"+c.ID, "card-saved")
}

// cardItems renders each column's cards (<li> elements). It is written
// by hand because html/template's per-action escaping made a board of
// 1,000 cards take 25 ms of CPU to render; this takes about 2 ms. Every
// value is escaped with template.HTMLEscapeString; the page's CSP allows
// no inline script anyway. The Move select's options are rendered once
// per column.
func cardItems(project, csrf string, canWrite bool, cols []kanban.Column) map[int64]template.HTML {
	esc := template.HTMLEscapeString
	options := map[int64]string{}
	for _, at := range cols {
		var o strings.Builder
		for _, c := range cols {
			sel := ""
			if c.ID == at.ID {
				sel = " selected"
			}
			fmt.Fprintf(&o, `<option value="%s"%s>%s</option>`, esc(c.Slug), sel, esc(c.Name))
		}
		options[at.ID] = o.String()
	}
	base := "/settings/projects/" + url.PathEscape(project) + "/board/cards/"
	out := map[int64]template.HTML{}
	for _, col := range cols {
		var b strings.Builder
		for _, c := range col.Cards {
			id := esc(c.ID)
			b.WriteString(`<li class="kcard" id="` + id + `" data-card="` + id + `"`)
			if canWrite {
				b.WriteString(` draggable="true"`)
			}
			b.WriteString(`><a class="ktitle" href="` + esc(base+c.ID) + `">` + esc(c.Title) + `</a><span class="kmeta mono">` + id)
			if c.IssueNumber > 0 {
				b.WriteString(" · #" + strconv.Itoa(c.IssueNumber))
			}
			if c.Assignee != "" {
				b.WriteString(" · @" + esc(c.Assignee))
			}
			b.WriteString(`</span>`)
			if canWrite {
				b.WriteString(`<form method="post" action="` + esc(base+c.ID) + `/move" class="move"><input type="hidden" name="csrf" value="` + esc(csrf) +
					`"><select name="column" aria-label="Move to">` + options[col.ID] + `</select><button class="small">Move</button></form>`)
			}
			b.WriteString("</li>\n")
		}
		if len(col.Cards) == 0 {
			b.WriteString(`<li class="empty muted small">No cards</li>`)
		}
		out[col.ID] = template.HTML(b.String())
	}
	return out
}

// boardSettings saves the board's WIP limits and links (admins; the rules
// say so, the page only shows the form to them).
func (s *Server) boardSettings(w http.ResponseWriter, r *http.Request, p *store.Project, role store.Role) {
	a := s.boardActor(r)
	b, err := s.board.Board(r.Context(), a, p.Name)
	if err != nil {
		s.refused(w, r, p, role, err, boardData{})
		return
	}
	// Every value is checked before anything is saved.
	limits := map[string]int{}
	for _, col := range b.Columns {
		raw := strings.TrimSpace(r.PostFormValue("wip_" + col.Slug))
		n := 0
		if raw != "" {
			if n, err = strconv.Atoi(raw); err != nil || n < 0 {
				s.renderBoard(w, r, p, role, http.StatusBadRequest, fmt.Sprintf("The WIP limit of %s must be a number of cards (empty or 0 for none); got %q.", col.Name, raw), boardData{})
				return
			}
		}
		if n != col.WIPLimit {
			limits[col.Slug] = n
		}
	}
	l := kanban.Link{GitHubProject: strings.TrimSpace(r.PostFormValue("github_project")), DiscordForum: strings.TrimSpace(r.PostFormValue("discord_forum"))}
	if l.GitHubProject == "" && b.Board.GitHubProject != "" {
		l.GitHubProject = "none"
	}
	if l.DiscordForum == "" && b.Board.DiscordForum != "" {
		l.DiscordForum = "none"
	}
	if l.GitHubProject == b.Board.GitHubProject {
		l.GitHubProject = ""
	}
	if l.DiscordForum == b.Board.DiscordForum {
		l.DiscordForum = ""
	}
	if l.GitHubProject != "" && l.GitHubProject != "none" {
		if _, err := kanban.ParseGitHubProject(l.GitHubProject); err != nil {
			s.refused(w, r, p, role, err, boardData{})
			return
		}
	}
	if l.GitHubProject != "" || l.DiscordForum != "" {
		if _, err := s.board.LinkBoard(r.Context(), a, p.Name, l); err != nil {
			s.refused(w, r, p, role, err, boardData{})
			return
		}
	}
	for slug, n := range limits {
		if err := s.board.SetWIPLimit(r.Context(), a, p.Name, slug, n); err != nil {
			s.refused(w, r, p, role, err, boardData{})
			return
		}
	}
	redirect(w, r, "/settings/projects/"+p.Name+"/board", "board-saved")
}
