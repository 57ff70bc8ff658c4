package tools

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/store"
)

// Identity of hero's commits.
const (
	gitName  = "hero"
	gitEmail = "hero@localhost"
)

// Limits of the git and forge tools.
const (
	gitTimeout      = 2 * time.Minute
	messageLimit    = 10000
	titleLimit      = 256
	commentLimit    = 65000 // GitHub refuses bodies over 65536 characters
	branchNameLimit = 255
)

// gitRun runs git with args in the workspace root and returns its combined
// output (capped), its exit code, and an error only when git could not be
// run at all.
func gitRun(ctx context.Context, sb sandbox.Sandbox, tool, stdin string, args ...string) (string, int, error) {
	out := newCapture(16<<10, 16<<10, nil)
	cmd := sandbox.Cmd{
		Args: append([]string{"git"}, args...),
		Env: map[string]string{
			"GIT_AUTHOR_NAME": gitName, "GIT_AUTHOR_EMAIL": gitEmail,
			"GIT_COMMITTER_NAME": gitName, "GIT_COMMITTER_EMAIL": gitEmail,
			"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C",
		},
		Stdout: out, Stderr: out, Timeout: gitTimeout,
	}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	res, err := sb.Exec(ctx, cmd)
	if err != nil {
		if ctx.Err() != nil {
			return "", -1, fmt.Errorf("%s: %w", tool, ctx.Err())
		}
		return "", -1, sandboxErr(tool, "git "+args[0], err)
	}
	if res.TimedOut {
		return out.String(), res.ExitCode, fmt.Errorf("%s: git %s did not finish within %s", tool, args[0], gitTimeout)
	}
	return strings.TrimSpace(out.String()), res.ExitCode, nil
}

// currentBranch is the branch HEAD points to, or "" when HEAD is detached.
func currentBranch(ctx context.Context, sb sandbox.Sandbox, tool string) (string, error) {
	if err := requireRepo(ctx, sb, tool); err != nil {
		return "", err
	}
	out, code, err := gitRun(ctx, sb, tool, "", "symbolic-ref", "-q", "--short", "HEAD")
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", nil
	}
	return out, nil
}

// requireRepo fails clearly when the workspace is not a git work tree.
func requireRepo(ctx context.Context, sb sandbox.Sandbox, tool string) error {
	out, code, err := gitRun(ctx, sb, tool, "", "rev-parse", "--is-inside-work-tree")
	if err != nil {
		return err
	}
	if code != 0 || out != "true" {
		return fmt.Errorf("%s: the workspace is not a git repository (git says: %s)", tool, clip(out, 300))
	}
	return nil
}

type commitArgs struct {
	Message string `json:"message"`
}

func gitCommitTool() engine.Tool {
	return spec[commitArgs]{
		name: "git_commit",
		desc: "Stage every change in the workspace (git add -A, so new and deleted files too; .gitignore applies) and commit it on the current branch " +
			"(the run's work branch: the workspace starts on it) " +
			"as \"hero <hero@localhost>\". Returns the short commit id and the changed files, or says there was nothing to commit.",
		mutating: true,
		params: []param{{name: "message", typ: "string", required: true,
			desc: "Commit message: a short summary line, optionally a blank line and details."}},
		validate: func(a *commitArgs) error {
			if strings.TrimSpace(a.Message) == "" {
				return fmt.Errorf("git_commit: message is empty; give a short summary of the change")
			}
			if len(a.Message) > messageLimit {
				return fmt.Errorf("git_commit: message is %d bytes; keep it under %d", len(a.Message), messageLimit)
			}
			return nil
		},
		subject: func(a commitArgs) (string, string) {
			return a.Message, "commit all changes: " + fmt.Sprintf("%q", clip(firstLine(a.Message), 120))
		},
		needsSandbox: true,
		run:          runCommit,
	}.tool()
}

func runCommit(ctx context.Context, tc *engine.ToolContext, a commitArgs) (string, error) {
	const tool = "git_commit"
	sb := tc.Sandbox
	if err := requireRepo(ctx, sb, tool); err != nil {
		return "", err
	}
	if out, code, err := gitRun(ctx, sb, tool, "", "add", "-A"); err != nil {
		return "", err
	} else if code != 0 {
		return "", fmt.Errorf("%s: git add -A failed (exit code %d): %s", tool, code, out)
	}
	out, code, err := gitRun(ctx, sb, tool, "", "diff", "--cached", "--quiet")
	if err != nil {
		return "", err
	}
	switch code {
	case 0:
		return "nothing to commit: the workspace has no changes since the last commit", nil
	case 1:
	default:
		return "", fmt.Errorf("%s: git diff --cached failed (exit code %d): %s", tool, code, out)
	}
	msg := a.Message
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	if out, code, err := gitRun(ctx, sb, tool, msg, "-c", "commit.gpgsign=false", "commit", "-q", "-F", "-"); err != nil {
		return "", err
	} else if code != 0 {
		return "", fmt.Errorf("%s: git commit failed (exit code %d): %s", tool, code, out)
	}
	show, code, err := gitRun(ctx, sb, tool, "", "show", "--stat", "--format=%h", "HEAD")
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("%s: committed, but git show failed (exit code %d): %s", tool, code, show)
	}
	sha, stat, _ := strings.Cut(show, "\n")
	branch, err := currentBranch(ctx, sb, tool)
	if err != nil {
		return "", err
	}
	where := "on branch " + branch
	if branch == "" {
		where = "on a detached HEAD"
	}
	return fmt.Sprintf("committed %s %s: %q\n%s", sha, where, firstLine(a.Message), strings.TrimLeft(stat, "\n")), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

