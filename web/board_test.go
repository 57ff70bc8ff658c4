package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// columnOf returns the slug of the board column whose section holds card
// id on a rendered board page ("" if none does).
func columnOf(page, id string) string {
	for _, m := range regexp.MustCompile(`(?s)<section class="column" data-column="([^"]+)".*?</section>`).FindAllStringSubmatch(page, -1) {
		if strings.Contains(m[0], `data-card="`+id+`"`) {
			return m[1]
		}
	}
	return ""
}

// TestBoardPage: a member adds and moves cards with the plain forms, a
// viewer only reads, a stranger learns nothing, the WIP limit and a stale
// edit are refused with a message, and the card page shows the history.
func TestBoardPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.project("shop", map[string]store.Role{"mia@example.com": store.RoleMember, "vic@example.com": store.RoleViewer})
	mia, vic, eve := e.browser(), e.browser(), e.browser()
	mia.login("google", "mia@example.com")
	vic.login("google", "vic@example.com")
	eve.login("google", "eve@example.com")
	base := "/settings/projects/shop/board"

	st, loc, _ := mia.post(base+"/cards", url.Values{"title": {"Checkout <b>breaks</b>"}, "body": {"Steps:\r\n1. pay"}})
	if st != http.StatusSeeOther || !strings.HasPrefix(loc, base+"?ok=card-added#k") {
		t.Fatalf("add card: %d %s", st, loc)
	}
	id := loc[strings.Index(loc, "#")+1:]
	st, page := mia.get(base)
	if st != 200 || columnOf(page, id) != "to-do" || !strings.Contains(page, "Checkout &lt;b&gt;breaks&lt;/b&gt;") {
		t.Fatalf("board after add: %d, card in %q\n%s", st, columnOf(page, id), page)
	}
	for _, want := range []string{"Backlog 0", "To do 1", "In progress 0", "Review 0", "Done 0", "Add a card"} {
		if !strings.Contains(text(page), want) {
			t.Errorf("board lacks %q: %s", want, text(page))
		}
	}

	if st, loc, _ = mia.post(base+"/cards/"+id+"/move", url.Values{"column": {"in-progress"}}); st != http.StatusSeeOther || loc != base+"?ok=card-moved" {
		t.Fatalf("move: %d %s", st, loc)
	}
	if _, page = vic.get(base); columnOf(page, id) != "in-progress" || strings.Contains(page, "Add a card") || strings.Contains(page, "form.move") || strings.Contains(page, `class="move"`) {
		t.Fatalf("viewer's board: card in %q, forms shown?\n%s", columnOf(page, id), text(page))
	}
	if st, _, body := vic.post(base+"/cards/"+id+"/move", url.Values{"column": {"done"}}); st != http.StatusForbidden || !strings.Contains(text(body), "needs the member role in project shop; you are viewer") {
		t.Fatalf("viewer moves: %d %s", st, text(body))
	}
	if st, _, _ := vic.post(base+"/cards", url.Values{"title": {"sneaky"}}); st != http.StatusForbidden {
		t.Fatalf("viewer adds: %d", st)
	}
	if st, _ := eve.get(base); st != http.StatusNotFound {
		t.Fatalf("stranger reads the board: %d", st)
	}
	if st, _ := eve.get(base + "/cards/" + id); st != http.StatusNotFound {
		t.Fatalf("stranger reads the card: %d", st)
	}
	// A card id of another project is not reachable through this one.
	e.project("other", map[string]store.Role{"mia@example.com": store.RoleMember})
	if st, _, body := mia.post("/settings/projects/other/board/cards/"+id+"/move", url.Values{"column": {"done"}}); st != http.StatusNotFound || !strings.Contains(text(body), "there is no card "+id+" in project other") {
		t.Fatalf("move through another project: %d %s", st, text(body))
	}

	// Bad input keeps what was typed.
	st, _, body := mia.post(base+"/cards", url.Values{"title": {"Nice"}, "body": {"keep me"}, "column": {"doing"}})
	if st != http.StatusBadRequest || !strings.Contains(text(body), `there is no column "doing"`) || !strings.Contains(body, ">keep me</textarea>") {
		t.Fatalf("bad column: %d %s", st, text(body))
	}

	// The WIP limit names itself.
	svc, owner := boardOwner(t, e.db, "test")
	if err := svc.SetWIPLimit(t.Context(), owner, p.Name, "In progress", 1); err != nil {
		t.Fatal(err)
	}
	_, loc, _ = mia.post(base+"/cards", url.Values{"title": {"Second"}})
	second := loc[strings.Index(loc, "#")+1:]
	st, _, body = mia.post(base+"/cards/"+second+"/move", url.Values{"column": {"in-progress"}})
	if st != http.StatusConflict || !strings.Contains(text(body), "In progress is at its WIP limit of 1 card") || columnOf(body, second) != "to-do" {
		t.Fatalf("WIP limit: %d %s", st, text(body))
	}

	// The card page: facts, edit with the version seen, history newest first.
	st, page = mia.get(base + "/cards/" + id)
	ver := regexp.MustCompile(`name="version" value="(\d+)"`).FindStringSubmatch(page)
	if st != 200 || ver == nil {
		t.Fatalf("card page: %d\n%s", st, page)
	}
	if st, loc, _ = mia.post(base+"/cards/"+id, url.Values{"title": {"Checkout breaks on pay"}, "body": {"Steps"}, "assignee": {"mia"}, "version": {ver[1]}}); st != http.StatusSeeOther || loc != base+"/cards/"+id+"?ok=card-saved" {
		t.Fatalf("edit: %d %s", st, loc)
	}
	st, _, body = mia.post(base+"/cards/"+id, url.Values{"title": {"Lost words"}, "version": {ver[1]}})
	if st != http.StatusConflict || !strings.Contains(text(body), "changed by someone else") || !strings.Contains(body, `value="Lost words"`) {
		t.Fatalf("stale edit: %d %s", st, text(body))
	}
	_, page = vic.get(base + "/cards/" + id)
	txt := text(page)
	for _, want := range []string{"Checkout breaks on pay", "Column In progress", "Assignee mia", "mia@example.com edited the title, body, assignee (web)",
		"mia@example.com moved it from To do to In progress (web)", "mia@example.com created it in To do (web)"} {
		if !strings.Contains(txt, want) {
			t.Errorf("card page lacks %q: %s", want, txt)
		}
	}
	if strings.Index(txt, "edited the") > strings.Index(txt, "created it") {
		t.Errorf("history is not newest first: %s", txt)
	}
}

