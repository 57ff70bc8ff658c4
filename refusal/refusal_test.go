package refusal

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindOfSeesThroughWrapping(t *testing.T) {
	err := fmt.Errorf("move card k1: %w", New(Limit, "In progress is at its WIP limit of %d card", 1))
	if KindOf(err) != Limit {
		t.Fatalf("KindOf(%v) = %v, want Limit", err, KindOf(err))
	}
	if err.Error() != "move card k1: In progress is at its WIP limit of 1 card" {
		t.Fatalf("message %q", err.Error())
	}
	if KindOf(errors.New("disk full")) != 0 || KindOf(nil) != 0 {
		t.Fatal("an error that is no refusal has a Kind")
	}
}