type pushArgs struct {
	Branch string `json:"branch"`
}

func gitPushTool() engine.Tool {
	return spec[pushArgs]{
		name: "git_push",
		desc: "Push the run's commits to the project's remote so a pull request can be opened from them. Commit first with git_commit. " +
			"Without a branch it pushes the run's work branch (the branch the workspace started on); with a branch it pushes the workspace's HEAD " +
			"to that branch on the remote, creating it if needed. You never need to create or switch local branches for this. " +
			"The project's default branch (and main/master) is never pushed, and nothing is force-pushed: a remote branch with commits HEAD lacks is refused.",
		mutating: true,
		params: []param{{name: "branch", typ: "string",
			desc: "Remote branch to push HEAD to, e.g. \"hero/42-fix-parser\". Default: the run's work branch."}},
		validate: func(a *pushArgs) (err error) {
			if a.Branch == "" {
				return nil
			}
			a.Branch, err = checkBranchName("git_push", a.Branch)
			return err
		},
		subject: func(a pushArgs) (string, string) {
			if a.Branch == "" {
				return "", "push the run's commits to its work branch"
			}
			return a.Branch, "push branch " + a.Branch
		},
		needsSandbox: true,
		run: func(ctx context.Context, tc *engine.ToolContext, a pushArgs) (string, error) {
			const tool = "git_push"
			if protected := protectedBranches(tc.Project); slices.Contains(protected, a.Branch) {
				return "", fmt.Errorf("%s: refusing to push %q: it is the default or a protected branch (%s); call git_push without a branch to push the run's work branch, or name a new branch such as hero/<short-name>",
					tool, a.Branch, strings.Join(protected, ", "))
			}
			if tc.Forge == nil {
				return "", errNoForge(tool)
			}
			if err := requireRepo(ctx, tc.Sandbox, tool); err != nil {
				return "", err
			}
			sha, code, err := gitRun(ctx, tc.Sandbox, tool, "", "rev-parse", "--verify", "-q", "--short", "HEAD")
			if err != nil {
				return "", err
			}
			if code != 0 {
				return "", fmt.Errorf("%s: the workspace has no commit yet; commit with git_commit first", tool)
			}
			pushed, err := tc.Forge.Push(ctx, tc.Sandbox, a.Branch)
			if err != nil {
				if a.Branch == "" {
					return "", fmt.Errorf("%s: %w", tool, err)
				}
				return "", fmt.Errorf("%s: push %s: %w", tool, a.Branch, err)
			}
			return fmt.Sprintf("pushed branch %s (at %s)", pushed, sha), nil
		},
	}.tool()
}

// protectedBranches are never pushed: the project's default branch, and
// main and master whatever the default is.
func protectedBranches(p *store.Project) []string {
	out := []string{"main", "master"}
	if p != nil {
		if d := strings.TrimPrefix(p.DefaultBranch, "refs/heads/"); d != "" && !slices.Contains(out, d) {
			out = append([]string{d}, out...)
		}
	}
	return out
}

// checkBranchName applies git check-ref-format's rules for a branch name
// (and a few of git's --branch ones), so the name is safe to pass as an
// argument and unambiguous. "refs/heads/x" is accepted as "x".
func checkBranchName(tool, name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%s: %q is not a valid branch name: %s", tool, clip(name, 200), why)
	}
	b := strings.TrimPrefix(name, "refs/heads/")
	switch {
	case b == "":
		return bad("it is empty")
	case len(b) > branchNameLimit:
		return bad(fmt.Sprintf("it is longer than %d bytes", branchNameLimit))
	case !utf8.ValidString(b):
		return bad("it is not valid UTF-8")
	case strings.HasPrefix(b, "-"):
		return bad("it starts with \"-\"")
	case b == "HEAD" || b == "@":
		return bad("it is a reserved name")
	case strings.HasPrefix(b, "refs/"):
		return bad("give the branch name itself, not a ref path")
	case strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") || strings.Contains(b, "//"):
		return bad("it starts or ends with \"/\" or has \"//\"")
	case strings.HasSuffix(b, "."):
		return bad("it ends with \".\"")
	case strings.Contains(b, ".."):
		return bad("it contains \"..\"")
	case strings.Contains(b, "@{"):
		return bad("it contains \"@{\"")
	}
	for _, r := range b {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return bad(fmt.Sprintf("it contains %q (not allowed: spaces, control characters and ~ ^ : ? * [ \\)", r))
		}
	}
	for _, part := range strings.Split(b, "/") {
		if strings.HasPrefix(part, ".") {
			return bad("a part of it starts with \".\"")
		}
		if strings.HasSuffix(part, ".lock") {
			return bad("a part of it ends with \".lock\"")
		}
	}
	return b, nil
}
