package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hero-dev/hero/sandbox"
)

// pendingProvider stands in for a sandbox provider that cannot work on
// this machine yet (bubblewrap missing, a kernel too old), so that
// `hero serve` still starts: the settings page and chat work, /readyz
// and every run say what to install. It tries to build the real provider
// again at most every retryEvery, so installing the missing package
// needs no restart.
type pendingProvider struct {
	name       string
	open       func() (sandbox.Provider, error)
	retryEvery time.Duration
	now        func() time.Time

	mu    sync.Mutex
	p     sandbox.Provider
	err   error
	tried time.Time
}

// newPendingProvider starts with the error open gave at start-up.
func newPendingProvider(name string, open func() (sandbox.Provider, error), firstErr error) *pendingProvider {
	return &pendingProvider{name: name, open: open, retryEvery: 10 * time.Second, now: time.Now, err: firstErr, tried: time.Now()}
}

func (r *pendingProvider) get() (sandbox.Provider, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil {
		return r.p, nil
	}
	if r.now().Sub(r.tried) >= r.retryEvery {
		r.tried = r.now()
		r.p, r.err = r.open()
		if r.p != nil {
			return r.p, nil
		}
	}
	return nil, r.err
}

// Name is the provider's name whether or not it works yet, so leases
// recorded by it stay its own.
func (r *pendingProvider) Name() string { return r.name }

// Create fails with the set-up error (wrapping sandbox.ErrUnavailable)
// until the real provider can be built.
func (r *pendingProvider) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	p, err := r.get()
	if err != nil {
		return nil, fmt.Errorf("%s sandbox: %w", r.name, err)
	}
	return p.Create(ctx, spec)
}

// Health is the set-up error until the real provider can be built.
func (r *pendingProvider) Health(ctx context.Context) error {
	p, err := r.get()
	if err != nil {
		return fmt.Errorf("%s sandbox: %w", r.name, err)
	}
	return p.Health(ctx)
}

// Destroy fails while the provider does not work, so orphans' records
// are kept for a later start.
func (r *pendingProvider) Destroy(ctx context.Context, id string) error {
	p, err := r.get()
	if err != nil {
		return fmt.Errorf("%s sandbox: %w", r.name, err)
	}
	return p.Destroy(ctx, id)
}

// localSandboxAdvice says in plain words what to change when the local
// sandbox cannot be created: install bubblewrap when it is missing; when
// it is there but may not create its namespaces, the container or host
// settings that forbid it (Docker's and Kubernetes' seccomp and AppArmor
// profiles and masked /proc, Ubuntu's user-namespace restriction), or E2B
// instead.
func localSandboxAdvice(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "not found on PATH") || strings.Contains(msg, "install bubblewrap") || strings.Contains(msg, "prlimit") {
		return "scripts/install-deps.sh git bwrap (as root or with sudo; make run calls it) installs what the local sandbox needs"
	}
	if !errors.Is(err, sandbox.ErrUnavailable) && !strings.Contains(msg, "bwrap") {
		return "see the error above"
	}
	return "bubblewrap is installed but may not create the namespaces a sandbox needs here. " +
		"In Docker, run the container with --security-opt seccomp=unconfined --security-opt apparmor=unconfined " +
		"--security-opt systempaths=unconfined (Docker masks parts of /proc, so bubblewrap cannot mount its own; " +
		"deploy/compose.yaml's local-sandbox profile sets all three); " +
		"in Kubernetes, set the pod's securityContext seccompProfile and appArmorProfile to type Unconfined, add the SETFCAP capability, " +
		"and run the pod with hostUsers: false and the container with procMount: Unmasked " +
		"(the Helm chart's sandbox.provider=local does); " +
		"on an Ubuntu 23.10 or later host (24.04 included), allow unprivileged user namespaces with sysctl kernel.apparmor_restrict_unprivileged_userns=0; " +
		"or use E2B sandboxes (HERO_SANDBOX=e2b)"
}
