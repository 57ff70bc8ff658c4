package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hero-dev/hero/store"
)

// TestPagesAreHardened keeps what the security review found holding on the
// settings page: every response forbids framing, sniffing and foreign
// scripts, and text that people or the model wrote is shown escaped, never
// as markup.
func TestPagesAreHardened(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.project("shop", map[string]store.Role{"dev@example.com": store.RoleMember})
	const payload = `<script>alert(1)</script><img src=x onerror=alert(2)>"'`
	ex := e.seedRun(p, store.StatusSucceeded, "fix it "+payload)
	ex.Summary = "done " + payload
	if err := e.db.UpdateExecution(t.Context(), ex); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.login("google", "dev@example.com")

	for _, path := range []string{"/settings/login", "/settings/projects", "/settings/projects/shop", "/settings/runs/" + ex.ID, "/settings/integrations"} {
		resp, err := b.once.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
			continue
		}
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src *") {
			t.Errorf("GET %s: Content-Security-Policy allows inline or foreign scripts: %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("GET %s: headers %v", path, h)
		}
	}

	_, page := b.get("/settings/runs/" + ex.ID)
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") {
		t.Fatalf("the run page renders model/user text as markup:\n%s", page)
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the run page does not show the task's text escaped")
	}
	if !strings.Contains(text(page), `fix it <script>alert(1)</script>`) {
		t.Errorf("a person does not read the task as written: %q", text(page))
	}
}
