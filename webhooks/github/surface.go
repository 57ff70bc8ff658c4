package github

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/hero-dev/hero/bot"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

// maxChecklist bounds the steps shown in a progress comment; older ones
// are summarised in one line.
const maxChecklist = 40

// progress is one run's progress comment: the neutral model it renders
// and the comment. The comment is created when the run starts and then
// edited in place, at most once per EditInterval: updates arriving in
// between are coalesced into the next edit.
type progress struct {
	thread Thread
	runID  string

	send sync.Mutex // serialises API calls for this comment; taken before mu

	mu        sync.Mutex
	commentID int64
	model     *bot.Progress
	lastEdit  time.Time
	lastSent  string
	timer     *time.Timer
	loaded    bool
	hosts     []string // the GitHub web hosts whose links model text may keep
}

// state returns the progress of ex, restoring it after a restart from the
// stored steps, confirmations and comment id.
func (s *Service) state(ctx context.Context, ex *store.Execution) (*progress, error) {
	st, ok := s.runs.Get(ex.ID)
	if !ok {
		th, err := ParseThread(ex.ThreadRef)
		if err != nil {
			return nil, err
		}
		st, _ = s.runs.Add(ex.ID, &progress{thread: th, runID: ex.ID, model: bot.NewProgress(ex), hosts: s.hosts})
	}

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
		// A restart: rebuild the checklist from what the run recorded.
		model, err := bot.RestoreProgress(ctx, s.cfg.Store, ex)
		if err != nil {
			return st, err
		}
		st.mu.Lock()
		st.commentID, st.model = id, model
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
	st.mu.Lock()
	st.model.Apply(ex, ev)
	files := slices.Clone(st.model.Files)
	st.mu.Unlock()
	switch ev.Kind {
	case engine.EventStarted, engine.EventDecided:
		return s.flush(ctx, st, true)
	case engine.EventStep:
		return s.flush(ctx, st, false)
	case engine.EventFinished:
		ferr := s.flush(ctx, st, true)
		s.runs.Delete(ex.ID)
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
	st.model.Confirm(c)
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
	body, id := progressBody(st.model, st.hosts), st.commentID
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

// checklistLine is a step's line in the progress comment; model calls
// and confirmations are shown elsewhere.
func checklistLine(s *bot.Step, hosts []string) string {
	switch s.Kind {
	case store.StepTool:
		mark, suffix := "x", ""
		if s.Failed {
			mark, suffix = " ", " — ⚠️ "+safeMarkdown(bot.OneLine(s.Text, 120), hosts)
		}
		subject := ""
		if s.Subject != "" {
			subject = "`" + strings.ReplaceAll(bot.OneLine(s.Subject, 100), "`", "'") + "`"
		}
		return fmt.Sprintf("- [%s] `%s` %s%s", mark, s.Tool, subject, suffix)
	case store.StepLimit:
		return "- ⏸️ " + safeMarkdown(bot.OneLine(s.Text, 160), hosts)
	case store.StepError:
		return "- ❌ " + safeMarkdown(bot.OneLine(s.Text, 160), hosts)
	case store.StepMessage:
		return "- 💬 message from " + bot.OneLine(s.From, 60)
	}
	return ""
}

var statusWords = map[string]string{
	store.StatusSucceeded:   "✅ done",
	store.StatusFailed:      "❌ failed",
	store.StatusCancelled:   "🛑 cancelled",
	store.StatusInterrupted: "⚠️ interrupted",
}

// progressBody is the progress comment: status, the checklist of steps,
// and the confirmations with how to answer them.
func progressBody(p *bot.Progress, hosts []string) string {
	var b strings.Builder
	status := "🔄 working"
	if store.Final(p.Status) {
		status = statusWords[p.Status]
	}
	fmt.Fprintf(&b, "**hero** · run `%s` · %s\n\n", p.RunID, status)
	if p.Note != "" && p.Outcome == nil {
		b.WriteString(p.Note + "\n\n")
	}
	lines, dropped := p.Lines(maxChecklist, func(s *bot.Step) string { return checklistLine(s, hosts) })
	if dropped > 0 {
		fmt.Fprintf(&b, "- … %d earlier steps\n", dropped)
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if len(lines) == 0 {
		b.WriteString("_No steps yet._\n")
	}
	for _, c := range p.Confirmations {
		b.WriteString("\n")
		switch c.Status {
		case store.ConfirmPending:
			fmt.Fprintf(&b, "**Needs approval** · `%s` · risk: **%s**\n", c.ID, orDash(c.Risk))
			fmt.Fprintf(&b, "> %s\n", safeMarkdown(bot.OneLine(c.Action, 2000), hosts)) // a pull request's description is in it
			if c.Reason != "" {
				fmt.Fprintf(&b, "> _why:_ %s\n", safeMarkdown(bot.OneLine(c.Reason, 300), hosts))
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
			fmt.Fprintf(&b, "~~`%s`~~ %s%s: %s\n", c.ID, c.Status, by, safeMarkdown(bot.OneLine(c.Action, 200), hosts))
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
	b.WriteString(bot.Facts(o))
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