// TestBoardScriptIsStatic: drag and drop comes from a static file the CSP
// allows ('self'), never an inline script.
func TestBoardScriptIsStatic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.project("shop", map[string]store.Role{"mia@example.com": store.RoleMember})
	b := e.browser()
	b.login("google", "mia@example.com")
	resp, err := b.follow.Get(e.srv.URL + "/settings/projects/shop/board")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Fatalf("CSP = %q", csp)
	}
	_, page := b.get("/settings/projects/shop/board")
	if scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1); !slices.Equal(scripts, []string{`<script src="/settings/static/board.js" defer>`}) {
		t.Fatalf("scripts on the page: %q", scripts)
	}
	if st, js := b.get("/settings/static/board.js"); st != 200 || !strings.Contains(js, "form.submit()") {
		t.Fatalf("board.js: %d", st)
	}
}

// boardOwner is the board service of db and an actor id who owns every
// project, for setting boards up behind the pages' back.
func boardOwner(tb testing.TB, db *store.DB, id string) (*kanban.Service, kanban.Actor) {
	tb.Helper()
	svc, err := kanban.New(kanban.Config{Store: db})
	if err != nil {
		tb.Fatal(err)
	}
	return svc, kanban.Actor{ID: id, Surface: "test", Role: func(context.Context, int64) (store.Role, error) { return store.RoleOwner, nil }}
}

