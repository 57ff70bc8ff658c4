// Package tools is the agent's toolbox: file, command and git tools that
// work inside a sandbox.Sandbox, and the publishing tools that go through
// the run's engine.Forge.
//
// Tool names and parameters are a public contract (confirmation policies
// and docs refer to them): read_file, list_files, search, write_file,
// edit_file, delete_file, run_command, git_commit, git_push,
// create_pull_request, comment, read_issue and read_pull_request. ask_human and finish belong to the
// engine loop and are not here.
//
// Every tool decodes its arguments strictly (unknown fields, wrong types
// and missing required ones are refused with a message that tells the
// model what to send) and checks paths before the sandbox sees them. An
// error returned by Run is meant for the model, except one wrapping
// engine.ErrSandboxBroken, which means the sandbox itself failed.
package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hero-dev/hero/engine"
)

// All returns every tool of this package, in the order the model sees them.
// The values are fresh on each call and hold no state.
func All() []engine.Tool {
	return []engine.Tool{
		readFileTool(),
		listFilesTool(),
		searchTool(),
		writeFileTool(),
		editFileTool(),
		deleteFileTool(),
		runCommandTool(),
		gitCommitTool(),
		gitPushTool(),
		createPullRequestTool(),
		commentTool(),
		readIssueTool(),
		readPullRequestTool(),
	}
}

// spec describes one tool with typed arguments T; tool() turns it into the
// engine's plain value.
type spec[T any] struct {
	name     string
	desc     string
	mutating bool
	// untrusted: the output was written by people outside the project.
	untrusted bool
	params    []param
	// validate runs after decoding: it cleans paths and checks values
	// (it may change *T).
	validate func(*T) error
	// subject returns the policy subject and the one-line action.
	subject func(T) (string, string)
	// needsSandbox: Run refuses to start without tc.Sandbox.
	needsSandbox bool
	run          func(context.Context, *engine.ToolContext, T) (string, error)
}

func (s spec[T]) tool() engine.Tool {
	a := newArgs(s.name, s.mutating, s.params...)
	parse := func(raw json.RawMessage) (T, error) {
		var v T
		if err := a.decode(raw, &v); err != nil {
			return v, err
		}
		if s.validate != nil {
			if err := s.validate(&v); err != nil {
				return v, err
			}
		}
		return v, nil
	}
	return engine.Tool{
		Name:        s.name,
		Description: s.desc,
		Parameters:  a.schema(),
		Mutating:    s.mutating,
		Untrusted:   s.untrusted,
		Subject: func(raw json.RawMessage) (string, string, error) {
			v, err := parse(raw)
			if err != nil {
				return "", "", err
			}
			subject, action := s.subject(v)
			return subject, action, nil
		},
		Run: func(ctx context.Context, tc *engine.ToolContext, raw json.RawMessage) (string, error) {
			v, err := parse(raw)
			if err != nil {
				return "", err
			}
			if tc == nil {
				return "", fmt.Errorf("%s: %w: no tool context", s.name, engine.ErrSandboxBroken)
			}
			if s.needsSandbox && tc.Sandbox == nil {
				return "", fmt.Errorf("%s: %w: the run has no sandbox", s.name, engine.ErrSandboxBroken)
			}
			return s.run(ctx, tc, v)
		},
	}
}

// errNoForge is returned by the publishing tools when the run has nowhere
// to publish.
func errNoForge(tool string) error {
	return fmt.Errorf("%s: %w", tool, engine.ErrNoForge)
}

// ctxErr reports whether ctx ended, wrapping its error for tool.
func ctxErr(ctx context.Context, tool string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", tool, err)
	}
	return nil
}

// isCtxErr is true for a context's cancellation or deadline.
func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
