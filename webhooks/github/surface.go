package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// maxChecklist bounds the steps shown in a progress comment; older ones
// are summarised in one line.
const maxChecklist = 40

// progress is the state of one run's progress comment. The comment is
// created when the run starts and then edited in place, at most once per
// EditInterval: updates arriving in between are coalesced into the next
// edit.
type progress struct {
	thread Thread

	send sync.Mutex // serialises API calls for this comment; taken before mu

	mu        sync.Mutex
	commentID int64
	runID     string
	project   string
	status    string
	note      string
	lines     []string
	dropped   int
	asks      []*store.Confirmation
	lastEdit  time.Time
	lastSent  string
	timer     *time.Timer
	loaded    bool
	lastStep  int      // highest step ordinal shown (steps replayed after a restart are not shown twice)
	files     []string // paths the run wrote, edited or deleted
	hosts     []string // the GitHub web hosts whose links model text may keep
}

// state returns the progress of ex, restoring it after a restart from the
// stored steps and comment id.
func (s *Service) state(ctx context.Context, ex *store.Execution) (*progress, error) {
	s.mu.Lock()
	st, ok := s.runs[ex.ID]
	if !ok {
		th, err := ParseThread(ex.ThreadRef)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		st = &progress{thread: th, runID: ex.ID, status: "working", hosts: s.hosts}
		s.runs[ex.ID] = st
	}
	s.mu.Unlock()

	st.send.Lock()
	defer st.send.Unlock()
	st.mu.Lock()
	loaded := st.loaded
	st.loaded = true
	st.mu.Unlock()
	if loaded {
		return st, nil
	}
	id, err := s.cfg.Store.GitHubProgressComment(ctx, ex.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return st, err
	}
	if id != 0 {
		// A restart: rebuild the checklist from the recorded steps.
		steps, _ := s.cfg.Store.ListSteps(ctx, ex.ID)
		pending, _ := s.cfg.Store.PendingConfirmations(ctx, ex.ID)
		st.mu.Lock()
		st.commentID = id
		for i := range steps {
			st.addStep(&steps[i])
		}
		for i := range pending {
			st.asks = append(st.asks, &pending[i])
		}
		st.mu.Unlock()
	}
	return st, nil
}

// Update renders ev into the run's progress comment; the run's end also
// gets a summary comment.
func (s *Service) Update(ctx context.Context, ex *store.Execution, ev engine.Event) error {
	st, err := s.state(ctx, ex)
	if err != nil {
		return fmt.Errorf("github progress of run %s: %w", ex.ID, err)
	}
	switch ev.Kind {
	case engine.EventStarted:
		st.mu.Lock()
		st.note = ev.Text
		st.mu.Unlock()
		return s.flush(ctx, st, true)
	case engine.EventStep:
		st.mu.Lock()
		st.addStep(ev.Step)
		st.mu.Unlock()
		return s.flush(ctx, st, false)
	case engine.EventDecided:
		st.mu.Lock()
		st.decided(ev.Confirmation)
		st.mu.Unlock()
		return s.flush(ctx, st, true)
	case engine.EventFinished:
		st.mu.Lock()
		st.status = ev.Outcome.Status
		st.note = ""
		files := slices.Clone(st.files)
		st.mu.Unlock()
		ferr := s.flush(ctx, st, true)
		s.mu.Lock()
		delete(s.runs, ex.ID)
		s.mu.Unlock()
		if err := s.reply(ctx, st.thread, summary(ex, ev.Outcome, files, s.hosts)); err != nil {
			return err
		}
		return ferr
	}
	return nil // live output is not worth an edit
}

