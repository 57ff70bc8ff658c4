package bot

import (
	"testing"
	"time"
)

func TestGatesHoldUpdatesUntilReleased(t *testing.T) {
	var g Gates
	g.Wait("T/C/1") // an open gate does not block
	release := g.Hold("T/C/1")
	passed := make(chan struct{})
	go func() { g.Wait("T/C/1"); close(passed) }()
	g.Wait("T/C/2") // other threads are not held
	select {
	case <-passed:
		t.Fatal("an update passed a held gate")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case <-passed:
	case <-time.After(time.Minute): // a loaded machine is slow, not wrong
		t.Fatal("the update still waits after the gate was released")
	}
}
