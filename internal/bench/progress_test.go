package bench

import (
	"fmt"
	"slices"
	"testing"
)

// recorder is a Progress that notes every call.
type recorder []string

func (r *recorder) Start(what string, total int64) {
	*r = append(*r, fmt.Sprintf("start %s %d", what, total))
}
func (r *recorder) Set(done int64) { *r = append(*r, fmt.Sprintf("set %d", done)) }
func (r *recorder) Finish()        { *r = append(*r, "finish") }

// TestSteps: the phase starts once, at the first report, with its total;
// every report moves it.
func TestSteps(t *testing.T) {
	var r recorder
	report := Steps(&r, "pruning")
	report(1, 3)
	report(2, 4) // a total that grew later does not restart the phase
	report(4, 4)
	want := []string{"start pruning 3", "set 1", "set 2", "set 4"}
	if !slices.Equal(r, want) {
		t.Errorf("calls %q, want %q", r, want)
	}
}
