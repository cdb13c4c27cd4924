package bench

import (
	"fmt"
	"math"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// The delays a request meets besides its own work, read around the
// half-load phases, where they account for the latency tail: from the Go
// runtime (runtime/metrics), how long runnable goroutines waited for a P and
// how long the world stood still for the garbage collector; and from Linux
// (/proc/self/task/*/schedstat), how long this process's threads waited in
// a CPU's run queue — time the Go runtime cannot see, when the machine has
// more runnable threads than CPUs. With the cluster head in this process (no
// --server) they are the CH's and the load generator's together.
const (
	metricSchedLatency = "/sched/latencies:seconds"
	metricGCPauses     = "/sched/pauses/total/gc:seconds"
)

// RuntimeDelays are quantiles of the runtime's delays during one phase, in
// milliseconds.
type RuntimeDelays struct {
	SchedP50   float64 `json:"sched_p50_ms"` // a runnable goroutine's wait for a P
	SchedP99   float64 `json:"sched_p99_ms"`
	GCPauseP99 float64 `json:"gc_pause_p99_ms"` // stop-the-world pauses of the collector
	GCPauses   uint64  `json:"gc_pauses"`
	// RunQueueWait is how long this process's threads waited for a CPU,
	// per second of the phase, in milliseconds (Linux schedstat; 0 where
	// it cannot be read). 1,000 means one thread's worth of waiting.
	RunQueueWait float64 `json:"run_queue_wait_ms_per_s"`
}

// runtimeSample is the delays' counters at one moment.
type runtimeSample struct {
	hist     []metrics.Sample
	runDelay time.Duration
	at       time.Time
}

// sampleRuntime reads the counters now.
func sampleRuntime() runtimeSample {
	s := runtimeSample{hist: []metrics.Sample{{Name: metricSchedLatency}, {Name: metricGCPauses}}, runDelay: threadsRunDelay(), at: time.Now()}
	metrics.Read(s.hist)
	return s
}

// runtimeDelays returns the delays recorded between two samples.
func runtimeDelays(before, after runtimeSample) RuntimeDelays {
	sched := histogramDelta(before.hist[0], after.hist[0])
	gc := histogramDelta(before.hist[1], after.hist[1])
	var n uint64
	for _, c := range gc.Counts {
		n += c
	}
	d := RuntimeDelays{
		SchedP50: histogramQuantile(sched, 0.5) * 1e3, SchedP99: histogramQuantile(sched, 0.99) * 1e3,
		GCPauseP99: histogramQuantile(gc, 0.99) * 1e3, GCPauses: n,
	}
	// Threads that ended between the samples take their waits with them,
	// so the difference can fall below 0: read it as none.
	if wait, span := after.runDelay-before.runDelay, after.at.Sub(before.at); wait > 0 && span > 0 {
		d.RunQueueWait = float64(wait) / float64(time.Millisecond) / span.Seconds()
	}
	return d
}

// threadsRunDelay sums the time every thread of this process has spent
// waiting in a run queue (the second field of its schedstat); 0 where
// Linux does not provide it.
func threadsRunDelay() time.Duration {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended
		}
		if f := strings.Fields(string(b)); len(f) == 3 {
			if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// histogramDelta returns what after's histogram counted since before's.
// A metric the runtime does not have gives an empty histogram.
func histogramDelta(before, after metrics.Sample) *metrics.Float64Histogram {
	if after.Value.Kind() != metrics.KindFloat64Histogram {
		return &metrics.Float64Histogram{}
	}
	a := after.Value.Float64Histogram()
	d := &metrics.Float64Histogram{Counts: append([]uint64(nil), a.Counts...), Buckets: a.Buckets}
	if before.Value.Kind() == metrics.KindFloat64Histogram {
		for i, c := range before.Value.Float64Histogram().Counts {
			d.Counts[i] -= c
		}
	}
	return d
}

// histogramQuantile returns the upper bound of the bucket holding quantile
// q of h (the runtime's buckets are exponential, so within ~12 %), 0 when h
// is empty. An unbounded last bucket gives its lower bound.
func histogramQuantile(h *metrics.Float64Histogram, q float64) float64 {
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			if hi := h.Buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return h.Buckets[i]
		}
	}
	return h.Buckets[len(h.Buckets)-1]
}

func (d RuntimeDelays) String() string {
	return fmt.Sprintf("goroutines waited for a P p50 %.2f ms, p99 %.2f ms; %d GC pauses, p99 %.2f ms; threads waited for a CPU %.0f ms/s (this process)",
		d.SchedP50, d.SchedP99, d.GCPauses, d.GCPauseP99, d.RunQueueWait)
}