// Ask lists the confirmation in the progress comment with how to answer
// it; the answer comes back as a `/hero approve|deny <id>` comment.
func (s *Service) Ask(ctx context.Context, ex *store.Execution, c *store.Confirmation) (string, error) {
	st, err := s.state(ctx, ex)
	if err != nil {
		return "", fmt.Errorf("github progress of run %s: %w", ex.ID, err)
	}
	st.mu.Lock()
	st.asks = append(st.asks, c)
	st.mu.Unlock()
	if err := s.flush(ctx, st, true); err != nil {
		return "", err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return fmt.Sprintf("%s/comments/%d", Thread{Repo: st.thread.Repo, Number: st.thread.Number}, st.commentID), nil
}

// flush writes the rendered state to GitHub. Without urgent, an edit due
// sooner than EditInterval after the last one is left to a timer, which
// sends whatever the state is by then (coalescing); urgent waits for the
// interval and sends now. Creating the comment is never delayed.
func (s *Service) flush(ctx context.Context, st *progress, urgent bool) error {
	st.mu.Lock()
	wait := st.lastEdit.Add(s.cfg.EditInterval).Sub(s.cfg.Now())
	if st.commentID != 0 && wait > 0 && !urgent {
		if st.timer == nil {
			st.timer = time.AfterFunc(wait, func() {
				tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				if err := s.flush(tctx, st, true); err != nil {
					s.log.Warn("update progress comment", "run", st.runID, "err", err)
				}
			})
		}
		st.mu.Unlock()
		return nil
	}
	st.mu.Unlock()

	st.send.Lock()
	defer st.send.Unlock()
	st.mu.Lock()
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	if wait = st.lastEdit.Add(s.cfg.EditInterval).Sub(s.cfg.Now()); st.commentID != 0 && wait > 0 {
		st.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		st.mu.Lock()
	}
	body, id := st.render(), st.commentID
	if body == st.lastSent {
		st.mu.Unlock()
		return nil
	}
	st.mu.Unlock()

	c := s.client(st.thread.Repo)
	if id == 0 {
		newID, err := s.createComment(ctx, st.thread, body)
		if err != nil {
			return err
		}
		if err := s.cfg.Store.SetGitHubProgress(ctx, st.runID, newID); err != nil {
			s.log.Warn("remember progress comment", "run", st.runID, "err", err)
		}
		id = newID
	} else {
		_, _, err := c.Issues.EditComment(ctx, st.thread.Repo.Owner, st.thread.Repo.Name, id, &gh.IssueComment{Body: gh.String(body)})
		if err != nil {
			return fmt.Errorf("edit progress comment %d: %w", id, err)
		}
	}
	st.mu.Lock()
	st.commentID, st.lastSent, st.lastEdit = id, body, s.cfg.Now()
	st.mu.Unlock()
	return nil
}

func (st *progress) addStep(step *store.Step) {
	if step == nil {
		return
	}
	if step.Ordinal != 0 {
		if step.Ordinal <= st.lastStep {
			return
		}
		st.lastStep = step.Ordinal
	}
	var line string
	switch step.Kind {
	case store.StepTool:
		mark := "x"
		suffix := ""
		if step.IsError {
			mark = " "
			suffix = " — ⚠️ " + safeMarkdown(clipLine(firstLineOf(step.Output), 120), st.hosts)
		}
		line = fmt.Sprintf("- [%s] `%s` %s%s", mark, step.Tool, argSummary(step.Arguments), suffix)
		if !step.IsError && (step.Tool == "write_file" || step.Tool == "edit_file" || step.Tool == "delete_file") {
			var a struct {
				Path string `json:"path"`
			}
			if json.Unmarshal([]byte(step.Arguments), &a) == nil && a.Path != "" && !slices.Contains(st.files, a.Path) {
				st.files = append(st.files, a.Path)
			}
		}
	case store.StepLimit:
		line = "- ⏸️ " + safeMarkdown(clipLine(firstLineOf(step.Output), 160), st.hosts)
	case store.StepError:
		line = "- ❌ " + safeMarkdown(clipLine(firstLineOf(step.Output), 160), st.hosts)
	case store.StepMessage:
		line = "- 💬 message from " + clipLine(step.Arguments, 60)
	default:
		return // model calls and confirmations are shown elsewhere
	}
	st.lines = append(st.lines, line)
	if len(st.lines) > maxChecklist {
		st.dropped += len(st.lines) - maxChecklist
		st.lines = st.lines[len(st.lines)-maxChecklist:]
	}
}

func (st *progress) decided(c *store.Confirmation) {
	if c == nil {
		return
	}
	for i, a := range st.asks {
		if a.ID == c.ID {
			st.asks[i] = c
			return
		}
	}
	st.asks = append(st.asks, c)
}

var statusWords = map[string]string{
	"working":               "🔄 working",
	store.StatusSucceeded:   "✅ done",
	store.StatusFailed:      "❌ failed",
	store.StatusCancelled:   "🛑 cancelled",
	store.StatusInterrupted: "⚠️ interrupted",
}

func (st *progress) render() string {
	var b strings.Builder
	status := statusWords[st.status]
	if status == "" {
		status = st.status
	}
	fmt.Fprintf(&b, "**hero** · run `%s` · %s\n\n", st.runID, status)
	if st.note != "" {
		b.WriteString(st.note + "\n\n")
	}
	if st.dropped > 0 {
		fmt.Fprintf(&b, "- … %d earlier steps\n", st.dropped)
	}
	for _, l := range st.lines {
		b.WriteString(l + "\n")
	}
	if len(st.lines) == 0 && st.dropped == 0 {
		b.WriteString("_No steps yet._\n")
	}
	for _, c := range st.asks {
		b.WriteString("\n")
		switch c.Status {
		case store.ConfirmPending:
			fmt.Fprintf(&b, "**Needs approval** · `%s` · risk: **%s**\n", c.ID, orDash(c.Risk))
			fmt.Fprintf(&b, "> %s\n", safeMarkdown(clipLine(c.Action, 2000), st.hosts)) // a pull request's description is in it
			if c.Reason != "" {
				fmt.Fprintf(&b, "> _why:_ %s\n", safeMarkdown(clipLine(c.Reason, 300), st.hosts))
			}
			if c.Kind == store.ConfirmKindQuestion {
				fmt.Fprintf(&b, "\nAnswer by commenting `@hero <your answer>`, or `/hero deny %s`.\n", c.ID)
			} else {
				fmt.Fprintf(&b, "\nComment `/hero approve %s` or `/hero deny %s` (the requester or a project approver; expires %s).\n",
					c.ID, c.ID, c.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
			}
		default:
			by := ""
			if c.DecidedBy != "" {
				by = " by " + strings.TrimPrefix(c.DecidedBy, "github:")
			}
			fmt.Fprintf(&b, "~~`%s`~~ %s%s: %s\n", c.ID, c.Status, by, safeMarkdown(clipLine(c.Action, 200), st.hosts))
		}
	}
	return b.String()
}

// summary is the closing comment of a run.
func summary(ex *store.Execution, o *engine.Outcome, files []string, hosts []string) string {
	var b strings.Builder
	switch o.Status {
	case store.StatusSucceeded:
		fmt.Fprintf(&b, "✅ **hero finished** run `%s`.\n\n", ex.ID)
	case store.StatusCancelled:
		fmt.Fprintf(&b, "🛑 **Run `%s` was cancelled.**\n\n", ex.ID)
	case store.StatusInterrupted:
		fmt.Fprintf(&b, "⚠️ **Run `%s` was interrupted.**\n\n", ex.ID)
	default:
		fmt.Fprintf(&b, "❌ **Run `%s` failed.**\n\n", ex.ID)
	}
	if o.Summary != "" {
		b.WriteString(safeMarkdown(o.Summary, hosts) + "\n\n")
	}
	if o.Error != "" {
		fmt.Fprintf(&b, "What went wrong: %s\n\n", safeMarkdown(o.Error, hosts))
	}
	if o.PullRequestURL != "" {
		fmt.Fprintf(&b, "Pull request: %s\n\n", o.PullRequestURL)
	}
	if len(files) > 0 {
		shown := files
		if len(shown) > 20 {
			shown = shown[:20]
		}
		spans := make([]string, len(shown))
		for i, f := range shown {
			spans[i] = codeSpan(f) // a path may hold backticks
		}
		fmt.Fprintf(&b, "Files changed (%d): %s", len(files), strings.Join(spans, ", "))
		if len(files) > len(shown) {
			b.WriteString(", …")
		}
		b.WriteString("\n\n")
	}
	if o.DiffStat != "" {
		fmt.Fprintf(&b, "<details><summary>Diff stat</summary>\n\n```\n%s\n```\n</details>\n\n", strings.ReplaceAll(o.DiffStat, "```", "'''"))
	}
	fmt.Fprintf(&b, "%d steps · %d tokens in, %d out · %s", o.Steps, o.TokensIn, o.TokensOut, costText(o.CostUSD, o.CostKnown))
	return b.String()
}

// argSummary shows the argument that says what a tool call did.
func argSummary(args string) string {
	var m map[string]any
	if json.Unmarshal([]byte(args), &m) != nil {
		return ""
	}
	for _, k := range []string{"command", "path", "branch", "title", "message", "pattern", "question", "body", "summary"} {
		if v, ok := m[k].(string); ok && v != "" {
			return "`" + strings.ReplaceAll(clipLine(v, 100), "`", "'") + "`"
		}
	}
	return ""
}

func firstLineOf(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func clipLine(s string, n int) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