// seedBoard fills a project's board with n cards spread over its columns.
func seedBoard(tb testing.TB, db *store.DB, project string, n int) {
	tb.Helper()
	svc, owner := boardOwner(tb, db, "seed")
	cols := []string{"Backlog", "To do", "In progress", "Review", "Done"}
	for i := range n {
		if _, _, err := svc.AddCard(context.Background(), owner, kanban.NewCard{Project: project, Title: fmt.Sprintf("Card number %d: something to do", i),
			Body: "Some words about it.", Column: cols[i%len(cols)]}); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestBoardWithAThousandCardsRendersFast: the board page with 1,000
// cards renders server side with a p95 under 50 ms on SQLite. The
// handler runs in this goroutine, locked to its thread, and what is
// compared is the thread's CPU time per request: the wall clock of a
// machine shared with other work measures the neighbours (it is logged
// too, and BenchmarkBoardPage reports it for make bench).
func TestBoardWithAThousandCardsRendersFast(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 1,000 cards")
	}
	e := newEnv(t)
	e.project("big", map[string]store.Role{"mia@example.com": store.RoleMember})
	seedBoard(t, e.db, "big", 1000)
	b := e.browser()
	b.login("google", "mia@example.com")
	cpu, wall := renderTimes(t, e, b, "/settings/projects/big/board", 45)
	t.Logf("board with 1,000 cards: CPU p50 %s p95 %s; wall p50 %s p95 %s", cpu[len(cpu)/2], cpu[len(cpu)*95/100], wall[len(wall)/2], wall[len(wall)*95/100])
	if p95 := cpu[len(cpu)*95/100]; p95 > 50*time.Millisecond && !raceEnabled {
		t.Fatalf("CPU p95 %s, want < 50ms", p95)
	}
}

// renderTimes serves path n times in this goroutine (after 5 to warm up)
// and returns the sorted CPU and wall times.
func renderTimes(tb testing.TB, e *env, b *browser, path string, n int) (cpu, wall []time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	u, _ := url.Parse(e.srv.URL + path)
	threadCPU := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
			tb.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for i := range n + 5 {
		req := httptest.NewRequest("GET", u.String(), nil)
		for _, c := range b.jar.Cookies(u) {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		c0, w0 := threadCPU(), time.Now()
		e.srv.Config.Handler.ServeHTTP(rec, req)
		c1, w1 := threadCPU(), time.Now()
		if rec.Code != 200 || strings.Count(rec.Body.String(), `class="kcard"`) != 1000 {
			tb.Fatalf("board: %d with %d cards", rec.Code, strings.Count(rec.Body.String(), `class="kcard"`))
		}
		if i >= 5 {
			cpu, wall = append(cpu, c1-c0), append(wall, w1.Sub(w0))
		}
	}
	slices.Sort(cpu)
	slices.Sort(wall)
	return cpu, wall
}

func BenchmarkBoardPage(b *testing.B) {
	e := newEnv(b)
	e.project("big", map[string]store.Role{"mia@example.com": store.RoleMember})
	seedBoard(b, e.db, "big", 1000)
	br := e.browser()
	br.login("google", "mia@example.com")
	cpu, wall := renderTimes(b, e, br, "/settings/projects/big/board", 100)
	u, _ := url.Parse(e.srv.URL + "/settings/projects/big/board")
	for b.Loop() {
		req := httptest.NewRequest("GET", u.String(), nil)
		for _, c := range br.jar.Cookies(u) {
			req.AddCookie(c)
		}
		e.srv.Config.Handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	b.ReportMetric(float64(cpu[len(cpu)*95/100].Microseconds())/1000, "cpu-p95-ms")
	b.ReportMetric(float64(wall[len(wall)/2].Microseconds())/1000, "wall-p50-ms")
	b.ReportMetric(float64(wall[len(wall)*95/100].Microseconds())/1000, "wall-p95-ms")
}

// TestBoardSettings: admins set WIP limits and link a GitHub Project on
// the board page; a member neither sees the form nor may post it; a bad
// limit is named.
func TestBoardSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.project("shop", map[string]store.Role{"ada@example.com": store.RoleAdmin, "mia@example.com": store.RoleMember})
	ada, mia := e.browser(), e.browser()
	ada.login("google", "ada@example.com")
	mia.login("google", "mia@example.com")
	base := "/settings/projects/shop/board"
	if _, page := mia.get(base); strings.Contains(page, "Board settings") {
		t.Fatal("a member sees the board settings")
	}
	if st, _, body := mia.post(base+"/settings", url.Values{"wip_in-progress": {"2"}}); st != http.StatusForbidden || !strings.Contains(text(body), "needs the admin role") {
		t.Fatalf("member posts settings: %d %s", st, text(body))
	}
	if _, page := ada.get(base); !strings.Contains(page, "Board settings") {
		t.Fatal("an admin does not see the board settings")
	}
	if st, _, body := ada.post(base+"/settings", url.Values{"wip_in-progress": {"two"}}); st != http.StatusBadRequest || !strings.Contains(text(body), `The WIP limit of In progress must be a number of cards`) {
		t.Fatalf("bad limit: %d %s", st, text(body))
	}
	if st, loc, _ := ada.post(base+"/settings", url.Values{"wip_in-progress": {"2"}, "github_project": {"https://github.com/orgs/acme/projects/3"}}); st != http.StatusSeeOther || loc != base+"?ok=board-saved" {
		t.Fatalf("save: %d %s", st, loc)
	}
	_, page := ada.get(base)
	if !strings.Contains(text(page), "In progress 0 of 2") || !strings.Contains(page, `value="https://github.com/orgs/acme/projects/3"`) {
		t.Fatalf("board after saving: %s", text(page))
	}
	if st, _, body := ada.post(base+"/settings", url.Values{"github_project": {"https://github.com/acme/shop"}}); st != http.StatusBadRequest || !strings.Contains(text(body), "is not a GitHub Project URL") {
		t.Fatalf("bad project URL: %d %s", st, text(body))
	}
	if _, page = ada.get(base); !strings.Contains(text(page), "In progress 0 of 2") {
		t.Fatalf("a refused save changed the WIP limit: %s", text(page))
	}
}
