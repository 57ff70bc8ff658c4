package github

import (
	"fmt"
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

// TestStrangersDoNotStarveMembers is issue 8 #7: 300 strangers' @hero
// comments each owe a polite reply, paced like every content-creating
// call; a member's request made after them is acknowledged (👀) and
// started before that backlog is worked off, not behind it. A stranger
// who asks again on the same issue is not answered again.
func TestStrangersDoNotStarveMembers(t *testing.T) {
	t.Parallel()
	const strangers = 300
	e := newEnv(t, nil, nil, nil, fixtureRepo, func(c *Config) {
		c.WritePace = 25 * time.Millisecond
		c.CourtesyPerHour = 1000
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
	before := courtesyPosts(e)
	if before >= strangers {
		t.Fatalf("the courtesy backlog (%d replies) was already worked off before the member asked: the test proves nothing", before)
	}

	const memberComment = 777777
	e.deliver("issue_comment", "member", fixture(t, "issue_comment.created.json", map[string]any{
		"comment.body": "@hero fix the leap-year bug", "comment.author_association": "MEMBER",
		"comment.user.login": "Codertocat", "comment.user.type": "User", "comment.id": memberComment, "issue.number": 42,
	}))
	if err := e.waitHandled("member"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the member's 👀", func() bool {
		for _, r := range e.api.Reactions() {
			if r.CommentID == memberComment && r.Content == "eyes" {
				return true
			}
		}
		return false
	})
	started, atEyes := e.rec().startCount(), courtesyPosts(e)
	if started != 1 {
		t.Fatalf("the member's run did not start (starts %d)", started)
	}
	// At most a couple of courtesy writes (the one holding the slot) went
	// between the member's request and the 👀: it did not queue behind
	// the strangers' replies.
	if atEyes-before > 3 || atEyes >= strangers {
		t.Fatalf("%d courtesy replies were posted between the member's request and its 👀 (%d before it, %d owed)", atEyes-before, before, strangers)
	}

	// Every stranger is answered in the end, stranger0 once per issue.
	eventually(t, "the courtesy backlog", func() bool { return courtesyPosts(e) >= strangers+1 })
	time.Sleep(100 * time.Millisecond) // nothing more is owed: a late extra reply would show here
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
	if perIssue[1] != 1 || perIssue[11] != 1 || len(perIssue) != 2 || total != strangers+1 {
		t.Fatalf("stranger0's replies per issue %v, total courtesy replies %d (want 1 on #1 and #11, %d in all)", perIssue, total, strangers+1)
	}
}

// TestCourtesyReplyCap: beyond CourtesyPerHour the replies are dropped,
// counted, and shared with every replica through the database.
func TestCourtesyReplyCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil, fixtureRepo, func(c *Config) { c.CourtesyPerHour = 3 })
	for i := range 6 {
		id := fmt.Sprintf("c%d", i)
		e.deliver("issue_comment", id, strangerComment(t, fmt.Sprintf("s%d", i), 1, int64(100+i)))
		if err := e.waitHandled(id); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "three replies", func() bool { return courtesyPosts(e) == 3 })
	if got := e.svc.CourtesyDropped(); got != 3 {
		t.Fatalf("CourtesyDropped = %d, want 3", got)
	}
	// A second replica on the same database sees the cap as reached.
	other, err := NewService(Config{APIURL: e.api.APIURL(), Credentials: StaticToken(testToken), Store: e.db, Engine: &recordingEngine{}, CourtesyPerHour: 3})
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
