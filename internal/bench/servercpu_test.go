package bench

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestProcessCPUOf reads this process's own CPU time from /proc and checks
// it against getrusage after burning some: both clocks must agree to within
// their resolution, and a missing process is an error.
func TestProcessCPUOf(t *testing.T) {
	before, err := processCPUOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for start := processCPU(); processCPU()-start < 200*time.Millisecond; {
	}
	after, err := processCPUOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 150*time.Millisecond {
		t.Fatalf("/proc saw %v of CPU while the process burnt 200ms", d)
	}
	if diff := (processCPU() - after).Abs(); diff > 100*time.Millisecond {
		t.Fatalf("/proc and getrusage disagree by %v", diff)
	}
	if _, err := processCPUOf(1 << 30); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("process %d is not running", 1<<30)) {
		t.Fatalf("a process that does not exist: %v, want 'process %d is not running'", err, 1<<30)
	}
}
