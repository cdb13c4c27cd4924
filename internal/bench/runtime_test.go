package bench

import (
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHistogramQuantile: a quantile is the upper bound of the bucket that
// holds it, the lower bound of an unbounded last bucket, 0 for nothing.
func TestHistogramQuantile(t *testing.T) {
	h := &metrics.Float64Histogram{Counts: []uint64{10, 80, 9, 1}, Buckets: []float64{0, 1, 2, 4, math.Inf(1)}}
	for _, tc := range []struct{ q, want float64 }{{0.05, 1}, {0.5, 2}, {0.9, 2}, {0.99, 4}, {1, 4}} {
		if got := histogramQuantile(h, tc.q); got != tc.want {
			t.Errorf("quantile %.2f = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := histogramQuantile(&metrics.Float64Histogram{Counts: []uint64{0}, Buckets: []float64{0, 1}}, 0.5); got != 0 {
		t.Errorf("quantile of an empty histogram = %v, want 0", got)
	}
}

// TestRuntimeDelays reads the runtime's own histograms around a burst of
// goroutines that outnumber the Ps, and one forced collection: the wait for
// a P and the collector's pause are both seen, and only what happened
// between the two samples is counted.
func TestRuntimeDelays(t *testing.T) {
	before := sampleRuntime()
	var wg sync.WaitGroup
	for range 20_000 {
		wg.Go(func() {
			for i := range 1000 {
				_ = i * i
			}
			runtime.Gosched()
		})
	}
	wg.Wait()
	runtime.GC()
	after := sampleRuntime()
	d := runtimeDelays(before, after)
	if d.SchedP99 <= 0 || d.SchedP50 > d.SchedP99 || d.GCPauses < 1 || d.GCPauseP99 <= 0 {
		t.Fatalf("runtime delays %+v: want a wait for a P and at least one GC pause", d)
	}
	if none := runtimeDelays(after, after); none.GCPauses != 0 || none.SchedP99 != 0 || none.RunQueueWait != 0 {
		t.Errorf("delays between a sample and itself = %+v, want none", none)
	}
}

// TestThreadsRunDelay: the run-queue wait summed over this process's threads
// is at least its main thread's, as /proc/self/schedstat states it.
func TestThreadsRunDelay(t *testing.T) {
	b, err := os.ReadFile("/proc/self/schedstat")
	if err != nil {
		t.Skipf("no schedstat here: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		t.Fatalf("/proc/self/schedstat = %q", b)
	}
	main, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if all := threadsRunDelay(); all < time.Duration(main) {
		t.Errorf("threads waited %v in all, the main thread alone %v", all, time.Duration(main))
	}
}
