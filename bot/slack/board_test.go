package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// lateBoard lets the test make the board after the adapter it projects
// to (cmd/hero makes the board first and registers the adapter).
type lateBoard struct{ b *kanban.Service }

func (l *lateBoard) Board(ctx context.Context, a kanban.Actor, project string) (*kanban.Board, error) {
	return l.b.Board(ctx, a, project)
}

func (l *lateBoard) AddCard(ctx context.Context, a kanban.Actor, n kanban.NewCard) (*store.KanbanCard, *store.KanbanColumn, error) {
	return l.b.AddCard(ctx, a, n)
}

func (l *lateBoard) MoveCard(ctx context.Context, a kanban.Actor, project, id, column string) (*kanban.Move, error) {
	return l.b.MoveCard(ctx, a, project, id, column)
}

// plainBoardEnv is an env whose adapter's board is the board over the
// env's store, starting no runs.
func plainBoardEnv(t *testing.T) (*env, *kanban.Service) {
	t.Helper()
	late := &lateBoard{}
	e := newEnv(t, nil, func(c *Config, _ *fakeSlack) { c.Board = late })
	b, err := kanban.New(kanban.Config{Store: e.db})
	if err != nil {
		t.Fatal(err)
	}
	late.b = b
	return e, b
}

// cliOwner is the project's owner on the command line (hero card add).
var cliOwner = kanban.Actor{ID: "local:ana", Surface: "cli", Role: func(context.Context, int64) (store.Role, error) { return store.RoleOwner, nil }}

// selectCard sends the block_actions payload of a card message's Move ▸
// select.
func (e *env) selectCard(user, channel, msgTS, value, trigger string) {
	payload := fmt.Sprintf(`{"type":"block_actions","user":{"id":%q,"username":"u","team_id":"T1"},"api_app_id":"A1","token":"x",`+
		`"container":{"type":"message","message_ts":%q,"channel_id":%q,"is_ephemeral":false},"trigger_id":%q,`+
		`"team":{"id":"T1","domain":"acme"},"channel":{"id":%q,"name":"dev"},"message":{"type":"message","ts":%q,"text":"x"},`+
		`"actions":[{"action_id":%q,"block_id":"b","type":"static_select","selected_option":{"text":{"type":"plain_text","text":"x"},"value":%q},"action_ts":"1700000001.000001"}]}`,
		user, msgTS, channel, trigger, channel, msgTS, actionCardMove, value)
	e.post("/slack/interactions", formType, []byte(url.Values{"payload": {payload}}.Encode()), time.Now())
}

// TestBoardInSlack: a card of a project is a message with its column in
// the project's bound channel; a member's Move ▸ moves it (and the
// message shows the new column), a viewer is told why not.
func TestBoardInSlack(t *testing.T) {
	late := &lateBoard{}
	e := newEnv(t, nil, func(c *Config, _ *fakeSlack) { c.Board = late })
	b, err := kanban.New(kanban.Config{Store: e.db, Runs: e.eng, Places: e.eng})
	if err != nil {
		t.Fatal(err)
	}
	late.b = b
	b.AddProjection(e.a)
	e.eng.AddSurface(b)
	e.bind("C1")
	e.user("U1", "mia@example.com", store.RoleMember)
	e.user("U2", "vic@example.com", store.RoleViewer)
	owner := cliOwner

	c, _, err := b.AddCard(t.Context(), owner, kanban.NewCard{Project: e.project.Name, Title: "Make <b>search</b> fast", Column: "Backlog"})
	if err != nil {
		t.Fatal(err)
	}
	calls := e.slack.waitFor(t, "the card's message", func(cs []apiCall) bool {
		for _, x := range cs {
			if x.Method == "chat.postMessage" && x.Channel == "C1" && strings.Contains(x.Blocks, c.ID) {
				return true
			}
		}
		return false
	})
	var msg apiCall
	for _, x := range calls {
		if x.Method == "chat.postMessage" && strings.Contains(x.Blocks, c.ID) {
			msg = x
		}
	}
	if strings.Contains(msg.Blocks, "<b>") {
		t.Errorf("the title reached Slack unescaped: %s", msg.Blocks)
	}
	for _, want := range []string{`Make \u0026lt;b\u0026gt;search`, "Backlog", "Move ▸", actionCardStart} {
		if !strings.Contains(msg.Blocks, want) {
			t.Errorf("card message lacks %q: %s", want, msg.Blocks)
		}
	}
	d, err := b.Card(t.Context(), owner, "", c.ID)
	if err != nil || len(d.Threads) != 1 || d.Threads[0].ThreadRef != "T1/C1/"+msg.TS {
		t.Fatalf("card threads %+v %v", d.Threads, err)
	}

	e.selectCard("U2", "C1", msg.TS, c.ID+" review", "tr1")
	e.slack.waitFor(t, "the viewer's refusal", func(cs []apiCall) bool {
		for _, x := range cs {
			if x.Method == "chat.postEphemeral" && x.User == "U2" && strings.Contains(x.Text, "needs the member role") {
				return true
			}
		}
		return false
	})
	e.selectCard("U1", "C1", msg.TS, c.ID+" review", "tr2")
	e.slack.waitFor(t, "the message showing Review", func(cs []apiCall) bool {
		for _, x := range cs {
			if x.Method == "chat.update" && x.TS == msg.TS && strings.Contains(x.Text, "(Review)") {
				return true
			}
		}
		return false
	})
	if d, _ = b.Card(t.Context(), owner, "", c.ID); d.Column.Name != "Review" || d.History[len(d.History)-1].Actor != "slack:T1/U1" {
		t.Fatalf("card in %s, last history %+v", d.Column.Name, d.History[len(d.History)-1])
	}
}

