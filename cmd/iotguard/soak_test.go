//go:build soak

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/clitest"
)

// The soak test: mixed load on loopback against 'iotguard serve' running as a
// separate process, for SOAK_DURATION (default 10m), with the server's
// goroutines, open file descriptors and memory sampled every soakEvery. The
// load is 'iotguard bench --scenario mixed' (a third process: joins, verify,
// session, M2M at soakBenchRate) plus this test's own devices (soakRate:
// talks, leaves and rejoins, impostors — what the bench does not do).
// Run it with 'make soak SOAKTIME=10m'; it is behind the "soak" build tag, so
// 'make test' never runs it.
//
// Flat means: the last quarter of the run is no higher than the window
// around the middle, within a slack. Memory is judged on anonymous memory
// (RssAnon: heap and stacks) and on the Go heap; RSS also counts the pages of
// the memory-mapped ledger file, which grows with every event by design.
// go-coap keeps each response for EXCHANGE_LIFETIME (247 s), so the memory
// checks need the middle window to start after that: runs shorter than
// soakMinForMemory only report memory.

const (
	soakEvery        = 5 * time.Second
	soakMinForMemory = 8 * time.Minute
	soakWorkers      = 8
	soakRate         = 100 // operations per second over this test's workers
	soakBenchRate    = 150 // operations per second of the bench process
	soakPool         = 50  // identities per worker that join, leave and rejoin
)

// sample is one reading of the server's resources.
type sample struct {
	at         time.Duration
	goroutines float64
	fds        float64
	heap       float64 // go_memstats_heap_inuse_bytes
	rssAnon    float64 // /proc/<pid>/status RssAnon, bytes
	rssFile    float64 // RssFile: mostly the ledger's mmap
}

