package discord

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/hero-dev/hero/bot/discord/discordtest"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/llm/openaitest"
	"github.com/hero-dev/hero/store"
)

// boardRef lets the adapter's Config name a board made after the engine
// the harness builds (the board needs it); the test sets it before use.
type boardRef struct{ s *kanban.Service }

func (b *boardRef) MoveCard(ctx context.Context, a kanban.Actor, project, id, column string) (*kanban.Move, error) {
	return b.s.MoveCard(ctx, a, project, id, column)
}

func (b *boardRef) Board(ctx context.Context, a kanban.Actor, project string) (*kanban.Board, error) {
	return b.s.Board(ctx, a, project)
}

func (b *boardRef) AddCard(ctx context.Context, a kanban.Actor, n kanban.NewCard) (*store.KanbanCard, *store.KanbanColumn, error) {
	return b.s.AddCard(ctx, a, n)
}

const testForum = "500"

// boardEnv is a hero with the Discord surface, the real board (its card
// runs on the real engine) linked to a forum of the fake, and a real
// gateway session to the fake gateway, which sends a THREAD_UPDATE for
// every tag change.
func boardEnv(t *testing.T, model *openaitest.Server) (*env, *kanban.Service) {
	t.Helper()
	ref := &boardRef{}
	gw := discordtest.NewGateway(t, testBot)
	e := newEnv(t, model, func(c *Config) {
		c.Board = ref
		c.Gateway = NewSessionGateway(testToken, c.APIURL, &http.Client{Timeout: 10 * time.Second})
		c.LeaseTTL = 300 * time.Millisecond
	})
	// Card runs live until the test ends (this cleanup runs before the
	// harness waits for the engine's runs).
	runs, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	svc, err := kanban.New(kanban.Config{Store: e.db, Runs: e.eng, Places: e.eng, RunContext: runs})
	if err != nil {
		t.Fatal(err)
	}
	ref.s = svc
	svc.AddProjection(e.a)
	e.eng.AddSurface(svc)
	e.discord.AddChannel(discordtest.Channel{ID: testForum, GuildID: testGuild, Type: 15, Name: "board",
		AvailableTags: []discordtest.Tag{{ID: "77", Name: "bug"}}})
	e.discord.SetThreadUpdates(func(ch []byte) { gw.DispatchEvent("THREAD_UPDATE", ch) })
	e.discord.SetGateway(gw.URL())
	gw.WaitConnections(t, 1, 10*time.Second)
	owner := e.user("100", "owner@example.com", store.RoleOwner)
	if _, err := svc.LinkBoard(t.Context(), ownerActor(e, owner), e.project.Name, kanban.Link{DiscordForum: testForum}); err != nil {
		t.Fatal(err)
	}
	return e, svc
}

func ownerActor(e *env, u *store.User) kanban.Actor {
	return kanban.Actor{ID: u.Email, Surface: "web", Role: func(ctx context.Context, pid int64) (store.Role, error) { return e.db.MemberRole(ctx, pid, u.ID) }}
}

// tagID is the forum's tag named name.
func tagID(t *testing.T, e *env, name string) string {
	t.Helper()
	forum, _ := e.discord.Channel(testForum)
	for _, tg := range forum.AvailableTags {
		if tg.Name == name {
			return tg.ID
		}
	}
	t.Fatalf("the forum has no tag %q: %+v", name, forum.AvailableTags)
	return ""
}

