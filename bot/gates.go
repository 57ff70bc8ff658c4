package bot

import "sync"

// Gates hold a run's updates back while the request that started it is
// still announcing it in its thread, so "On it" is the thread's first
// reply whatever the engine reports meanwhile. A surface holds the gate
// of a thread it opened (OpenThread) until it has posted the announcement,
// and waits at the gate before rendering a run's event.
type Gates struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex // by thread reference
}

// Hold closes the gate of thread ref and returns the function that opens
// it again (call it once).
func (g *Gates) Hold(ref string) (release func()) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*sync.Mutex{}
	}
	m := g.m[ref]
	if m == nil {
		m = &sync.Mutex{}
		g.m[ref] = m
	}
	g.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		g.mu.Lock()
		if g.m[ref] == m {
			delete(g.m, ref)
		}
		g.mu.Unlock()
	}
}

// Wait returns once thread ref's gate is open.
func (g *Gates) Wait(ref string) {
	g.mu.Lock()
	m := g.m[ref]
	g.mu.Unlock()
	if m != nil {
		m.Lock()
		m.Unlock() //nolint:staticcheck // a barrier, not a critical section
	}
}