func TestSoak(t *testing.T) {
	duration := 10 * time.Minute
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SOAK_DURATION: %v", err)
		}
		duration = d
	}
	addr := freeAddr(t)
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ml.Addr().String()
	ml.Close()
	data := filepath.Join(t.TempDir(), "data")
	srv := exec.Command("iotguard", "serve", "--listen", addr, "--data", data, "--metrics", metricsAddr,
		"--rate-limit", "0", "--cluster-id", "soak", "--position", "48.8566,2.3522", "--radius", "1000",
		"--admission", "open", // a resource soak: its devices join unenrolled
		// The bench opens its M2M sessions once, at setup: they must outlive the run.
		"--session-ttl", (duration + 10*time.Minute).String())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve after SIGTERM: %v", err)
			}
		case <-time.After(15 * time.Second):
			_ = srv.Process.Kill()
			t.Error("serve did not stop within 15 s")
		}
	}()
	if err := clitest.WaitCoAP(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	load := newSoakLoad(t, addr)
	var wg sync.WaitGroup
	for w := range soakWorkers {
		wg.Add(1)
		go func() { defer wg.Done(); load.run(ctx, w) }()
	}

	bench := exec.Command("iotguard", "bench", "--scenario", "mixed", "--server", "coap://"+addr,
		"--duration", duration.String(), "--rate", strconv.Itoa(soakBenchRate), "--concurrency", "8", "--json")
	var benchOut, benchErr strings.Builder
	bench.Stdout, bench.Stderr = &benchOut, &benchErr
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	benchDone := make(chan error, 1)
	go func() { benchDone <- bench.Wait() }()
	defer func() {
		if bench.ProcessState == nil {
			_ = bench.Process.Kill()
		}
	}()

	var samples []sample
	start := time.Now()
	tick := time.NewTicker(soakEvery)
	for sampling := true; sampling; {
		s, err := readSample(srv.Process.Pid, metricsAddr)
		if err != nil {
			t.Fatal(err)
		}
		s.at = time.Since(start)
		samples = append(samples, s)
		t.Logf("%6s test ops %7d errors %4d | goroutines %4.0f fds %3.0f heap %6.1f MiB rss anon %6.1f MiB file %6.1f MiB",
			s.at.Round(time.Second), load.ops.Load(), load.errs.Load(), s.goroutines, s.fds, s.heap/(1<<20), s.rssAnon/(1<<20), s.rssFile/(1<<20))
		select {
		case <-ctx.Done():
			sampling = false
		case <-tick.C:
		}
	}
	tick.Stop()
	wg.Wait()
	if s, err := readSample(srv.Process.Pid, metricsAddr); err == nil {
		s.at = time.Since(start)
		samples = append(samples, s)
	}

	select {
	case err := <-benchDone:
		if err != nil {
			t.Fatalf("iotguard bench: %v\n%s", err, benchErr.String())
		}
	case <-time.After(2 * time.Minute): // its setup (joins, talks) comes before the measured duration
		t.Fatalf("iotguard bench did not end 2 min after the soak; stderr:\n%s", benchErr.String())
	}
	var br struct {
		Ops        int64            `json:"ops"`
		Errors     map[string]int64 `json:"errors"`
		Throughput float64          `json:"throughput"`
		P99        float64          `json:"p99_ms"`
	}
	if err := json.Unmarshal([]byte(benchOut.String()), &br); err != nil {
		t.Fatalf("iotguard bench --json: %v: %q", err, benchOut.String())
	}
	var benchErrs int64
	for _, n := range br.Errors {
		benchErrs += n
	}
	t.Logf("iotguard bench mixed: %d ops (%.0f/s, p99 %.1f ms), errors %v", br.Ops, br.Throughput, br.P99, br.Errors)
	if br.Ops == 0 || benchErrs > br.Ops/100 {
		t.Errorf("iotguard bench: %d errors in %d ops", benchErrs, br.Ops)
	}

	ops, errs := load.ops.Load(), load.errs.Load()
	t.Logf("%d operations in %v (%.0f/s), %d errors; by kind: %v", ops, duration, float64(ops)/duration.Seconds(), errs, load.kinds())
	if errs > ops/100 {
		t.Errorf("%d of %d operations failed", errs, ops)
	}
	n := len(samples)
	if n < 8 {
		t.Fatalf("only %d samples: run longer", n)
	}
	mid := samples[n*2/5 : n*3/5]
	end := samples[n*3/4:]
	peak := func(s []sample, f func(sample) float64) float64 {
		m := 0.0
		for _, x := range s {
			m = max(m, f(x))
		}
		return m
	}
	floor := func(s []sample, f func(sample) float64) float64 {
		m := f(s[0])
		for _, x := range s {
			m = min(m, f(x))
		}
		return m
	}
	check := func(name string, agg func([]sample, func(sample) float64) float64, f func(sample) float64, slack func(float64) float64, unit float64, assert bool) {
		m, e := agg(mid, f), agg(end, f)
		verdict := "flat"
		if e > m+slack(m) {
			verdict = "GROWING"
			if !assert {
				verdict = "grows (not judged)"
			}
			if assert {
				t.Errorf("%s: %.1f in the middle, %.1f at the end", name, m/unit, e/unit)
			}
		}
		t.Logf("%-16s middle %8.1f  end %8.1f  %s", name, m/unit, e/unit, verdict)
	}
	memory := duration >= soakMinForMemory
	check("goroutines peak", peak, func(s sample) float64 { return s.goroutines }, func(m float64) float64 { return 0.2*m + 20 }, 1, true)
	check("open fds peak", peak, func(s sample) float64 { return s.fds }, func(float64) float64 { return 4 }, 1, true)
	// heap in use swings with collections: its floor is the live heap.
	check("heap floor MiB", floor, func(s sample) float64 { return s.heap }, func(m float64) float64 { return 0.2*m + 8<<20 }, 1<<20, memory)
	check("rss anon MiB", peak, func(s sample) float64 { return s.rssAnon }, func(m float64) float64 { return 0.2*m + 8<<20 }, 1<<20, memory)
	check("rss file MiB", peak, func(s sample) float64 { return s.rssFile }, func(float64) float64 { return 0 }, 1<<20, false)
	if !memory {
		t.Logf("memory not judged: runs under %v do not reach go-coap's steady state", soakMinForMemory)
	}
}

// readSample reads the server's metrics endpoint and /proc/<pid>/status.
func readSample(pid int, metricsAddr string) (sample, error) {
	var s sample
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	want := map[string]*float64{"go_goroutines": &s.goroutines, "process_open_fds": &s.fds, "go_memstats_heap_inuse_bytes": &s.heap}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if p := want[name]; ok && p != nil {
			if *p, err = strconv.ParseFloat(value, 64); err != nil {
				return s, fmt.Errorf("metric %s: %w", name, err)
			}
			delete(want, name)
		}
	}
	if len(want) != 0 {
		return s, fmt.Errorf("metrics missing: %v", want)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc = bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "RssAnon:":
			s.rssAnon = kb * 1024
		case "RssFile:":
			s.rssFile = kb * 1024
		}
	}
	return s, sc.Err()
}

