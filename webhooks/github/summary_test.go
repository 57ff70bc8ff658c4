package github

import (
	"strings"
	"testing"

	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/store"
)

func TestSummaryShowsDiffStat(t *testing.T) {
	ex := &store.Execution{ID: "r1"}
	o := &engine.Outcome{Status: store.StatusSucceeded, Summary: "Fixed.", Steps: 3, CostKnown: true, CostUSD: 0.01,
		DiffStat: " calc.go | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)"}
	got := summary(ex, o, []string{"calc.go"}, []string{"github.com"})
	for _, want := range []string{"Fixed.", "Files changed (1): `calc.go`", "<summary>Diff stat</summary>", "calc.go | 2 +-", "3 steps"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(summary(ex, &engine.Outcome{Status: store.StatusSucceeded}, nil, nil), "Diff stat") {
		t.Error("an empty diff stat is shown")
	}
}
