package slack

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot/fanout"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	ghsurface "github.com/hero-dev/hero/webhooks/github"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// twoSurfaces is hero with Slack and GitHub on one database and one
// engine (enginetest: no sandbox, no model), for what must hold on every
// surface alike. Deliveries are handed to each adapter as its inbox
// worker would.
type twoSurfaces struct {
	t     *testing.T
	db    *store.DB
	eng   *engine.Engine
	slack *Adapter
	fake  *fakeSlack
	// stopSlack stops the Slack adapter and the runs it started.
	stopSlack func()
	gh        *ghsurface.Service
	api       *githubtest.Server
	project   *store.Project
}

const crossRepo = "https://github.com/Codertocat/Hello-World"

func newTwoSurfaces(t *testing.T, model engine.Model) *twoSurfaces {
	t.Helper()
	db := storetest.Open(t)
	eng := enginetest.New(t, db, model)
	a, fs, stop := startSlack(t, db, eng)
	ctx := t.Context()
	api := githubtest.NewServer(t, "ghp_cross")
	pub, err := ghsurface.NewPublisher(ghsurface.PublisherConfig{APIURL: api.APIURL(), Credentials: ghsurface.StaticToken("ghp_cross"), WritePace: -1})
	if err != nil {
		t.Fatal(err)
	}
	gh, err := ghsurface.NewService(ghsurface.Config{Publisher: pub, Store: db, Engine: eng,
		BotLogin: "hero-bot", EditInterval: 20 * time.Millisecond, RunContext: ctx})
	if err != nil {
		t.Fatal(err)
	}
	fan := fanout.New(fanout.Config{Places: fanout.Over(a, gh)})
	eng.AddSurface(a)
	eng.AddSurface(gh)
	eng.AddSurface(fan)
	p := &store.Project{Name: "hello", RepoURL: crossRepo, DefaultBranch: "main"}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if err := db.BindChannel(t.Context(), Surface, "T1/C1", p.ID, "test"); err != nil {
		t.Fatal(err)
	}
	return &twoSurfaces{t: t, db: db, eng: eng, slack: a, fake: fs, stopSlack: stop, gh: gh, api: api, project: p}
}