// soakLoad is the mixed load: members that verify each other, ask for
// sessions, talk and exchange M2M messages, plus a pool of devices that
// join and rejoin (some then verify a member, leave, rejoin and leave again)
// and impostors being verified. The long-lived members never leave, so
// every error counts. Paced to
// soakRate operations per second; every operation bounded by 10 s.
type soakLoad struct {
	t      *testing.T
	addr   string
	ops    atomic.Int64
	errs   atomic.Int64
	mu     sync.Mutex
	byKind map[string]int
	ids    []string
	addrs  []string // listener address of member i
	devs   []*device.Device
	pool   map[string]*device.State
}

func newSoakLoad(t *testing.T, addr string) *soakLoad {
	l := &soakLoad{t: t, addr: addr, byKind: map[string]int{}, pool: map[string]*device.State{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range soakWorkers {
		id := fmt.Sprintf("soak-member-%d", i)
		st, err := device.NewState(id)
		if err != nil {
			t.Fatal(err)
		}
		d, err := device.Dial(addr, st)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if _, err := d.Join(ctx, 48_856_600, 2_352_200); err != nil {
			t.Fatal(err)
		}
		ln, err := d.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { return msg }, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		l.ids = append(l.ids, id)
		l.addrs = append(l.addrs, ln.Addr().String())
		l.devs = append(l.devs, d)
	}
	return l
}

func (l *soakLoad) kinds() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byKind
}

func (l *soakLoad) run(ctx context.Context, w int) {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	me := l.devs[w]
	pace := time.NewTicker(time.Second * soakWorkers / soakRate)
	defer pace.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		peer := (w + 1 + rng.IntN(soakWorkers-1)) % soakWorkers
		opCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var kind string
		var err error
		switch r := rng.IntN(100); {
		case r < 40:
			kind = "verify"
			_, err = me.Verify(opCtx, l.ids[peer])
		case r < 55:
			kind = "session"
			_, _, err = me.Session(opCtx, l.ids[peer])
		case r < 75:
			kind = "talk+m2m"
			var tk *device.Talk
			if tk, err = me.Talk(opCtx, l.addrs[peer], l.ids[peer]); err == nil {
				for i := 0; i < 3 && err == nil; i++ {
					_, err = tk.Send(opCtx, []byte("reading 21.5"))
				}
				tk.Close()
			}
		case r < 90:
			kind = "join"
			err = l.join(opCtx, l.pooled(w, rng))
		case r < 95:
			kind = "verify-impostor"
			if _, err = me.Verify(opCtx, fmt.Sprintf("impostor-%d", rng.IntN(1000))); errors.Is(err, device.ErrWarning) {
				err = nil
			}
		default:
			kind = "join+leave+rejoin+leave"
			err = l.joinAndLeave(opCtx, l.pooled(w, rng), l.ids[peer])
		}
		cancel()
		l.ops.Add(1)
		l.mu.Lock()
		l.byKind[kind]++
		l.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			l.errs.Add(1)
			l.t.Logf("%s by %s: %v", kind, l.ids[w], err)
		}
	}
}

// pooled returns one of worker w's soakPool identities (made on first use):
// a bounded population whose members join, rejoin and leave, so the CH's
// per-member state stays bounded while the ledger keeps growing.
func (l *soakLoad) pooled(w int, rng *rand.Rand) *device.State {
	i := rng.IntN(soakPool)
	l.mu.Lock()
	defer l.mu.Unlock()
	id := fmt.Sprintf("soak-w%d-%d", w, i)
	st := l.pool[id]
	if st == nil {
		var err error
		if st, err = device.NewState(id); err != nil {
			panic(err)
		}
		l.pool[id] = st
	}
	return st
}

// join (re)joins st over its own, new association, as a device that wakes
// up does: a new source port each time.
func (l *soakLoad) join(ctx context.Context, st *device.State) error {
	d, err := device.Dial(l.addr, st)
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = d.Join(ctx, 48_856_600, 2_352_200)
	return err
}

// joinAndLeave runs a short membership: join, verify a member, leave,
// rejoin with the same key, leave again.
func (l *soakLoad) joinAndLeave(ctx context.Context, st *device.State, peer string) error {
	d, err := device.Dial(l.addr, st)
	if err != nil {
		return err
	}
	defer d.Close()
	for range 2 {
		if _, err := d.Join(ctx, 48_856_600, 2_352_200); err != nil {
			return err
		}
		if _, err := d.Verify(ctx, peer); err != nil {
			return err
		}
		if _, err := d.Leave(ctx); err != nil {
			return err
		}
	}
	return nil
}