func (e *env) cardColumn(t *testing.T, id string) string {
	t.Helper()
	c, err := e.db.Card(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := e.db.BoardColumns(t.Context(), c.BoardID)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range cols {
		if col.ID == c.ColumnID {
			return col.Name
		}
	}
	return ""
}

func (e *env) waitColumn(t *testing.T, card, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.cardColumn(t, card) != want {
		if time.Now().After(deadline) {
			t.Fatalf("card %s is in %s, want %s", card, e.cardColumn(t, card), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) waitTags(t *testing.T, post string, want ...string) {
	t.Helper()
	e.discord.WaitFor(t, "post "+post+" tagged "+strings.Join(want, ","), 20*time.Second, func(s *discordtest.Server) bool {
		c, _ := s.Channel(post)
		return sameSet(c.AppliedTags, want)
	})
}

// A board linked to a forum: a card is a post tagged with its column (the
// forum gets a tag per column, beside its own); a linked member changing
// the tag to In progress moves the card, which starts its run, and the
// run reports in the post, where a mention of hero steers it and the
// confirmation's buttons work; a stranger's tag change is put back and
// they are told why; hero's own tag changes come back as thread updates
// and move nothing (no loop).
func TestForumBoardEndToEnd(t *testing.T) {
	t.Parallel()
	steered := make(chan string, 1)
	model := openaitest.NewServer(t,
		openaitest.Tools(call("delete_file", `{"path":"README.md"}`)),
		openaitest.Turn{ToolCalls: []openaitest.ToolCall{call("finish", `{"summary":"Removed the readme"}`)}, Check: sentTo(steered)},
	)
	e, svc := boardEnv(t, model)
	ctx := t.Context()
	e.user("200", "member@example.com", store.RoleMember)
	owner, err := e.db.UserByEmail(ctx, "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}

	card, col, err := svc.AddCard(ctx, ownerActor(e, owner), kanban.NewCard{Project: e.project.Name, Title: "Drop the readme", Body: "It is stale."})
	if err != nil || col.Name != "To do" {
		t.Fatalf("add card: %v in %v", err, col)
	}
	// The forum has a tag per column, after its own.
	forum, _ := e.discord.Channel(testForum)
	var names []string
	for _, tg := range forum.AvailableTags {
		names = append(names, tg.Name)
	}
	if !slices.Equal(names, []string{"bug", "Backlog", "To do", "In progress", "Review", "Done"}) {
		t.Fatalf("forum tags %q", names)
	}
	threads, err := e.db.CardThreads(ctx, card.ID)
	if err != nil || len(threads) != 1 || threads[0].Surface != Surface {
		t.Fatalf("card threads %+v (%v), want its post", threads, err)
	}
	post := threads[0].ThreadRef
	pc, ok := e.discord.Channel(post)
	if !ok || pc.ParentID != testForum || pc.Name != "Drop the readme" || !sameSet(pc.AppliedTags, []string{tagID(t, e, "To do")}) {
		t.Fatalf("post %+v: want a post in the forum named like the card, tagged To do", pc)
	}
	if first, _ := e.discord.Message(post); !strings.Contains(first.Content, "It is stale.") || !strings.Contains(first.Content, card.ID) {
		t.Fatalf("the post's first message %q", first.Content)
	}

	// A member moves the card by its tag (keeping a tag of the forum's own).
	e.discord.SetTags(post, "200", []string{tagID(t, e, "In progress"), "77"})
	e.waitColumn(t, card.ID, "In progress")
	ask := e.waitMessage(t, "the card run's confirmation in the post", post, hasButtons)
	if !strings.Contains(ask.Content, "README.md") {
		t.Fatalf("confirmation %q", ask.Content)
	}
	runs, err := e.db.CardRuns(ctx, card.ID)
	if err != nil || len(runs) != 1 {
		t.Fatalf("card runs %v (%v)", runs, err)
	}
	ex, _ := e.db.Execution(ctx, runs[0])
	if ex.Requester != "discord:200" {
		t.Fatalf("the card's run was started by %q, want discord:200", ex.Requester)
	}

	// A stranger's tag change is put back, and they are told why.
	edits := func() int { c, _ := e.discord.Channel(post); return c.Edits }
	e.discord.SetTags(post, "666", []string{tagID(t, e, "Done"), "77"})
	e.waitMessage(t, "the refusal in the post", post, func(m discordtest.Message) bool {
		return strings.Contains(m.Content, "<@666>") && strings.Contains(m.Content, "does not know your Discord account") && strings.Contains(m.Content, "stays in **In progress**")
	})
	// It notifies the stranger and nobody else.
	for _, c := range e.discord.Calls() {
		if c.Method == "POST" && c.Path == "/channels/"+post+"/messages" && strings.Contains(c.Content(), "<@666>") {
			if got := c.JSON(); !strings.Contains(got, `"parse":[]`) || !strings.Contains(got, `"users":["666"]`) {
				t.Fatalf("the refusal's allowed_mentions: %s", got)
			}
		}
	}
	e.waitTags(t, post, tagID(t, e, "In progress"), "77")
	if got := e.cardColumn(t, card.ID); got != "In progress" {
		t.Fatalf("a stranger's tag moved the card to %s", got)
	}
	// hero's putting back came as a thread update too: it moves nothing
	// and is not answered with another change.
	settled := edits()
	time.Sleep(700 * time.Millisecond)
	if n := edits(); n != settled {
		t.Fatalf("the post's tags keep changing (%d → %d edits): hero answers its own changes", settled, n)
	}
	said := 0
	for _, m := range e.discord.Messages(post) {
		if strings.Contains(m.Content, "stays in") {
			said++
		}
	}
	if said != 1 {
		t.Fatalf("%d refusals in the post, want the stranger's one: hero's own changes were taken for a person's", said)
	}
	// A linked viewer is refused by the board's rules, as everywhere.
	e.user("300", "viewer@example.com", store.RoleViewer)
	e.discord.SetTags(post, "300", []string{tagID(t, e, "Review")})
	e.waitMessage(t, "the viewer's refusal", post, func(m discordtest.Message) bool {
		return strings.Contains(m.Content, "<@300>") && strings.Contains(m.Content, "needs the member role") && strings.Contains(m.Content, "stays in **In progress**")
	})
	e.waitTags(t, post, tagID(t, e, "In progress"))
	if got := e.cardColumn(t, card.ID); got != "In progress" {
		t.Fatalf("a viewer's tag moved the card to %s", got)
	}
	// Two column tags at once say no column: put back, and why.
	e.discord.SetTags(post, "200", []string{tagID(t, e, "Review"), tagID(t, e, "Done")})
	e.waitMessage(t, "the two-tag refusal", post, func(m discordtest.Message) bool {
		return strings.Contains(m.Content, "<@200>") && strings.Contains(m.Content, "exactly one column tag")
	})
	e.waitTags(t, post, tagID(t, e, "In progress"))
	if got := e.cardColumn(t, card.ID); got != "In progress" {
		t.Fatalf("two column tags moved the card to %s", got)
	}

	// A mention in the post steers the card's run; its buttons decide.
	msg := discordtest.NewID()
	e.a.onGatewayMessage(mustMessage(t, discordtest.MessageCreate(msg, discordtest.Actor{Guild: testGuild, Channel: post, User: "200"},
		"<@"+testBot+"> keep a copy in docs/", []string{testBot}, "", "")))
	e.waitHandled("msg:" + msg)
	row := ask.Components[0].(map[string]any)["components"].([]any)
	click, code := e.click("200", post, ask.ID, row[0].(map[string]any)["custom_id"].(string))
	if code != 200 {
		t.Fatalf("click: %d", code)
	}
	e.waitHandled("ia:" + click)
	select {
	case got := <-steered:
		if !strings.Contains(got, "keep a copy in docs/") {
			t.Fatalf("the model did not see the steering from the post:\n%s", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the card's run did not continue after the approval")
	}
	e.waitMessage(t, "the run's end in the post", post, func(m discordtest.Message) bool { return strings.Contains(m.Content, "Removed the readme") })
	// status in the post means the card's run.
	st := discordtest.NewID()
	e.a.onGatewayMessage(mustMessage(t, discordtest.MessageCreate(st, discordtest.Actor{Guild: testGuild, Channel: post, User: "200"},
		"<@"+testBot+"> status", []string{testBot}, "", "")))
	e.waitMessage(t, "the card run's status", post, func(m discordtest.Message) bool {
		return strings.Contains(m.Content, "Run `"+ex.ID+"` is *succeeded*") || strings.Contains(m.Content, "Run `"+ex.ID+"` is **succeeded**")
	})

	// The history has the person's move and nothing from the echoes.
	hist, err := e.db.CardHistory(ctx, card.ID)
	if err != nil {
		t.Fatal(err)
	}
	var moves []string
	for _, h := range hist {
		if h.Action == store.CardMoved {
			moves = append(moves, kanban.Describe(h))
		}
	}
	if len(moves) != 1 || !strings.Contains(moves[0], "discord:200 moved it from To do to In progress (discord)") {
		t.Fatalf("moves %q, want the member's one", moves)
	}
}

// A forum with no room for the board's column tags (Discord allows 20)
// is refused with what to do; the card is still made.
func TestForumTagLimit(t *testing.T) {
	t.Parallel()
	e, svc := boardEnv(t, nil)
	var tags []discordtest.Tag
	for i := range 18 {
		tags = append(tags, discordtest.Tag{ID: itoa(int64(900 + i)), Name: "t" + itoa(int64(i))})
	}
	e.discord.AddChannel(discordtest.Channel{ID: "501", GuildID: testGuild, Type: 15, Name: "full", AvailableTags: tags})
	cols, err := e.db.BoardColumns(t.Context(), mustBoard(t, svc, e).ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.statusTags(t.Context(), "501", cols); err == nil || !strings.Contains(err.Error(), "has 18 tags and the board needs 5 more") || !strings.Contains(err.Error(), "allows 20") {
		t.Fatalf("a full forum: %v", err)
	}
	e.discord.AddChannel(discordtest.Channel{ID: "502", GuildID: testGuild, Type: 0, Name: "text"})
	if _, err := e.a.statusTags(t.Context(), "502", cols); err == nil || !strings.Contains(err.Error(), "not a forum") {
		t.Fatalf("a text channel as the board's forum: %v", err)
	}
}

func mustBoard(t *testing.T, svc *kanban.Service, e *env) *store.KanbanBoard {
	t.Helper()
	owner, err := e.db.UserByEmail(t.Context(), "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Board(t.Context(), ownerActor(e, owner), e.project.Name)
	if err != nil {
		t.Fatal(err)
	}
	return b.Board
}

// A card added where Discord is out of reach (the command line's board
// has no Discord projection) is posted by the catch-up, once.
func TestForumPostsMissingCards(t *testing.T) {
	t.Parallel()
	e, svc := boardEnv(t, nil)
	c := cardAdder(t, e)("From the terminal")
	owner, err := e.db.UserByEmail(t.Context(), "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := e.catchUp(t); err != nil {
			t.Fatal(err)
		}
	}
	threads, err := e.db.CardThreads(t.Context(), c.ID)
	if err != nil || len(threads) != 1 {
		t.Fatalf("card threads %+v (%v), want one post", threads, err)
	}
	pc, _ := e.discord.Channel(threads[0].ThreadRef)
	if pc.ParentID != testForum || !sameSet(pc.AppliedTags, []string{tagID(t, e, "Backlog")}) {
		t.Fatalf("post %+v: want it in the forum, tagged Backlog", pc)
	}
	// Discord archives a quiet post; a move still shows there (and
	// revives it).
	e.discord.Archive(threads[0].ThreadRef)
	if _, err := svc.MoveCard(t.Context(), ownerActor(e, owner), "", c.ID, "Review"); err != nil {
		t.Fatal(err)
	}
	e.waitTags(t, threads[0].ThreadRef, tagID(t, e, "Review"))
	if pc, _ := e.discord.Channel(threads[0].ThreadRef); pc.Archived {
		t.Fatal("the moved card's post is still archived")
	}
	posts := 0
	for _, call := range e.discord.Calls() {
		if call.Method == "POST" && call.Path == "/channels/"+testForum+"/threads" {
			posts++
		}
	}
	if posts != 1 {
		t.Fatalf("%d posts made for one card", posts)
	}
}

// The catch-up offers every card of the last day each minute: cards
// posted before cost it no request to Discord (the forum is read only
// for a post being made).
func TestForumCatchUpAsksNothingOfPostedCards(t *testing.T) {
	t.Parallel()
	e, _ := boardEnv(t, nil)
	add := cardAdder(t, e)
	for i := range 3 {
		add("Posted before " + strconv.Itoa(i))
	}
	if err := e.catchUp(t); err != nil {
		t.Fatal(err)
	}
	before := len(e.discord.Calls())
	for range 2 {
		if err := e.catchUp(t); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range e.discord.Calls()[before:] {
		if strings.HasPrefix(c.Path, "/channels/"+testForum) || strings.Contains(c.Path, "/threads") {
			t.Errorf("a catch-up over posted cards asked Discord %s %s", c.Method, c.Path)
		}
	}
}

// A card post Discord refuses in passing (a 500, a dropped connection)
// is made by a later catch-up pass, once, even when two replicas' passes
// race.
func TestForumRetriesFailedCardPosts(t *testing.T) {
	t.Parallel()
	e, _ := boardEnv(t, nil)
	add := cardAdder(t, e)
	threadsPath := "/channels/" + testForum + "/threads"
	// posts counts the card's posts Discord made (answered 201).
	posts := func(c *store.KanbanCard) int {
		n := 0
		for _, call := range e.discord.Calls() {
			if call.Method == "POST" && call.Path == threadsPath && call.Status/100 == 2 && call.Body["name"] == c.Title {
				n++
			}
		}
		return n
	}

	c := add("Posted after an outage")
	e.discord.FailNext("POST", threadsPath, http.StatusInternalServerError)
	e.discord.FailNext("POST", threadsPath, 0)
	for i := range 2 {
		err := e.catchUp(t)
		if err == nil || !strings.Contains(err.Error(), c.ID) {
			t.Fatalf("pass %d during the outage: %v, want the card's failed post", i+1, err)
		}
		if posts(c) != 0 || len(e.cardThreads(t, c)) != 0 {
			t.Fatalf("pass %d: the card shows in the forum though its post failed", i+1)
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
	if ts := e.cardThreads(t, c); len(ts) != 1 {
		t.Fatalf("threads %+v, want one post", ts)
	}

	// Two replicas' passes at once, the first post refused: still one.
	for round, status := range []int{http.StatusInternalServerError, 0, -1} {
		c := add("Raced " + strconv.Itoa(round))
		if status >= 0 {
			e.discord.FailNext("POST", threadsPath, status)
		}
		e.racingCatchUps(t, func(error) {})
		if n := posts(c); n != 1 {
			t.Fatalf("round %d: card posted %d times by racing passes, want 1", round, n)
		}
		if ts := e.cardThreads(t, c); len(ts) != 1 {
			t.Fatalf("round %d: threads %+v, want one", round, ts)
		}
	}
}

// A replica that died between claiming a card's post and recording it
// (before or after posting) leaves a claim the catch-up takes over after
// the grace period, posting the card once or adopting the post it finds;
// a post Discord made but whose reply was lost is found and not made
// again.
func TestForumCardPostOutlivesACrashAndALostReply(t *testing.T) {
	t.Parallel()
	e, _ := boardEnv(t, nil)
	add := cardAdder(t, e)
	threadsPath := "/channels/" + testForum + "/threads"
	// posts are the forum's posts named as the card, as Discord holds them.
	posts := func(c *store.KanbanCard) []string {
		var ids []string
		for id, parent := range e.discord.Threads() {
			if ch, _ := e.discord.Channel(id); parent == testForum && ch.Name == c.Title {
				ids = append(ids, id)
			}
		}
		return ids
	}
	claim := func(c *store.KanbanCard, age time.Duration) {
		if _, err := e.db.ClaimOnce(t.Context(), discordCardClaim, c.ID+"@"+testForum, "crashed/1", time.Now().Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	release := func(c *store.KanbanCard) {
		if err := e.db.ReleaseClaim(t.Context(), discordCardClaim, c.ID+"@"+testForum, "crashed/1"); err != nil {
			t.Fatal(err)
		}
	}
	// A card of the same title posted before, and another card's post:
	// neither may be taken for the card.
	other := add("Claimed by a replica that crashed")
	if err := e.catchUp(t); err != nil {
		t.Fatal(err)
	}

	// Crashed after claiming, before posting: left alone within the
	// grace period, posted once after it.
	c := add("Claimed by a replica that crashed")
	claim(c, time.Minute)
	if err := e.catchUp(t); err != nil {
		t.Fatal(err)
	}
	if n := len(posts(c)); n != 1 {
		t.Fatalf("a claim within its grace period was taken over: %d posts named so, want only the other card's", n)
	}
	release(c)
	claim(c, kanban.CardClaimGrace+time.Minute)
	e.racingCatchUps(t, func(err error) {
		if err != nil {
			t.Error(err)
		}
	})
	if n := len(posts(c)); n != 2 {
		t.Fatalf("%d posts named as the two cards after the crashed claim, want 2", n)
	}
	mine, theirs := e.cardThreads(t, c), e.cardThreads(t, other)
	if len(mine) != 1 || len(theirs) != 1 || mine[0].ThreadRef == theirs[0].ThreadRef {
		t.Fatalf("threads %+v and the other card's %+v, want one post each", mine, theirs)
	}
	if m, ok := e.discord.Message(mine[0].ThreadRef); !ok || !strings.Contains(m.Content, "card `"+c.ID+"`") {
		t.Fatalf("the card's post %s says %q", mine[0].ThreadRef, m.Content)
	}

	// The reply to a post Discord made is lost: the pass fails, the next
	// finds the post and records it instead of posting again.
	c = add("Posted, but the reply was lost")
	e.discord.LoseReplyNext("POST", threadsPath)
	if err := e.catchUp(t); err == nil || !strings.Contains(err.Error(), c.ID) {
		t.Fatalf("pass with the lost reply: %v, want the card's post failing", err)
	}
	ps := posts(c)
	if len(ps) != 1 {
		t.Fatalf("%d posts after the lost reply, want the one Discord made", len(ps))
	}
	for range 2 {
		if err := e.catchUp(t); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(posts(c)); n != 1 {
		t.Fatalf("card whose reply was lost posted %d times, want 1", n)
	}
	if ts := e.cardThreads(t, c); len(ts) != 1 || ts[0].ThreadRef != ps[0] {
		t.Fatalf("threads %+v, want the post made before the lost reply (%s)", ts, ps[0])
	}

	// Crashed after posting, before recording: the take-over adopts
	// the post.
	c = add("Posted just before a crash")
	claim(c, 0)
	made, err := e.a.api.ForumThreadStartComplex(testForum, &discordgo.ThreadStart{Name: c.Title, AutoArchiveDuration: 10080},
		&discordgo.MessageSend{Content: cardPost(c)}, discordgo.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	release(c)
	claim(c, kanban.CardClaimGrace+time.Minute)
	if err := e.catchUp(t); err != nil {
		t.Fatal(err)
	}
	if n := len(posts(c)); n != 1 {
		t.Fatalf("card posted %d times after a crash that followed its post, want 1", n)
	}
	if ts := e.cardThreads(t, c); len(ts) != 1 || ts[0].ThreadRef != made.ID {
		t.Fatalf("threads %+v, want the crashed replica's post %s", ts, made.ID)
	}
}

// cardAdder adds Backlog cards to the env's project as its owner does on
// the command line: through a board with no Discord projection, so only
// a catch-up pass posts them.
func cardAdder(t *testing.T, e *env) func(title string) *store.KanbanCard {
	t.Helper()
	cli, err := kanban.New(kanban.Config{Store: e.db})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := e.db.UserByEmail(t.Context(), "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return func(title string) *store.KanbanCard {
		t.Helper()
		c, _, err := cli.AddCard(t.Context(), ownerActor(e, owner), kanban.NewCard{Project: e.project.Name, Title: title, Column: "Backlog"})
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
