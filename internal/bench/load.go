package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/iotguard/iotguard/device"
)

// maxSamples bounds the latency samples one run keeps (8 bytes each). Ops
// beyond it still count towards throughput and errors.
const maxSamples = 8 << 20

// midBudget is how many requests one UDP association sends before the load
// generator moves it to a new source port. CoAP gives one source endpoint
// 65,536 message IDs per EXCHANGE_LIFETIME (247 s); a server answers a
// reused ID from its response cache, with the old answer.
const midBudget = 60_000

// op is one operation of a worker. It returns nil on success.
type op func(ctx context.Context) error

// worker is one load generator goroutine's state: its op and what to
// release after the run.
type worker struct {
	op    op
	close func()
}

// load describes one measured phase.
type load struct {
	name     string        // shown on the progress bar
	duration time.Duration // stop issuing after this
	count    int64         // stop after this many ops
	rate     float64       // ops/s over all workers; 0: closed loop, as fast as possible
	timeout  time.Duration // per op
	progress Progress
}

// sample is one successful op: when it finished (ms since start) and how
// long it took (µs).
type sample struct {
	at  uint32
	lat uint32
}

// outcome is what a phase measured.
type outcome struct {
	ok        int64
	errors    map[string]int64
	elapsed   time.Duration
	cpu       time.Duration // CPU time of this process (user + system) during the phase
	serverCPU time.Duration // CPU time of the cluster head's process, when apart and known
	samples   []sample
}

// processCPU returns the CPU time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run drives workers until l.count ops were issued or l.duration passed,
// whichever comes first. With a rate, op i is scheduled at start + i/rate;
// its latency counts from then when its worker was behind schedule (no
// coordinated omission), from when it was sent when the worker slept until
// then (the sleep's own lateness is not the server's); without a rate,
// each worker issues its next op when the previous one ends. Ops that end
// after the deadline are neither counted nor sampled.
func (l load) run(workers []worker) outcome {
	var (
		next     atomic.Int64
		finished atomic.Int64
		mu       sync.Mutex
		out      = outcome{errors: map[string]int64{}}
		wg       sync.WaitGroup
	)
	cpu0 := processCPU()
	start := time.Now()
	deadline := start.Add(l.duration)
	stopProgress := l.track(start, &finished)
	perWorker := min(int(l.count)/len(workers)+1, maxSamples/len(workers))
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples := make([]sample, 0, min(perWorker, 1<<16))
			errs := map[string]int64{}
			var ok int64
			for {
				i := next.Add(1) - 1
				if i >= l.count {
					break
				}
				begin := time.Now()
				if l.rate > 0 {
					sched := start.Add(time.Duration(float64(i) / l.rate * float64(time.Second)))
					if sched.After(deadline) {
						break
					}
					if wait := sched.Sub(begin); wait > 0 {
						// Ahead of schedule: sleep. The timer wakes late (a
						// median ~0.4 ms on the reference VM); that lateness is
						// the generator's, so the op starts when it is sent.
						time.Sleep(wait)
						begin = time.Now()
					} else {
						// Behind schedule: the wait for this worker counts
						// (no coordinated omission).
						begin = sched
					}
				} else if !begin.Before(deadline) {
					break
				}
				ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
				err := w.op(ctx)
				cancel()
				end := time.Now()
				finished.Add(1)
				if end.After(deadline) {
					break
				}
				if err != nil {
					errs[classify(err)]++
					continue
				}
				ok++
				if len(samples) < perWorker {
					samples = append(samples, sample{
						at:  uint32(end.Sub(start) / time.Millisecond),
						lat: uint32(min(end.Sub(begin)/time.Microsecond, math.MaxUint32)),
					})
				}
			}
			mu.Lock()
			defer mu.Unlock()
			out.ok += ok
			out.samples = append(out.samples, samples...)
			for k, v := range errs {
				out.errors[k] += v
			}
		}()
	}
	wg.Wait()
	stopProgress()
	out.elapsed = min(time.Since(start), l.duration)
	out.cpu = processCPU() - cpu0
	return out
}

// merge appends o to a run of earlier slices: counts add up, o's samples
// move after the earlier ones in time.
func (a outcome) merge(o outcome) outcome {
	if a.errors == nil {
		a.errors = map[string]int64{}
	}
	offset := uint32(a.elapsed / time.Millisecond)
	for _, x := range o.samples {
		a.samples = append(a.samples, sample{at: x.at + offset, lat: x.lat})
	}
	for k, v := range o.errors {
		a.errors[k] += v
	}
	a.ok += o.ok
	a.elapsed += o.elapsed
	a.cpu += o.cpu
	a.serverCPU += o.serverCPU
	return a
}

// track shows progress until the returned function is called: the larger
// of the time and count fractions.
func (l load) track(start time.Time, finished *atomic.Int64) func() {
	if l.progress == nil {
		return func() {}
	}
	const scale = 1000
	l.progress.Start(l.name, scale)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				l.progress.Finish()
				return
			case <-t.C:
				f := max(float64(time.Since(start))/float64(l.duration), float64(finished.Load())/float64(l.count))
				l.progress.Set(int64(min(f, 1) * scale))
			}
		}
	}()
	return func() { close(stop); <-done }
}

// classify names an error for the errors-by-code table: the CoAP code of an
// error response, "timeout", or "other: <first words>".
func classify(err error) string {
	var ce *device.CodeError
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("%d.%02d", ce.Code>>5, ce.Code&0x1f)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, device.ErrWarning):
		return "warning"
	case errors.Is(err, device.ErrBadResponse):
		return "bad response"
	}
	s := err.Error()
	if len(s) > 40 {
		s = s[:40]
	}
	return "other: " + s
}

// latencies returns the sorted latencies of samples in milliseconds.
func latencies(s []sample) []float64 {
	out := make([]float64, len(s))
	for i, x := range s {
		out[i] = float64(x.lat) / 1000
	}
	slices.Sort(out)
	return out
}

// quantile returns the q-quantile of sorted values (nearest rank), 0 if none.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Window is one second of a run: successful ops finished in it and their
// latency quantiles.
type Window struct {
	Second     int     `json:"t_s"`
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
}

// windows splits samples into one-second windows.
func windows(s []sample, elapsed time.Duration) []Window {
	n := int(math.Ceil(elapsed.Seconds()))
	buckets := make([][]float64, n)
	for _, x := range s {
		i := int(x.at / 1000)
		if i >= n {
			i = n - 1
		}
		buckets[i] = append(buckets[i], float64(x.lat)/1000)
	}
	out := make([]Window, n)
	for i, b := range buckets {
		slices.Sort(b)
		width := 1.0
		if i == n-1 {
			width = elapsed.Seconds() - float64(n-1)
		}
		out[i] = Window{Second: i, Throughput: float64(len(b)) / max(width, 1e-3), P50: quantile(b, 0.5), P99: quantile(b, 0.99)}
	}
	return out
}
