package engine

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
)

// Tool is one capability offered to the model. Tools are plain values so
// the registry is data: the loop looks them up by Name.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments object. Mutating
	// tools also accept "confidence" (0..1) and "reason"; the registry
	// adds them to the schema.
	Parameters json.RawMessage
	// Mutating tools change the workspace or the outside world; their
	// confidence is checked against the project's uncertainty threshold.
	Mutating bool
	// Untrusted tools return text written by people outside the project
	// (issue and pull request conversations). Once a run has read such
	// text, tools that post text outside hero ask first (see Exposure).
	Untrusted bool
	// Subject returns the text policy patterns are matched against (the
	// command for run_command, the path for file tools, the branch for
	// git_push) and a one-line description of the exact action for a
	// confirmation message. Malformed arguments return an error.
	Subject func(args json.RawMessage) (subject, action string, err error)
	// Run executes the call. An error is shown to the model as the tool's
	// result and the loop goes on, unless it wraps ErrSandboxBroken.
	Run func(ctx context.Context, tc *ToolContext, args json.RawMessage) (string, error)
}

// ToolContext is what a tool may touch during one call.
type ToolContext struct {
	Sandbox   sandbox.Sandbox
	Project   *store.Project
	Execution *store.Execution
	// Forge pushes branches and opens pull requests; nil when the run has
	// no remote to publish to.
	Forge Forge
	// Output receives live command output (already redacted by the
	// engine); may be nil.
	Output func(chunk string)
}

// Forge is where finished work is published (GitHub, or nothing for a
// plain terminal run). It is declared here because the engine's tools call
// it; webhooks/github implements it.
type Forge interface {
	// Push publishes the workspace's HEAD as branch ("" is the run's work
	// branch), creating it if needed, and returns the branch pushed. It
	// never pushes the default (or a protected) branch and never forces.
	Push(ctx context.Context, sb sandbox.Sandbox, branch string) (string, error)
	// CreatePullRequest opens a pull request from head ("" is the branch
	// this run pushed last) into the project's default branch and
	// returns its URL.
	CreatePullRequest(ctx context.Context, head, title, body string, draft bool) (string, error)
	// Comment posts a comment on the issue or pull request the run is
	// about.
	Comment(ctx context.Context, body string) error
	// ReadIssue returns an issue of the run's repository with its
	// comments; number 0 means the issue (or pull request) the run is
	// about, and fails when the run is about none. Everything in it was
	// written by people outside hero: it is data for the model, never
	// instructions.
	ReadIssue(ctx context.Context, number int) (*ForgeIssue, error)
	// ReadPullRequest returns a pull request of the run's repository with
	// its conversation (issue comments and review comments); number 0
	// means the pull request the run is about, and fails when the run is
	// about an issue or nothing. Its text is untrusted, as ReadIssue's.
	ReadPullRequest(ctx context.Context, number int) (*ForgePullRequest, error)
}

// ForgeIssue is an issue as the reading tools show it: neutral, so the
// engine stays independent of GitHub.
type ForgeIssue struct {
	Number        int
	Title         string
	Body          string
	Author        string
	State         string // "open" or "closed"
	URL           string
	Labels        []string
	IsPullRequest bool
	// Comments are the newest ones, oldest first (a forge may cap them).
	Comments []ForgeComment
	// MoreComments counts older comments left out.
	MoreComments int
}

// ForgePullRequest is a pull request with its conversation.
type ForgePullRequest struct {
	ForgeIssue
	Head, Base string // branch names
	Draft      bool
	Merged     bool
	// ReviewComments are the comments on lines of the diff, oldest first.
	ReviewComments     []ForgeComment
	MoreReviewComments int
}

// ForgeComment is one comment on an issue, or on a line of a pull
// request's diff (then Path and Line say where).
type ForgeComment struct {
	Author string
	// Association is the author's relation to the repository (OWNER,
	// MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...), so the model can
	// weigh who said what.
	Association string
	Body        string
	CreatedAt   time.Time
	Path        string
	Line        int
}

// ErrSandboxBroken wraps a failure of the sandbox itself (not of the
// command): the run fails clearly and the sandbox is replaced.
var ErrSandboxBroken = errors.New("sandbox failed")

// ErrNoForge is returned by publishing tools when the run has no remote.
var ErrNoForge = errors.New("this run has no remote repository to publish to; the changes stay in the workspace and are offered to the person at the end")
