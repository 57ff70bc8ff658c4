package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/sandbox"
)

// okProvider is a provider that works: it only counts calls.
type okProvider struct{ created int }

func (p *okProvider) Name() string { return "local" }
func (p *okProvider) Create(context.Context, sandbox.Spec) (sandbox.Sandbox, error) {
	p.created++
	return nil, nil
}
func (p *okProvider) Health(context.Context) error          { return nil }
func (p *okProvider) Destroy(context.Context, string) error { return nil }

var _ sandbox.Provider = (*okProvider)(nil)

// Until the sandbox can be built every call fails with the set-up error;
// once it can (bubblewrap installed while hero serves) the next try after
// the retry period uses it, with no restart.
func TestPendingProviderPicksUpAFixWithoutARestart(t *testing.T) {
	missing := fmt.Errorf("bwrap provider: bubblewrap not found on PATH; install it with `apt-get install bubblewrap`: %w", sandbox.ErrUnavailable)
	fixed := false
	real := &okProvider{}
	opens := 0
	now := time.Unix(1000, 0)
	r := newPendingProvider("local", func() (sandbox.Provider, error) {
		opens++
		if !fixed {
			return nil, missing
		}
		return real, nil
	}, missing)
	r.now = func() time.Time { return now }
	r.tried = now

	for _, call := range []func() error{
		func() error { _, err := r.Create(t.Context(), sandbox.Spec{}); return err },
		func() error { return r.Health(t.Context()) },
		func() error { return r.Destroy(t.Context(), "bw-0000000000000000") },
	} {
		err := call()
		if !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "local sandbox: bwrap provider: bubblewrap not found") {
			t.Fatalf("err = %v", err)
		}
	}
	if opens != 0 {
		t.Fatalf("retried %d times within the retry period", opens)
	}
	fixed = true
	if err := r.Health(t.Context()); err == nil {
		t.Fatal("healthy before the retry period passed")
	}
	now = now.Add(r.retryEvery)
	if err := r.Health(t.Context()); err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	if _, err := r.Create(t.Context(), sandbox.Spec{}); err != nil || real.created != 1 || opens != 1 {
		t.Fatalf("create after the fix: %v, created %d, opened %d times", err, real.created, opens)
	}
	if r.Name() != "local" {
		t.Fatalf("name = %q", r.Name())
	}
}
