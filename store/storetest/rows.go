package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
)

// Project creates a project named name whose repository is repoURL, on
// branch main.
func Project(t testing.TB, db *store.DB, name, repoURL string) *store.Project {
	t.Helper()
	p := &store.Project{Name: name, RepoURL: repoURL, DefaultBranch: "main"}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("storetest: create project %s: %v", name, err)
	}
	return p
}

// User returns the hero user email (created when missing, named after
// the email) linked to the platform identity surface/externalID, with
// role in the project projectID when role is set.
func User(t testing.TB, db *store.DB, projectID int64, email string, role store.Role, surface, externalID string) *store.User {
	t.Helper()
	u, err := db.UpsertUser(t.Context(), email, email)
	if err != nil {
		t.Fatalf("storetest: user %s: %v", email, err)
	}
	if err := db.LinkIdentity(t.Context(), surface, externalID, u.ID); err != nil {
		t.Fatalf("storetest: link %s to %s:%s: %v", email, surface, externalID, err)
	}
	if role != "" {
		if err := db.SetMember(t.Context(), projectID, u.ID, role); err != nil {
			t.Fatalf("storetest: make %s a %s: %v", email, role, err)
		}
	}
	return u
}

// Deliveries counts the inbox deliveries from source.
func Deliveries(t testing.TB, db *store.DB, source string) int {
	t.Helper()
	n, err := db.Bun().NewSelect().Table("deliveries").Where("source = ?", source).Count(t.Context())
	if err != nil {
		t.Fatalf("storetest: count deliveries: %v", err)
	}
	return int(n)
}

// Handled records what an inbox worker handled (Record is its OnHandled
// hook) so that a test can wait for a delivery.
type Handled struct {
	t testing.TB

	mu    sync.Mutex
	times map[string]int   // delivery id → times handled
	last  map[string]error // delivery id → the last handler's error
}

// NewHandled returns an empty record; a failed delivery is logged to t.
func NewHandled(t testing.TB) *Handled {
	return &Handled{t: t, times: map[string]int{}, last: map[string]error{}}
}

// Record is the worker's OnHandled hook.
func (h *Handled) Record(d *store.Delivery, err error) {
	h.mu.Lock()
	h.times[d.DeliveryID]++
	h.last[d.DeliveryID] = err
	h.mu.Unlock()
	if err != nil {
		h.t.Logf("delivery %s failed: %v", d.DeliveryID, err)
	}
}

// Times says how often delivery id was handled.
func (h *Handled) Times(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.times[id]
}

// Wait waits until delivery id was handled (a minute at most) and
// returns the handler's last error.
func (h *Handled) Wait(t testing.TB, id string) error {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		h.mu.Lock()
		n, err := h.times[id], h.last[id]
		h.mu.Unlock()
		if n > 0 {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s was not handled", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