// startSlack runs a Slack adapter on db and eng against a new fake
// Slack; stop ends it (and the runs it started) before the test does.
func startSlack(t *testing.T, db *store.DB, eng *engine.Engine) (a *Adapter, fs *fakeSlack, stop func()) {
	t.Helper()
	fs = newFakeSlack(t)
	a, err := New(Config{SigningSecret: testSecret, BotToken: "xoxb-test", APIURL: fs.apiURL(), Owner: "test",
		PostInterval: 5 * time.Millisecond, UpdateInterval: 20 * time.Millisecond}, db, eng, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, stop = enginetest.Serve(t, nil, a.Run)
	return a, fs, stop
}

// person is one hero user with role in the project, linked on both
// surfaces (Slack T1/<slackID>, GitHub <login>).
func (x *twoSurfaces) person(slackID, login string, role store.Role) {
	x.t.Helper()
	ctx := x.t.Context()
	u, err := x.db.UpsertUser(ctx, login+"@example.com", login)
	if err != nil {
		x.t.Fatal(err)
	}
	if role != "" {
		if err := x.db.SetMember(ctx, x.project.ID, u.ID, role); err != nil {
			x.t.Fatal(err)
		}
	}
	for _, id := range [][2]string{{Surface, "T1/" + slackID}, {"github", login}} {
		if err := x.db.LinkIdentity(ctx, id[0], id[1], u.ID); err != nil {
			x.t.Fatal(err)
		}
	}
}

var crossDelivery atomic.Int64

// slashCommand hands a /hero command to the Slack adapter and returns
// what the person was told (ephemeral or in the channel).
func (x *twoSurfaces) slashCommand(user, text string) string {
	x.t.Helper()
	f := url.Values{"team_id": {"T1"}, "channel_id": {"C1"}, "user_id": {user}, "command": {"/hero"}, "text": {text}}
	id := fmt.Sprintf("cmd-%d", crossDelivery.Add(1))
	before := len(x.fake.snapshot())
	if err := x.slack.process(x.t.Context(), &store.Delivery{Source: Surface, DeliveryID: id, Event: kindCommand, Payload: []byte(f.Encode())}); err != nil {
		x.t.Fatalf("slack %q: %v", text, err)
	}
	answer := func(c apiCall) bool {
		return (c.Method == "chat.postEphemeral" && c.User == user) || (c.Method == "chat.postMessage" && strings.HasPrefix(c.Text, "On it"))
	}
	calls := x.fake.waitFor(x.t, "the answer to "+text, func(cs []apiCall) bool {
		return has(cs[before:], "chat.postEphemeral", answer) || has(cs[before:], "chat.postMessage", answer)
	})
	for _, c := range calls[before:] {
		if answer(c) {
			return c.Text
		}
	}
	return ""
}

// comment hands an issue comment to the GitHub surface and returns what
// the person was told: a reply (without its @mention), or the reaction.
func (x *twoSurfaces) comment(login, body string) string {
	x.t.Helper()
	return x.commentOn(1, login, body)
}

// commentOn is comment on issue n.
func (x *twoSurfaces) commentOn(issue int, login, body string) string {
	x.t.Helper()
	n := crossDelivery.Add(1)
	payload, _ := json.Marshal(map[string]any{
		"action":     "created",
		"repository": map[string]any{"full_name": "Codertocat/Hello-World", "html_url": crossRepo, "name": "Hello-World", "owner": map[string]any{"login": "Codertocat"}},
		"issue":      map[string]any{"number": issue, "title": "Leap years", "body": "They are wrong.", "user": map[string]any{"login": "Codertocat", "type": "User"}, "author_association": "OWNER"},
		"comment": map[string]any{"id": 9000 + n, "body": body, "user": map[string]any{"login": login, "type": "User"}, "author_association": "COLLABORATOR",
			"updated_at": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second).Format(time.RFC3339)},
		"sender": map[string]any{"login": login, "type": "User"},
	})
	comments, reactions, runs := len(x.api.Comments()), len(x.api.Reactions()), x.runs("github")
	if err := x.gh.HandleDelivery(x.t.Context(), &store.Delivery{Source: ghsurface.Source, DeliveryID: fmt.Sprintf("gh-%d", n), Event: "issue_comment", Payload: payload}); err != nil {
		x.t.Fatalf("github %q: %v", body, err)
	}
	for _, c := range x.api.Comments()[comments:] {
		if rest, ok := strings.CutPrefix(c.Body, "@"+login+" "); ok {
			return rest
		}
	}
	for _, r := range x.api.Reactions()[reactions:] {
		if r.Content == "+1" {
			return "👍"
		}
	}
	if x.runs("github") > runs {
		return "On it" // GitHub shows a new run as its progress comment
	}
	return ""
}

func (x *twoSurfaces) runs(surface string) int {
	x.t.Helper()
	exs, err := x.db.ListExecutions(x.t.Context(), store.ExecutionFilter{ProjectID: x.project.ID})
	if err != nil {
		x.t.Fatal(err)
	}
	n := 0
	for _, ex := range exs {
		if ex.Surface == surface {
			n++
		}
	}
	return n
}