// TestAppHomeShowsTheBoard: the App Home tab shows the person's boards,
// and a board too big for Slack's 100 blocks is summarised.
func TestAppHomeShowsTheBoard(t *testing.T) {
	e, b := plainBoardEnv(t)
	e.user("U1", "mia@example.com", store.RoleMember)
	owner := cliOwner
	for i := range 12 {
		if _, _, err := b.AddCard(t.Context(), owner, kanban.NewCard{Project: e.project.Name, Title: fmt.Sprintf("Task %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// More projects than 100 blocks hold.
	for i := range 25 {
		p := &store.Project{Name: fmt.Sprintf("zextra%02d", i), RepoURL: "local", DefaultBranch: "main"}
		if err := e.db.CreateProject(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		u, _ := e.db.UserByEmail(t.Context(), "mia@example.com")
		e.db.SetMember(t.Context(), p.ID, u.ID, store.RoleMember)
		if _, _, err := b.AddCard(t.Context(), owner, kanban.NewCard{Project: p.Name, Title: "Extra"}); err != nil {
			t.Fatal(err)
		}
	}
	ev := `{"type":"event_callback","team_id":"T1","event_id":"EvHome","event":{"type":"app_home_opened","user":"U1","channel":"D1","tab":"home"}}`
	e.post("/slack/events", "application/json", []byte(ev), time.Now())
	calls := e.slack.waitFor(t, "the Home tab", func(cs []apiCall) bool {
		for _, x := range cs {
			if x.Method == "views.publish" && x.User == "U1" {
				return true
			}
		}
		return false
	})
	var view string
	for _, x := range calls {
		if x.Method == "views.publish" {
			view = x.Blocks
		}
	}
	for _, want := range []string{`"type":"home"`, `*To do* (12)`, "Task 0", "… and 2 more", "more cards do not fit here"} {
		if !strings.Contains(view, want) {
			t.Errorf("Home view lacks %q: %.600s", want, view)
		}
	}
	if n := strings.Count(view, `"type":"section"`) + strings.Count(view, `"type":"header"`); n > 100 {
		t.Fatalf("%d blocks, Slack takes 100", n)
	}
}

// TestAppHomeFitsLongTitles: ten 256-byte titles of &, < and > (five
// times as long once escaped for mrkdwn) would make a column's section
// longer than the 3,000 characters Slack takes, and Slack would refuse
// the whole Home tab; the section keeps the titles that fit, whole, and
// counts the rest in "… and N more".
func TestAppHomeFitsLongTitles(t *testing.T) {
	e, b := plainBoardEnv(t)
	e.user("U1", "mia@example.com", store.RoleMember)
	owner := cliOwner
	var titles []string
	for i := range 12 {
		title := fmt.Sprintf("Ü%02d:  ", i) + strings.Repeat("<&>", 83) // 256 bytes
		if len(title) != 256 {
			t.Fatalf("title of %d bytes", len(title))
		}
		if _, _, err := b.AddCard(t.Context(), owner, kanban.NewCard{Project: e.project.Name, Title: title}); err != nil {
			t.Fatal(err)
		}
		titles = append(titles, title)
	}
	ev := `{"type":"event_callback","team_id":"T1","event_id":"EvHome","event":{"type":"app_home_opened","user":"U1","channel":"D1","tab":"home"}}`
	e.post("/slack/events", "application/json", []byte(ev), time.Now())
	calls := e.slack.waitFor(t, "the Home tab", func(cs []apiCall) bool {
		return slices.ContainsFunc(cs, func(x apiCall) bool { return x.Method == "views.publish" && x.User == "U1" })
	})
	var view struct {
		Blocks []struct {
			Type string
			Text struct{ Text string }
		}
	}
	for _, x := range calls {
		if x.Method == "views.publish" {
			if err := json.Unmarshal([]byte(x.Blocks), &view); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(view.Blocks); n == 0 || n > 100 {
		t.Fatalf("%d blocks, Slack takes 1 to 100", n)
	}
	var column string
	for _, bl := range view.Blocks {
		checkSectionText(t, bl.Text.Text)
		if strings.HasPrefix(bl.Text.Text, "*To do* (12)") {
			column = bl.Text.Text
		}
	}
	if column == "" {
		t.Fatalf("no To do section: %+v", view.Blocks)
	}
	shown := 0
	for _, title := range titles {
		if strings.Contains(column, "• "+mrkdwnOf(title)+" `") {
			shown++
		}
	}
	if shown == 0 || !strings.Contains(column, fmt.Sprintf("_… and %d more_", 12-shown)) {
		t.Fatalf("%d whole titles shown, and the section does not count the other %d: %s", shown, 12-shown, column)
	}
}

// checkSectionText fails unless s fits a Slack section (3,000
// characters, valid UTF-8) and has no escape cut in half.
func checkSectionText(t *testing.T, s string) {
	t.Helper()
	if n := utf8.RuneCountInString(s); n > 3000 || !utf8.ValidString(s) {
		t.Fatalf("section text of %d characters (valid UTF-8: %v), Slack takes 3000", n, utf8.ValidString(s))
	}
	if rest := strings.NewReplacer("&amp;", "", "&lt;", "", "&gt;", "").Replace(s); strings.Contains(rest, "&") {
		i := strings.Index(rest, "&")
		t.Fatalf("a cut escape in the section: %q", rest[max(0, i-10):min(len(rest), i+10)])
	}
}

// mrkdwnOf is how Slack's mrkdwn spells text as typed.
func mrkdwnOf(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// TestCardMessageFits: a card's root message keeps its section within
// Slack's 3,000 characters however long its escaped parts are, cut
// before an escape rather than through it.
func TestCardMessageFits(t *testing.T) {
	col := &store.KanbanColumn{ID: 1, Name: strings.Repeat("Ä&", 700), Slug: "todo", Kind: store.KindTodo}
	for _, assignee := range []string{"ana", strings.Repeat("é<", 600), strings.Repeat("x", 7) + strings.Repeat("&", 800)} {
		c := &store.KanbanCard{ID: "c1", Title: strings.Repeat("<&>", 85), Assignee: assignee}
		blocks := cardBlocks(c, col, []store.KanbanColumn{*col})
		raw, err := json.Marshal(blocks[0])
		if err != nil {
			t.Fatal(err)
		}
		var sec struct{ Text struct{ Text string } }
		json.Unmarshal(raw, &sec)
		checkSectionText(t, sec.Text.Text)
		if !strings.HasPrefix(sec.Text.Text, "*"+mrkdwnOf(c.Title)+"*") {
			t.Fatalf("the title is not shown whole: %.200s", sec.Text.Text)
		}
	}
	for i := range 6 {
		// Every cut point around an escape and a two-byte rune.
		s := clipMrkdwn(strings.Repeat("x", 2990+i)+"é&amp;&lt;é", 3000)
		checkSectionText(t, s)
		if !strings.HasSuffix(s, "…") {
			t.Fatalf("clipped text without …: %q", s[len(s)-12:])
		}
	}
}

// TestCardsFromElsewhereArePosted: a card added where Slack is not
// reachable (the command line) is posted by the catch-up, once.
func TestCardsFromElsewhereArePosted(t *testing.T) {
	e := newEnv(t, nil)
	e.bind("C1")
	c := cardAdder(t, e)("From the terminal")
	posts := func() int {
		n := 0
		for _, x := range e.slack.snapshot() {
			if x.Method == "chat.postMessage" && strings.Contains(x.Blocks, c.ID) {
				n++
			}
		}
		return n
	}
	if posts() != 0 {
		t.Fatal("posted without Slack")
	}
	for range 2 {
		if err := e.catchUp(t); err != nil {
			t.Fatal(err)
		}
	}
	if n := posts(); n != 1 {
		t.Fatalf("card posted %d times", n)
	}
	ts, err := e.db.CardThreads(t.Context(), c.ID)
	if err != nil || len(ts) != 1 || !strings.HasPrefix(ts[0].ThreadRef, "T1/C1/") {
		t.Fatalf("threads %+v %v", ts, err)
	}
}

// TestFailedCardPostIsRetried: a card post Slack refuses in passing (a
// 500, a dropped connection, a rate limit) is posted by a later catch-up
// pass, once, even when two replicas' passes race.
func TestFailedCardPostIsRetried(t *testing.T) {
	e := newEnv(t, nil)
	e.bind("C1")
	add := cardAdder(t, e)
	posts := func(c *store.KanbanCard) int {
		n := 0
		for _, x := range e.slack.snapshot() {
			if x.Method == "chat.postMessage" && strings.Contains(x.Blocks, c.ID) {
				n++
			}
		}
		return n
	}

	c := add("Posted after an outage")
	e.slack.failNext("chat.postMessage", 500, 0)
	for i, want := range []string{"500", "EOF"} {
		err := e.catchUp(t)
		if err == nil || !strings.Contains(err.Error(), c.ID) {
			t.Fatalf("pass %d during the outage: %v, want the card's failed post (%s)", i+1, err, want)
		}
		if posts(c) != 0 || len(e.cardThreads(t, c)) != 0 {
			t.Fatalf("pass %d: the card shows in Slack though its post failed", i+1)
		}
	}
	for range 2 {
		if err := e.catchUp(t); err != nil {
			t.Fatal(err)
		}
	}
	if n := posts(c); n != 1 {
		t.Fatalf("card posted %d times after the outage, want 1", n)
	}
	if ts := e.cardThreads(t, c); len(ts) != 1 || !strings.HasPrefix(ts[0].ThreadRef, "T1/C1/") {
		t.Fatalf("threads %+v", ts)
	}

	// Two replicas' passes at once, the first post refused: still one.
	for round, fail := range []func(){
		func() { e.slack.failNext("chat.postMessage", 500) },
		func() { e.slack.mu.Lock(); e.slack.limit429["chat.postMessage"] = 1; e.slack.mu.Unlock() },
		func() {},
	} {
		c := add(fmt.Sprintf("Raced %d", round))
		fail()
		e.racingCatchUps(t, func(error) {})
		if n := posts(c); n != 1 {
			t.Fatalf("round %d: card posted %d times by racing passes, want 1", round, n)
		}
		if ts := e.cardThreads(t, c); len(ts) != 1 {
			t.Fatalf("round %d: threads %+v, want one", round, ts)
		}
	}
}

// TestCardPostOutlivesACrashAndALostReply: a replica that died between
// claiming a card's post and recording it (before or after posting)
// leaves a claim the catch-up takes over after the grace period, posting
// the card once or adopting the message it finds; a post that reached
// Slack but whose reply was lost is found and not posted again.
func TestCardPostOutlivesACrashAndALostReply(t *testing.T) {
	e := newEnv(t, nil)
	e.bind("C1")
	add := cardAdder(t, e)
	posts := func(c *store.KanbanCard) []apiCall {
		var out []apiCall
		for _, x := range e.slack.snapshot() {
			if x.Method == "chat.postMessage" && strings.Contains(x.Blocks, c.ID) {
				out = append(out, x)
			}
		}
		return out
	}
	claim := func(c *store.KanbanCard, age time.Duration) {
		if _, err := e.db.ClaimOnce(t.Context(), slackCardClaim, c.ID+"@T1/C1", "crashed/1", time.Now().Add(-age)); err != nil {
			t.Fatal(err)
		}
	}

	// Crashed after claiming, before posting: left alone within the
	// grace period, posted once after it.
	c := add("Claimed by a replica that crashed")
	claim(c, time.Minute)
	if err := e.catchUp(t); err != nil {
		t.Fatal(err)
	}
	if n := len(posts(c)); n != 0 {
		t.Fatalf("a claim within its grace period was taken over: %d posts", n)
	}
	e.db.ReleaseClaim(t.Context(), slackCardClaim, c.ID+"@T1/C1", "crashed/1")
	claim(c, kanban.CardClaimGrace+time.Minute)
	e.racingCatchUps(t, func(err error) {
		if err != nil {
			t.Error(err)
		}
	})
	ps := posts(c)
	if len(ps) != 1 {
		t.Fatalf("card of a crashed claim posted %d times, want 1", len(ps))
	}
	if !strings.Contains(ps[0].Metadata, `"hero_card"`) || !strings.Contains(ps[0].Metadata, c.ID) {
		t.Fatalf("card message metadata %q, want the hero_card event with the card id", ps[0].Metadata)
	}
	if ts := e.cardThreads(t, c); len(ts) != 1 || ts[0].ThreadRef != "T1/C1/"+ps[0].TS {
		t.Fatalf("threads %+v, want the posted message", ts)
	}

	// The reply to a post that succeeded is lost: the pass fails, the
	// next finds the message and records it instead of posting again.
	c = add("Posted, but the reply was lost")
	e.slack.loseNextReply("chat.postMessage", 1)
	if err := e.catchUp(t); err == nil || !strings.Contains(err.Error(), c.ID) {
		t.Fatalf("pass with the lost reply: %v, want the card's post failing", err)
	}
	for range 2 {
		if err := e.catchUp(t); err != nil {
			t.Fatal(err)
		}
	}
	ps = posts(c)
	if len(ps) != 1 {
		t.Fatalf("card whose reply was lost posted %d times, want 1", len(ps))
	}
	if ts := e.cardThreads(t, c); len(ts) != 1 || ts[0].ThreadRef != "T1/C1/"+ps[0].TS {
		t.Fatalf("threads %+v, want the message posted before the lost reply (%s)", ts, ps[0].TS)
	}

	// Crashed after posting, before recording: the take-over adopts
	// the message.
	c = add("Posted just before a crash")
	claim(c, 0)
	th, err := e.a.postCardMessage(t.Context(), "T1/C1", c, mustColumn(t, e.db, c), mustColumns(t, e.db, c))
	if err != nil {
		t.Fatal(err)
	}
	e.db.ReleaseClaim(t.Context(), slackCardClaim, c.ID+"@T1/C1", "crashed/1")
	claim(c, kanban.CardClaimGrace+time.Minute)
	if err := e.catchUp(t); err != nil {
		t.Fatal(err)
	}
	if n := len(posts(c)); n != 1 {
		t.Fatalf("card posted %d times after a crash that followed its post, want 1", n)
	}
	if ts := e.cardThreads(t, c); len(ts) != 1 || ts[0].ThreadRef != th.ThreadRef {
		t.Fatalf("threads %+v, want the crashed replica's message %s", ts, th.ThreadRef)
	}
}

func mustColumns(t *testing.T, db *store.DB, c *store.KanbanCard) []store.KanbanColumn {
	t.Helper()
	cols, err := db.BoardColumns(t.Context(), c.BoardID)
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

func mustColumn(t *testing.T, db *store.DB, c *store.KanbanCard) *store.KanbanColumn {
	t.Helper()
	for _, k := range mustColumns(t, db, c) {
		if k.ID == c.ColumnID {
			return &k
		}
	}
	t.Fatalf("card %s has no column", c.ID)
	return nil
}

// TestReplyInACardThreadSteersItsRun: a reply mentioning hero in a card's
// thread reaches the card's latest run.
func TestReplyInACardThreadSteersItsRun(t *testing.T) {
	e := newEnv(t, nil)
	e.bind("C1")
	e.user("U1", "mia@example.com", store.RoleMember)
	b, err := kanban.New(kanban.Config{Store: e.db})
	if err != nil {
		t.Fatal(err)
	}
	owner := cliOwner
	c, _, err := b.AddCard(t.Context(), owner, kanban.NewCard{Project: e.project.Name, Title: "Tidy the docs"})
	if err != nil {
		t.Fatal(err)
	}
	// The card's run, waiting for its turn (as while another replica drives it).
	ex := &store.Execution{ProjectID: e.project.ID, Status: store.StatusQueued, Surface: kanban.SurfaceName, ThreadRef: c.ID, Requester: "local:ana", Task: "Tidy the docs"}
	if err := e.db.CreateExecution(t.Context(), ex); err != nil {
		t.Fatal(err)
	}
	if err := e.db.AddCardRun(t.Context(), c.ID, ex.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.db.AddCardThread(t.Context(), c.ID, Surface, "T1/C1/1700000500.000100"); err != nil {
		t.Fatal(err)
	}
	reply := eventJSON("EvSteer", "app_mention", "U1", "C1", "<@UHERO> keep the old headings", "1700000600.000100", "1700000500.000100")
	e.post("/slack/events", "application/json", reply, time.Now())
	e.waitHandled("ev:EvSteer")
	ins, err := e.db.TakeInputs(t.Context(), ex.ID)
	if err != nil || len(ins) != 1 || ins[0].Body != "keep the old headings" || ins[0].Author != "slack:T1/U1" {
		t.Fatalf("inputs of the card's run: %+v %v", ins, err)
	}
}

// TestCardAndBoardCommands: /hero card adds a card to the channel's
// project (and the channel shows it), /hero board lists the board; a
// viewer is refused with the rule's words.
func TestCardAndBoardCommands(t *testing.T) {
	e, b := plainBoardEnv(t)
	b.AddProjection(e.a)
	e.bind("C1")
	e.user("U1", "mia@example.com", store.RoleMember)
	e.user("U2", "vic@example.com", store.RoleViewer)

	e.command("U1", "C1", "card Ship the <!channel> search", "t1")
	e.slack.waitFor(t, "the card's confirmation", func(cs []apiCall) bool {
		for _, x := range cs {
			if strings.Contains(x.Text, "created in To do on the board of *web*") {
				return true
			}
		}
		return false
	})
	e.command("U2", "C1", "card Sneaky", "t2")
	e.slack.waitFor(t, "the viewer's refusal", func(cs []apiCall) bool {
		for _, x := range cs {
			if strings.Contains(x.Text, "needs the member role in project web; you are viewer") {
				return true
			}
		}
		return false
	})
	e.command("U2", "C1", "board", "t3")
	calls := e.slack.waitFor(t, "the board", func(cs []apiCall) bool {
		for _, x := range cs {
			if strings.Contains(x.Text, "Board of *web*") {
				return true
			}
		}
		return false
	})
	for _, x := range calls {
		if strings.Contains(x.Text, "Board of *web*") {
			if !strings.Contains(x.Text, "*To do* (1)") || !strings.Contains(x.Text, "Ship the ‹!channel› search") || strings.Contains(x.Text, "<!channel>") || strings.Contains(x.Text, "Sneaky") {
				t.Fatalf("board text: %s", x.Text)
			}
		}
	}
}

// TestBoardCommandFitsLongTitles: /hero board with long titles full of
// markup characters is one plain-text message (no section, so no 3,000
// character limit applies), within the 40,000 characters Slack takes for
// a message's text, each column showing ten cards and counting the rest.
func TestBoardCommandFitsLongTitles(t *testing.T) {
	e, b := plainBoardEnv(t)
	e.bind("C1")
	e.user("U1", "mia@example.com", store.RoleMember)
	owner := cliOwner
	for i := range 12 {
		title := fmt.Sprintf("Ü%02d:  ", i) + strings.Repeat("<&>", 83)
		if _, _, err := b.AddCard(t.Context(), owner, kanban.NewCard{Project: e.project.Name, Title: title}); err != nil {
			t.Fatal(err)
		}
	}
	e.command("U1", "C1", "board", "t1")
	calls := e.slack.waitFor(t, "the board", func(cs []apiCall) bool {
		return slices.ContainsFunc(cs, func(x apiCall) bool { return strings.Contains(x.Text, "Board of *web*") })
	})
	for _, x := range calls {
		if !strings.Contains(x.Text, "Board of *web*") {
			continue
		}
		if x.Blocks != "" {
			t.Fatalf("the board came with blocks: %.300s", x.Blocks)
		}
		if n := utf8.RuneCountInString(x.Text); n > 40000 {
			t.Fatalf("board text of %d characters, Slack takes 40000", n)
		}
		if !strings.Contains(x.Text, "*To do* (12)") || !strings.Contains(x.Text, "Ü09:") || strings.Contains(x.Text, "Ü10:") || !strings.Contains(x.Text, "… and 2 more") {
			t.Fatalf("board text: %.600s", x.Text)
		}
	}
}

// A card's message shows who it is assigned to and links its issue with
// an "Open issue" button (a link: Slack opens it, hero ignores the click);
// a card already in progress offers no Start.
func TestCardMessageShowsAssigneeAndIssue(t *testing.T) {
	cols := []store.KanbanColumn{
		{ID: 1, Name: "To do", Slug: "to-do", Kind: store.KindTodo},
		{ID: 2, Name: "In progress", Slug: "in-progress", Kind: store.KindDoing},
	}
	c := &store.KanbanCard{ID: "kq3b7x2ma", Title: "Fix the login loop", Assignee: "mia@example.com", IssueURL: "https://github.com/acme/web/issues/41"}
	find := func(blocks []slack.Block) (text string, buttons map[string]*slack.ButtonBlockElement) {
		buttons = map[string]*slack.ButtonBlockElement{}
		for _, b := range blocks {
			switch b := b.(type) {
			case *slack.SectionBlock:
				text = b.Text.Text
			case *slack.ActionBlock:
				for _, el := range b.Elements.ElementSet {
					if btn, ok := el.(*slack.ButtonBlockElement); ok {
						buttons[btn.Text.Text] = btn
					}
				}
			}
		}
		return text, buttons
	}
	text, buttons := find(cardBlocks(c, &cols[0], cols))
	if !strings.Contains(text, "assigned to mia@example.com") || !strings.Contains(text, "To do") {
		t.Errorf("card text %q", text)
	}
	if b := buttons["Open issue"]; b == nil || b.URL != c.IssueURL {
		t.Errorf("Open issue button %+v", b)
	}
	if buttons["Start"] == nil {
		t.Error("a card in To do offers no Start button")
	}
	_, buttons = find(cardBlocks(c, &cols[1], cols))
	if buttons["Start"] != nil {
		t.Error("a card in progress offers Start")
	}
	c.IssueURL = ""
	if _, buttons = find(cardBlocks(c, &cols[0], cols)); buttons["Open issue"] != nil {
		t.Error("a card without an issue has an Open issue button")
	}
}

// cardAdder adds cards to the env's project as hero card add on the
// command line does: through a board with no Slack projection, so only a
// catch-up pass posts them.
func cardAdder(t *testing.T, e *env) func(title string) *store.KanbanCard {
	t.Helper()
	cli, err := kanban.New(kanban.Config{Store: e.db})
	if err != nil {
		t.Fatal(err)
	}
	owner := cliOwner
	return func(title string) *store.KanbanCard {
		t.Helper()
		c, _, err := cli.AddCard(t.Context(), owner, kanban.NewCard{Project: e.project.Name, Title: title})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// cardThreads are the places card c lives, as recorded.
func (e *env) cardThreads(t *testing.T, c *store.KanbanCard) []store.KanbanCardThread {
	t.Helper()
	ts, err := e.db.CardThreads(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// catchUp is one pass of the card catch-up over the last hour's cards.
func (e *env) catchUp(t *testing.T) error {
	return e.a.PostMissingCards(t.Context(), time.Now().Add(-time.Hour))
}

// racingCatchUps is three rounds of two replicas' catch-up passes at
// once; seen gets each pass's error.
func (e *env) racingCatchUps(t *testing.T, seen func(error)) {
	for range 3 {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { seen(e.catchUp(t)) })
		}
		wg.Wait()
	}
}
