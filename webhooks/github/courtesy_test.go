package github

import (
	"fmt"
	"github.com/hero-dev/hero/engine/enginetest"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// strangerComment is an @hero comment by someone without write access.
func strangerComment(t *testing.T, login string, issue int, commentID int64) []byte {
	return fixture(t, "issue_comment.created.json", map[string]any{
		"comment.body": "@hero please rewrite it in Rust", "comment.author_association": "NONE",
		"comment.user.login": login, "comment.user.type": "User", "comment.id": commentID, "issue.number": issue,
		"comment.updated_at": freshTime(),
	})
}

// courtesyPosts counts the courtesy replies the fake received so far.
func courtesyPosts(e *env) int {
	n := 0
	for _, c := range e.api.Comments() {
		if strings.Contains(c.Body, "owners, members and collaborators") {
			n++
		}
	}
	return n
}

// heldRequests holds the requests hold picks at GitHub's edge until open
// is closed, the way a slow or rate-limited API would; arrived tells of a
// held request (the first, until it is read). Others go through at once.
type heldRequests struct {
	hold    func(*http.Request) bool
	open    chan struct{}
	arrived chan struct{}
}

func newHeldRequests(hold func(*http.Request) bool) *heldRequests {
	return &heldRequests{hold: hold, open: make(chan struct{}), arrived: make(chan struct{}, 1)}
}

func (h *heldRequests) RoundTrip(req *http.Request) (*http.Response, error) {
	if h.hold(req) {
		select {
		case h.arrived <- struct{}{}:
		default:
		}
		select {
		case <-h.open:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestStrangersDoNotStarveMembers is issue 8 #7: 300 strangers' @hero
// comments each owe a polite reply, paced like every content-creating
// call; while none of that backlog can go out, a member's request made
// after them is still acknowledged (👀) and started: it does not wait
// behind them, in the inbox or in the write pacing. Then every stranger
// is answered, one who asks again on the same issue only once.
func TestStrangersDoNotStarveMembers(t *testing.T) {
	t.Parallel()
	const strangers = 300
	// The backlog of replies owed to strangers cannot be worked off while
	// GitHub holds them.
	held := newHeldRequests(func(req *http.Request) bool { return isCourtesy(req.Context()) })
	e := newEnv(t, nil, nil, nil, fixtureRepo, func(c *envConfig) {
		c.Pub.WritePace = 10 * time.Millisecond
		c.CourtesyPerHour = 1000
		c.Pub.Transport = held
		// The replies start going out once the backlog is complete: a
		// reply held at GitHub's edge for as long as the 300 deliveries
		// take on a loaded machine would pass the API client's timeout
		// and be lost, as it would be if GitHub hung that long.
		c.ownRun = true
	})
	var wg sync.WaitGroup
	ids := make(chan int, strangers)
	for i := range strangers {
		ids <- i
	}
	close(ids)
	for range 8 {
		wg.Go(func() {
			for i := range ids {
				e.deliver("issue_comment", fmt.Sprintf("st%d", i), strangerComment(t, fmt.Sprintf("stranger%d", i), 1+i%10, int64(10000+i)))
			}
		})
	}
	wg.Wait()
	// The same stranger again, on an issue where they were answered and on
	// another: one reply per issue.
	for i := range 4 {
		e.deliver("issue_comment", fmt.Sprintf("again%d", i), strangerComment(t, "stranger0", 1+10*(i%2), int64(20000+i)))
	}
	for i := range strangers {
		if err := e.waitHandled(fmt.Sprintf("st%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		if err := e.waitHandled(fmt.Sprintf("again%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Every reply owed is queued now; nothing adds to them below.
	owed := len(e.svc.courtesyQ)
	enginetest.Serve(t, nil, e.svc.Run)
	select {
	case <-held.arrived: // the first reply has its write slot and waits on GitHub
	case <-time.After(enginetest.Patience):
		t.Fatal("timed out waiting for the first courtesy reply to reach GitHub")
	}

	const memberComment = 777777
	e.deliver("issue_comment", "member", fixture(t, "issue_comment.created.json", map[string]any{
		"comment.body": "@hero fix the leap-year bug", "comment.author_association": "MEMBER",
		"comment.user.login": "Codertocat", "comment.user.type": "User", "comment.id": memberComment, "issue.number": 42,
		"comment.updated_at": freshTime(),
	}))
	if err := e.waitHandled("member"); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, "the member's 👀", func() bool {
		for _, r := range e.api.Reactions() {
			if r.CommentID == memberComment && r.Content == "eyes" {
				return true
			}
		}
		return false
	})
	if started := len(e.rec().Starts()); started != 1 {
		t.Fatalf("the member's run did not start (starts %d)", started)
	}
	if n := courtesyPosts(e); n != 0 {
		t.Fatalf("%d courtesy replies went out while GitHub held them", n)
	}

	// GitHub lets the replies through: every stranger is answered,
	// stranger0 once per issue. Once all that was queued went out, nothing
	// more can.
	close(held.open)
	enginetest.Eventually(t, "the courtesy backlog", func() bool { return courtesyPosts(e) >= owed })
	perIssue := map[int]int{}
	total := 0
	for _, c := range e.api.Comments() {
		if strings.HasPrefix(c.Body, "@stranger0 ") {
			perIssue[c.Issue]++
		}
		if strings.Contains(c.Body, "owners, members and collaborators") {
			total++
		}
	}
	if perIssue[1] != 1 || perIssue[11] != 1 || len(perIssue) != 2 || total != strangers+1 || e.svc.CourtesyDropped() != 0 {
		t.Fatalf("stranger0's replies per issue %v, total courtesy replies %d (want 1 on #1 and #11, %d in all)", perIssue, total, strangers+1)
	}
}

// TestCourtesyLaneYields: a courtesy write never takes a slot a trusted
// write has reserved; it waits until the pacing has nothing queued.
func TestCourtesyLaneYields(t *testing.T) {
	t.Parallel()
	const pace = 200 * time.Millisecond
	l := newRateLimiter(nil, pace, time.Minute)
	// The limiter's clock stands still until the test moves it, so the
	// slots are decided by the order of the writes, not by how quickly
	// the goroutines get to run; read tells when someone looked at it.
	c := &clock{t: time.Now()}
	read := make(chan struct{}, 16)
	l.now = func() time.Time {
		read <- struct{}{}
		return c.now()
	}
	ctx := t.Context()
	// A trusted write goes now and reserves the next slot for the next.
	if err := l.before(ctx, http.MethodPost); err != nil {
		t.Fatal(err)
	}
	<-read
	order := make(chan string, 2)
	go func() {
		if l.beforeCourtesy(ctx) == nil {
			order <- "courtesy"
		}
	}()
	<-read // the courtesy write found the slot reserved and waits
	go func() {
		if l.before(ctx, http.MethodPost) == nil {
			order <- "trusted"
		}
	}()
	go func() { // the waiting writes look again and again
		for {
			select {
			case <-read:
			case <-ctx.Done():
				return
			}
		}
	}()
	if first := <-order; first != "trusted" {
		t.Fatalf("%s went first; the trusted write must", first)
	}
	c.add(2 * pace) // the trusted write's slot has passed: the courtesy write's turn
	select {
	case second := <-order:
		if second != "courtesy" {
			t.Fatalf("then %s", second)
		}
	case <-time.After(enginetest.Patience):
		t.Fatal("the courtesy write never went")
	}
}

// TestCourtesyReplyCap: beyond CourtesyPerHour the replies are dropped,
// counted, and shared with every replica through the database.
func TestCourtesyReplyCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo, func(c *envConfig) { c.CourtesyPerHour = 3 })
	for i := range 6 {
		id := fmt.Sprintf("c%d", i)
		e.deliver("issue_comment", id, strangerComment(t, fmt.Sprintf("s%d", i), 1, int64(100+i)))
		if err := e.waitHandled(id); err != nil {
			t.Fatal(err)
		}
	}
	enginetest.Eventually(t, "three replies", func() bool { return courtesyPosts(e) == 3 })
	if got := e.svc.CourtesyDropped(); got != 3 {
		t.Fatalf("CourtesyDropped = %d, want 3", got)
	}
	// A second replica on the same database sees the cap as reached.
	other, err := NewService(Config{Publisher: newTestPublisher(t, PublisherConfig{APIURL: e.api.APIURL(), Credentials: StaticToken(testToken)}), Store: e.db, Engine: newRecorder(e.db), CourtesyPerHour: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.courtesy(t.Context(), other.log, Thread{Repo: Repo{"Codertocat", "Hello-World"}, Number: 2}, "newcomer", "@newcomer no"); err != nil {
		t.Fatal(err)
	}
	if got := other.CourtesyDropped(); got != 1 {
		t.Fatalf("second replica: CourtesyDropped = %d, want 1", got)
	}
	time.Sleep(100 * time.Millisecond)
	if n := courtesyPosts(e); n != 3 {
		t.Fatalf("%d courtesy replies, want 3", n)
	}
}