// pending adds a confirmation waiting on a run someone else started.
func (x *twoSurfaces) pending(surface, ref string) (*store.Execution, *store.Confirmation) {
	x.t.Helper()
	ctx := x.t.Context()
	now := time.Now()
	ex := &store.Execution{ProjectID: x.project.ID, Status: store.StatusWaiting, Surface: surface, ThreadRef: ref, Requester: "slack:T1/UOTHER",
		Task: "t", Model: "m", CreatedAt: now, UpdatedAt: now, LeaseUntil: now.Add(time.Hour), Owner: "elsewhere"}
	if err := x.db.CreateExecution(ctx, ex); err != nil {
		x.t.Fatal(err)
	}
	c := &store.Confirmation{ExecutionID: ex.ID, ProjectID: x.project.ID, Kind: store.ConfirmKindTool, Tool: "git_push", Action: "git push", Risk: "high",
		Status: store.ConfirmPending, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if err := x.db.CreateConfirmation(ctx, c); err != nil {
		x.t.Fatal(err)
	}
	return ex, c
}

// outcome is what an answer means, with the run or confirmation id it
// names blanked: the two surfaces act on different runs.
func outcome(answer, id string) string {
	switch {
	case strings.HasPrefix(answer, "On it"):
		return "started"
	case answer == "👍", strings.HasPrefix(answer, "Cancelling"), strings.HasPrefix(answer, "Confirmation `"):
		return "done"
	}
	if id == "" {
		return answer
	}
	return strings.ReplaceAll(answer, id, "ID")
}

// The same person with the same role gets the same answer on Slack and
// on GitHub when they start, approve or cancel: one role table, one
// dispatcher, texts written once.
func TestSameAnswerOnSlackAndGitHub(t *testing.T) {
	t.Parallel()
	x := newTwoSurfaces(t, nil)
	for i, tc := range []struct {
		role                   store.Role
		start, approve, cancel string // the expected outcome on both surfaces
	}{
		{store.RoleViewer, "You need to be a member of project *hello* to start or steer runs (your hero account is a viewer); ask one of its owners.",
			"You may not decide `ID`: only the person who started the run or a project approver can.",
			"Only the person who started run ID or a project member can do that: not allowed."},
		{store.RoleMember, "started", "You may not decide `ID`: only the person who started the run or a project approver can.", "done"},
		{store.RoleApprover, "started", "done", "done"},
	} {
		slackID, login := fmt.Sprintf("U%d", i), fmt.Sprintf("dev%d", i)
		x.person(slackID, login, tc.role)
		t.Run(string(tc.role), func(t *testing.T) {
			check := func(what, want, onSlack, slackID, onGitHub, githubID string) {
				t.Helper()
				if outcome(onSlack, slackID) != want || outcome(onGitHub, githubID) != want {
					t.Errorf("%s as %s: Slack said %q, GitHub said %q; want %q on both", what, tc.role, onSlack, onGitHub, want)
				}
			}
			check("start", tc.start, x.slashCommand(slackID, "fix the leap years"), "", x.comment(login, "@hero fix the leap years"), "")
			_, cs := x.pending(Surface, "T1/C1/1.0")
			_, cg := x.pending("github", "Codertocat/Hello-World#1")
			check("approve", tc.approve, x.slashCommand(slackID, "approve "+cs.ID), cs.ID, x.comment(login, "/hero approve "+cg.ID), cg.ID)
			es, _ := x.pending(Surface, "T1/C1/2.0")
			eg, _ := x.pending("github", "Codertocat/Hello-World#2")
			check("cancel", tc.cancel, x.slashCommand(slackID, "cancel "+es.ID), es.ID, x.comment(login, "/hero cancel "+eg.ID), eg.ID)
		})
	}
}

// A run that reports to a Slack thread and a GitHub issue at once (a
// kanban card's two places) asks in both; an approval made on GitHub
// decides it, and the Slack thread shows that decision too.
func TestFanOutShowsAGitHubApprovalInSlack(t *testing.T) {
	t.Parallel()
	model := enginetest.Script(enginetest.Call("delete_file", `{"path":"README.md"}`), enginetest.Finish("deleted the readme"))
	x := newTwoSurfaces(t, model)
	x.person("U1", "dev1", store.RoleApprover)
	ctx := t.Context()
	slackThread, issue := "T1/C1/1700000900.000001", "Codertocat/Hello-World#5"
	ex, err := x.eng.Start(ctx, engine.StartRequest{Project: x.project, Task: "remove the readme", Surface: fanout.Name,
		ThreadRef: fanout.Ref(fanout.Destination{Surface: Surface, Ref: slackThread}, fanout.Destination{Surface: "github", Ref: issue}),
		By:        engine.Operator("local:test")})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{Surface, slackThread}, {"github", issue}} {
		if err := x.db.LinkThread(ctx, l[0], l[1], ex.ID); err != nil {
			t.Fatal(err)
		}
	}
	// The question is asked in both places.
	var buttons string
	x.fake.waitFor(t, "the buttons in the Slack thread", func(cs []apiCall) bool {
		for _, c := range cs {
			if c.Method == "chat.postMessage" && c.ThreadTS == "1700000900.000001" && strings.Contains(c.Blocks, actionApprove) {
				buttons = c.TS
				return true
			}
		}
		return false
	})
	var cid string
	enginetest.Eventually(t, "the question on the GitHub issue", func() bool {
		pending, _ := x.db.PendingConfirmations(ctx, ex.ID)
		if len(pending) == 1 {
			cid = pending[0].ID
		}
		for _, c := range x.api.Comments() {
			if c.Issue == 5 && cid != "" && strings.Contains(c.Body, "/hero approve "+cid) {
				return true
			}
		}
		return false
	})
	// Approved on GitHub: the run goes on, and Slack's buttons give way
	// to who decided.
	if got := x.commentOn(5, "dev1", "/hero approve "+cid); got != "👍" {
		t.Fatalf("GitHub answered %q to the approval", got)
	}
	x.fake.waitFor(t, "the decision in the Slack thread", func(cs []apiCall) bool {
		return has(cs, "chat.update", func(c apiCall) bool {
			return c.TS == buttons && strings.Contains(c.Blocks, "Approved by github:dev1") && !strings.Contains(c.Blocks, actionApprove)
		})
	})
	if done := enginetest.WaitFinished(t, x.db, ex.ID); done.Status != store.StatusSucceeded {
		t.Fatalf("run ended %s: %s", done.Status, done.Error)
	}
	// Both places close the run.
	x.fake.waitFor(t, "the Slack summary", func(cs []apiCall) bool {
		return has(cs, "chat.postMessage", func(c apiCall) bool {
			return c.ThreadTS == "1700000900.000001" && strings.Contains(c.Text, "deleted the readme")
		})
	})
	enginetest.Eventually(t, "the GitHub summary", func() bool {
		for _, c := range x.api.Comments() {
			if c.Issue == 5 && strings.Contains(c.Body, "deleted the readme") {
				return true
			}
		}
		return false
	})
}

