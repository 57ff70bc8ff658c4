package e2b_test

import (
	"testing"

	"github.com/hero-dev/hero/sandbox"
	"github.com/hero-dev/hero/sandbox/e2b"
	"github.com/hero-dev/hero/sandbox/e2b/e2btest"
	"github.com/hero-dev/hero/sandbox/sandboxtest"
)

func newProvider(t *testing.T, fake *e2btest.Server) *e2b.Provider {
	t.Helper()
	p, err := e2b.New(e2b.Config{APIKey: e2btest.APIKey, APIURL: fake.URL, SandboxURL: fake.URL, Install: "test-install"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The provider conformance table, against the E2B fake (real commands,
// E2B's wire protocol).
func TestConformance(t *testing.T) {
	t.Parallel()
	fake := e2btest.NewServer(t)
	p := newProvider(t, fake)
	sandboxtest.Run(t, func(t *testing.T, spec sandbox.Spec) sandbox.Sandbox {
		sb, err := p.Create(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		return sb
	}, sandboxtest.Options{})
}