// Slack's progress message survives a restart: the next hero edits the
// same message, with the steps shown before, instead of posting another.
func TestSlackProgressRestoredAfterRestart(t *testing.T) {
	t.Parallel()
	model := enginetest.Script(enginetest.Call("delete_file", `{"path":"README.md"}`), enginetest.Finish("removed after the restart"))
	x := newTwoSurfaces(t, model)
	x.person("U1", "dev1", store.RoleApprover)
	ctx := t.Context()
	if got := x.slashCommand("U1", "remove the readme"); !strings.HasPrefix(got, "On it") {
		t.Fatalf("start: %q", got)
	}
	exs, err := x.db.ListExecutions(ctx, store.ExecutionFilter{ProjectID: x.project.ID})
	if err != nil || len(exs) != 1 {
		t.Fatalf("runs %v %v", exs, err)
	}
	id := exs[0].ID
	var progressTS string
	x.fake.waitFor(t, "the progress message showing the question", func(cs []apiCall) bool {
		for _, c := range cs {
			if c.Method == "chat.postMessage" && strings.HasPrefix(c.Text, "Run "+id+":") {
				progressTS = c.TS
			}
		}
		return progressTS != "" && has(cs, "chat.update", func(c apiCall) bool {
			return c.TS == progressTS && strings.Contains(c.Blocks, "asked: delete README.md")
		})
	})
	enginetest.Eventually(t, "the progress message recorded", func() bool {
		ref, err := x.db.ProgressMessage(ctx, id, Surface)
		return err == nil && strings.HasSuffix(ref, "/"+progressTS)
	})

	// Restart: this hero stops (its run stays waiting in the database);
	// a new engine and Slack adapter take the run over.
	x.stopSlack()
	eng2 := enginetest.New(t, x.db, model)
	a2, fs2, _ := startSlack(t, x.db, eng2)
	eng2.AddSurface(a2)
	if resumed, _, err := eng2.Resume(ctx); err != nil || resumed != 1 {
		t.Fatalf("resume: %d runs, %v", resumed, err)
	}
	fs2.waitFor(t, "the same progress message edited with the steps from before", func(cs []apiCall) bool {
		return has(cs, "chat.update", func(c apiCall) bool {
			return c.TS == progressTS && strings.Contains(c.Blocks, "asked: delete README.md")
		})
	})
	var cid string
	enginetest.Eventually(t, "the question asked again", func() bool {
		pending, _ := x.db.PendingConfirmations(ctx, id)
		if len(pending) == 1 {
			cid = pending[0].ID
		}
		cur, _ := x.db.Execution(ctx, id)
		return cid != "" && cur.Status == store.StatusWaiting
	})
	if _, err := eng2.Decide(ctx, cid, engine.Decision{Approve: true, By: engine.Principal{ID: "slack:T1/U1"}}); err != nil {
		t.Fatal(err)
	}
	if done := enginetest.WaitFinished(t, x.db, id); done.Status != store.StatusSucceeded {
		t.Fatalf("run ended %s: %s", done.Status, done.Error)
	}
	fs2.waitFor(t, "the final state on the same progress message", func(cs []apiCall) bool {
		return has(cs, "chat.update", func(c apiCall) bool { return c.TS == progressTS && strings.Contains(c.Text, "succeeded") })
	})
	for _, c := range fs2.snapshot() {
		if c.Method == "chat.postMessage" && strings.HasPrefix(c.Text, "Run "+id+":") {
			t.Fatalf("a second progress message was posted after the restart: %+v", c)
		}
	}
}
