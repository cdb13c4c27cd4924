// Package bench is IoT-Guard's load generator: it drives a cluster head with
// the device library over real UDP on loopback, measures throughput and
// latency, and measures a baseline in the same run so that results are
// ratios, which survive a noisy shared machine where absolute numbers do not.
//
// Scenarios: join (fresh devices joining), verify, session (protected
// requests of joined members), m2m (device-to-device messages in a session),
// mixed (all of them), echo (the bare go-coap baseline alone) and scale
// (enroll up to a million members, then measure join and verify latency and
// memory at each size). Baselines: a bare go-coap echo server moving the
// same payload sizes for verify, session, m2m and mixed; the pure crypto
// cost (ES256 verify + sign + ECDH) for join.
//
// A cluster head the bench starts admits enrolled devices only, as 'serve'
// does by default, and trusts a fleet key of the run: members join with
// fleet credentials. The join scenario measures three admissions in the same
// run, interleaved, each on a cluster head of its own (admission.go): open,
// enrolled (individual enrollments) and fleet (credentials).
//
// Every run is bounded in count and in time, and loads loopback addresses
// only. One device is one UDP association; go-coap's client allows one
// request in flight per association, so concurrency is the number of
// devices. An association moves to a new source port every 60,000 requests
// (one source has 65,536 CoAP message IDs per 247 s).
package bench

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
)

// Scenarios.
const (
	ScenarioJoin    = "join"
	ScenarioVerify  = "verify"
	ScenarioSession = "session"
	ScenarioM2M     = "m2m"
	ScenarioMixed   = "mixed"
	ScenarioEcho    = "echo"
	ScenarioScale   = "scale"
	// ScenarioRatios runs verify, session and join one after another, each
	// with its baseline, and reports their ratios in one table.
	ScenarioRatios = "ratios"
)

// Scenarios lists the scenario names in the order of the documentation.
var Scenarios = []string{ScenarioJoin, ScenarioVerify, ScenarioSession, ScenarioM2M, ScenarioMixed, ScenarioEcho, ScenarioScale, ScenarioRatios}

// ratioScenarios are the parts of ScenarioRatios, in the order they run.
var ratioScenarios = []string{ScenarioVerify, ScenarioSession, ScenarioJoin}

// Goals of docs/PERFORMANCE.md: the ratio each scenario should reach
// against its baseline.
const (
	GoalProtected = 0.8 // /verify, /session vs the go-coap echo
	GoalJoin      = 0.5 // /join vs its crypto bound
	// SeedJoinsPerSecond is what the seed's Python implementation managed
	// on this kind of machine (proof-of-work bound), as issue 6 states it:
	// the seed is not in this repository, so it is not measured here.
	SeedJoinsPerSecond = 2.2
)

// m2mMessage is the size of one M2M message in the m2m scenario.
const m2mMessage = 32

// Config is one bench run.
type Config struct {
	Scenario    string
	Duration    time.Duration // bound on each measured phase
	Count       int64         // bound on the ops of each measured phase
	Concurrency int           // devices (UDP associations) issuing requests
	Rate        float64       // ops/s over all devices; 0: as fast as they go
	Baseline    bool          // measure the baseline in the same run
	HalfLoad    bool          // then rerun at half the measured throughput
	Server      string        // coap://127.0.0.1:PORT of a running CH; "" starts one
	ServerPID   int           // with Server: its process, whose CPU time is measured too; 0 none
	// EchoServer is coap://127.0.0.1:PORT of an echo baseline in a process
	// of its own ('iotguard bench --serve-echo'); "" starts one in this
	// process. EchoServerPID is that process, whose CPU time is measured too.
	EchoServer    string
	EchoServerPID int
	DataDir       string        // the started CH's data directory; "" a temporary one
	Members       []int         // scale: member counts to measure at
	Timeout       time.Duration // per op
	Progress      Progress      // nil: none
	Log           io.Writer     // setup steps; nil: none
	// Fleet is a fleet key that a --server trusts: the bench's devices join
	// it with credentials of this key. Without it a server that admits
	// enrolled devices only refuses them (ErrAdmission).
	Fleet *ecdsa.PrivateKey
}

// DefaultConfig returns the defaults of the CLI.
func DefaultConfig() Config {
	return Config{
		Scenario: ScenarioVerify, Duration: 10 * time.Second, Count: 10_000_000, Concurrency: 32,
		Timeout: 5 * time.Second, Members: []int{1000, 100_000, 1_000_000},
	}
}

// Result is what a run measured. Its JSON form is one object; tools outside
// the repository read scenario, throughput, p50_ms, p99_ms, baseline,
// baseline_throughput and ratio.
type Result struct {
	Scenario  string `json:"scenario"`
	Server    string `json:"server"`
	Admission string `json:"admission"` // how the measured devices were admitted: open, enrolled, fleet
	// Admissions are the join scenario under each admission, measured in
	// the same run (a cluster head of the bench's own only).
	Admissions  []AdmissionRun `json:"admissions,omitempty"`
	Concurrency int            `json:"concurrency"`
	Rate        float64        `json:"rate,omitempty"`
	Seconds     float64        `json:"duration_s"`

	Ops        int64            `json:"ops"`
	Errors     map[string]int64 `json:"errors"`
	Throughput float64          `json:"throughput"`
	P50        float64          `json:"p50_ms"`
	P95        float64          `json:"p95_ms"`
	P99        float64          `json:"p99_ms"`
	Max        float64          `json:"max_ms"`
	// CPUMicros is the CPU time of the whole process (load generator and,
	// when in-process, the cluster head) per successful op: unlike
	// throughput, it hardly moves when other processes take the cores.
	CPUMicros float64 `json:"cpu_us_per_op"`
	// ServerCPUMicros is the CPU time of the cluster head's own process per
	// successful op, when it runs apart (--server with --server-pid).
	ServerCPUMicros float64 `json:"server_cpu_us_per_op,omitempty"`
	// ServerCPURatio is, for a join, the crypto bound's time per op on one
	// core over ServerCPUMicros: the ratio the cluster head would reach with
	// the machine to itself, whatever the load generator costs. For the
	// other scenarios, with the echo in a process of its own too, it is
	// BaselineServerCPUMicros over ServerCPUMicros: server against server.
	ServerCPURatio float64 `json:"server_cpu_ratio,omitempty"`
	// BaselineServerCPUMicros is the CPU time of the echo's own process per
	// successful echo (--echo-server with --echo-server-pid).
	BaselineServerCPUMicros float64 `json:"baseline_server_cpu_us_per_op,omitempty"`

	Baseline           string  `json:"baseline"`
	BaselineThroughput float64 `json:"baseline_throughput"`
	BaselineP50        float64 `json:"baseline_p50_ms,omitempty"`
	BaselineP99        float64 `json:"baseline_p99_ms,omitempty"`
	BaselineCPUMicros  float64 `json:"baseline_cpu_us_per_op,omitempty"`
	// CPURatio is BaselineCPUMicros / CPUMicros: the ratio the machine
	// would show if this process had every core to itself.
	CPURatio     float64      `json:"cpu_ratio,omitempty"`
	Ratio        float64      `json:"ratio"`
	Goal         float64      `json:"goal,omitempty"`
	Crypto       *CryptoBound `json:"crypto,omitempty"`
	PayloadBytes [2]int       `json:"payload_bytes,omitempty"` // request, response of the echo baseline

	VsSeed float64 `json:"vs_seed,omitempty"` // join: throughput / SeedJoinsPerSecond

	HalfLoad *HalfLoad  `json:"half_load,omitempty"`
	Scale    []ScaleRow `json:"scale,omitempty"`
	// Parts (ratios) are the results of verify, session and join, each
	// measured with its baseline in this run.
	Parts []*Result `json:"parts,omitempty"`

	Windows         []Window `json:"windows"`
	BaselineWindows []Window `json:"baseline_windows,omitempty"`
	Plot            string   `json:"plot,omitempty"`
	Machine         Machine  `json:"machine"`
}

// HalfLoad is a second run at half the measured throughput: the latency a
// cluster head shows with headroom.
type HalfLoad struct {
	Rate       float64 `json:"rate"`
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	P99OverP50 float64 `json:"p99_over_p50"`
	// The echo baseline at the same offered rate (with --baseline).
	BaselineP50        float64 `json:"baseline_p50_ms,omitempty"`
	BaselineP99        float64 `json:"baseline_p99_ms,omitempty"`
	BaselineP99OverP50 float64 `json:"baseline_p99_over_p50,omitempty"`
	// The Go runtime's delays in this process during each run: with the
	// cluster head in this process (no --server), where the tail comes from.
	Runtime         RuntimeDelays  `json:"runtime"`
	BaselineRuntime *RuntimeDelays `json:"baseline_runtime,omitempty"`
}

// Machine describes where a run ran.
type Machine struct {
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	OS         string `json:"os"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Validate checks cfg before anything starts.
func (c *Config) Validate() error {
	known := false
	for _, s := range Scenarios {
		known = known || s == c.Scenario
	}
	switch {
	case !known:
		return fmt.Errorf("%w: %q (want one of %s)", ErrScenario, c.Scenario, strings.Join(Scenarios, ", "))
	case c.Duration <= 0 || c.Duration > 24*time.Hour:
		return fmt.Errorf("%w: duration %v", ErrBounds, c.Duration)
	case c.Count <= 0:
		return fmt.Errorf("%w: count %d", ErrBounds, c.Count)
	case c.Concurrency < 1 || c.Concurrency > 4096:
		return fmt.Errorf("%w: concurrency %d outside 1..4096", ErrBounds, c.Concurrency)
	case c.Rate < 0:
		return fmt.Errorf("%w: rate %v", ErrBounds, c.Rate)
	case c.Timeout <= 0:
		return fmt.Errorf("%w: timeout %v", ErrBounds, c.Timeout)
	case c.Server != "" && c.Scenario == ScenarioScale:
		return fmt.Errorf("%w: scale enrolls members into its own ledger; drop --server", ErrBounds)
	case c.ServerPID != 0 && c.Server == "":
		return fmt.Errorf("%w: a server PID needs --server", ErrBounds)
	case c.EchoServerPID != 0 && c.EchoServer == "":
		return fmt.Errorf("%w: an echo server PID needs --echo-server", ErrBounds)
	case c.EchoServer != "" && c.Server == "":
		// Like with like: a ratio sets the servers against each other in
		// the same arrangement, both in this process or both apart.
		return fmt.Errorf("%w: an echo in a process of its own is set against a cluster head in one of its own: add --server", ErrBounds)
	}
	for _, pid := range []int{c.ServerPID, c.EchoServerPID} {
		if _, err := processCPUOrZero(pid); err != nil {
			return fmt.Errorf("%w: %v", ErrBounds, err)
		}
	}
	for _, n := range c.Members {
		if n < 1 || n > 10_000_000 {
			return fmt.Errorf("%w: members %d outside 1..10,000,000", ErrBounds, n)
		}
	}
	for _, server := range []string{c.Server, c.EchoServer} {
		if server == "" {
			continue
		}
		if err := CheckLoopback(server); err != nil {
			return err
		}
	}
	return nil
}

// hostPort is the host:port of a coap:// URL.
func hostPort(url string) string {
	return strings.TrimSuffix(strings.TrimPrefix(url, "coap://"), "/")
}

// CheckLoopback refuses a server (coap://host:port or host:port) that is not
// on a loopback address: load goes to this machine only.
func CheckLoopback(server string) error {
	host, _, err := net.SplitHostPort(hostPort(server))
	if err != nil {
		return fmt.Errorf("%w: server %q: %v", ErrNotLoopback, server, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %s", ErrNotLoopback, host)
	}
	return nil
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

func (c *Config) progress() Progress {
	if c.Progress == nil {
		return quiet{}
	}
	return c.Progress
}

// Run runs cfg's scenario and, with cfg.Baseline, its baseline.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Scenario == ScenarioScale {
		return runScale(ctx, cfg)
	}
	if cfg.Scenario == ScenarioRatios {
		return runRatios(ctx, cfg)
	}
	res := &Result{Scenario: cfg.Scenario, Concurrency: cfg.Concurrency, Rate: cfg.Rate, Machine: machine(), Errors: map[string]int64{}}
	if cfg.Scenario == ScenarioEcho {
		return res, runEcho(cfg, res)
	}
	admission := AdmitFleet // members are set up with credentials
	if cfg.Scenario == ScenarioJoin {
		admission = AdmitEnrolled // the headline: the default of 'serve'
	}
	t, err := openTarget(cfg, admission)
	if err != nil {
		return nil, err
	}
	defer t.close()
	res.Server, res.Admission = t.describe(), t.admission
	sc, err := setup(ctx, cfg, t)
	if err != nil {
		return nil, err
	}
	defer sc.close()
	var others []variant
	if cfg.Scenario == ScenarioJoin && t.ch != nil {
		for _, a := range []string{AdmitOpen, AdmitFleet} {
			v, err := openVariant(ctx, cfg, a)
			if err != nil {
				return nil, err
			}
			defer v.close()
			others = append(others, v)
		}
	}

	if err := measure(cfg, t, sc, res, others); err != nil {
		return nil, err
	}
	if cfg.Scenario == ScenarioJoin {
		res.VsSeed = res.Throughput / SeedJoinsPerSecond
	}
	if cfg.HalfLoad && res.Throughput > 0 {
		if err := halfLoad(cfg, t, sc, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// runRatios runs each of ratioScenarios with its baseline (and, with
// --server-pid, the join's server CPU ratio), one after another, against
// the same server or each against a cluster head of its own.
func runRatios(ctx context.Context, cfg Config) (*Result, error) {
	res := &Result{Scenario: ScenarioRatios, Concurrency: cfg.Concurrency, Rate: cfg.Rate, Machine: machine(), Errors: map[string]int64{}}
	for _, sc := range ratioScenarios {
		c := cfg
		c.Scenario, c.Baseline = sc, true
		if c.DataDir != "" {
			c.DataDir = filepath.Join(cfg.DataDir, sc)
		}
		r, err := Run(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("ratios: %s: %w", sc, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.Server, res.Seconds, res.Ops = r.Server, res.Seconds+r.Seconds, res.Ops+r.Ops
		for k, v := range r.Errors {
			res.Errors[sc+" "+k] += v
		}
		res.Parts = append(res.Parts, r)
	}
	return res, nil
}

// halfLoad runs the scenario again at half its measured throughput and,
// with a baseline, the echo baseline at the same offered rate: the tail that
// go-coap and the Go scheduler show on their own on this machine.
func halfLoad(cfg Config, t *target, sc *scenario, res *Result) error {
	rate := res.Throughput / 2
	before := sampleRuntime()
	h := sc.run(cfg, cfg.Scenario, cfg.Scenario+" at half load", rate)
	hl := &HalfLoad{Rate: rate, Throughput: float64(h.ok) / h.elapsed.Seconds(), Runtime: runtimeDelays(before, sampleRuntime())}
	hl.P50, hl.P99, hl.P99OverP50 = tail(h)
	for k, v := range h.errors {
		res.Errors["half-load "+k] += v
	}
	res.HalfLoad = hl
	if !cfg.Baseline || cfg.Scenario == ScenarioJoin {
		return nil
	}
	base, closeBase, err := baseline(cfg, t, res)
	if err != nil {
		return err
	}
	defer closeBase()
	c := cfg
	c.Rate = rate
	before = sampleRuntime()
	b, err := base(c)
	if err != nil {
		return err
	}
	d := runtimeDelays(before, sampleRuntime())
	hl.BaselineRuntime = &d
	hl.BaselineP50, hl.BaselineP99, hl.BaselineP99OverP50 = tail(b)
	for k, v := range b.errors {
		res.Errors["half-load baseline "+k] += v
	}
	return nil
}

// tail returns the p50 and p99 latency of o in ms and their ratio.
func tail(o outcome) (p50, p99, ratio float64) {
	lat := latencies(o.samples)
	p50, p99 = quantile(lat, 0.5), quantile(lat, 0.99)
	if p50 > 0 {
		ratio = p99 / p50
	}
	return p50, p99, ratio
}

// fill copies a phase's outcome into r.
func (r *Result) fill(o outcome) {
	lat := latencies(o.samples)
	r.Ops, r.Seconds = o.ok, o.elapsed.Seconds()
	r.Throughput = float64(o.ok) / o.elapsed.Seconds()
	if o.ok > 0 {
		r.CPUMicros = float64(o.cpu.Microseconds()) / float64(o.ok)
		r.ServerCPUMicros = float64(o.serverCPU.Microseconds()) / float64(o.ok)
	}
	r.P50, r.P95, r.P99 = quantile(lat, 0.5), quantile(lat, 0.95), quantile(lat, 0.99)
	if len(lat) > 0 {
		r.Max = lat[len(lat)-1]
	}
	for k, v := range o.errors {
		r.Errors[k] += v
	}
	r.Windows = windows(o.samples, o.elapsed)
}

// runEcho is the echo scenario: the go-coap baseline on its own, e.g. with
// one association to watch a single busy source over a long run.
func runEcho(cfg Config, res *Result) error {
	req, resp, err := payloadSizes(ScenarioVerify, "bench", "bench-000000")
	if err != nil {
		return err
	}
	srv, err := StartEcho("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer srv.Close()
	res.Server = "go-coap echo in-process coap://" + srv.Addr()
	res.PayloadBytes = [2]int{req, resp}
	ws, err := echoWorkers(srv.Addr(), cfg.Concurrency, req, resp)
	if err != nil {
		return err
	}
	defer closeAll(ws)
	res.fill(load{name: "echo", duration: cfg.Duration, count: cfg.Count, rate: cfg.Rate, timeout: cfg.Timeout, progress: cfg.progress()}.run(ws))
	return nil
}

// processCPUOrZero returns the CPU time of process pid so far, 0 for pid 0.
func processCPUOrZero(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	return processCPUOf(pid)
}

// roundLength is the length of one slice of an interleaved run.
const roundLength = 2 * time.Second

// variant is the join scenario under another admission, on a cluster head
// of its own.
type variant struct {
	t  *target
	sc *scenario
}

func (v variant) close() { v.sc.close(); v.t.close() }

// openVariant starts a cluster head admitting by a and sets the join
// scenario up on it.
func openVariant(ctx context.Context, cfg Config, a string) (variant, error) {
	c := cfg
	c.DataDir = "" // each its own temporary directory
	t, err := openTarget(c, a)
	if err != nil {
		return variant{}, err
	}
	sc, err := setup(ctx, c, t)
	if err != nil {
		t.close()
		return variant{}, err
	}
	return variant{t, sc}, nil
}

// measure runs the scenario and, with cfg.Baseline, its baseline, and the
// join scenario under the other admissions, in alternating slices of about
// roundLength, so that all see the same machine: on a shared machine the
// load of others drifts within seconds.
func measure(cfg Config, t *target, sc *scenario, res *Result, others []variant) error {
	rounds := 1
	if cfg.Baseline || len(others) > 0 {
		rounds = max(1, int(cfg.Duration/roundLength))
	}
	slice := cfg
	slice.Duration = cfg.Duration / time.Duration(rounds)
	slice.Count = max(1, cfg.Count/int64(rounds))
	scWorkers := sc.workers(cfg, cfg.Scenario)
	var base func(Config) (outcome, error)
	var closeBase func()
	if cfg.Baseline {
		var err error
		if base, closeBase, err = baseline(cfg, t, res); err != nil {
			return err
		}
		defer closeBase()
	}
	var main, bl outcome
	byAdmission := map[string]outcome{}
	otherWorkers := make([][]worker, len(others))
	for i, v := range others {
		otherWorkers[i] = v.sc.workers(cfg, cfg.Scenario)
	}
	for i := range rounds {
		for j, v := range others {
			name := fmt.Sprintf("%s (admission %s) %d/%d", cfg.Scenario, v.t.admission, i+1, rounds)
			cfg.logf("run: %s, %d devices, %v or %d ops", name, cfg.Concurrency, slice.Duration, slice.Count)
			o := load{name: name, duration: slice.Duration, count: slice.Count, rate: cfg.Rate, timeout: cfg.Timeout, progress: cfg.progress()}.run(otherWorkers[j])
			byAdmission[v.t.admission] = byAdmission[v.t.admission].merge(o)
			for k, c := range o.errors {
				res.Errors[v.t.admission+" "+k] += c
			}
		}
		if base != nil {
			unpaced := slice // the baseline's throughput is what it reaches, not --rate
			unpaced.Rate = 0
			o, err := base(unpaced)
			if err != nil {
				return err
			}
			bl = bl.merge(o)
		}
		name := cfg.Scenario
		if rounds > 1 {
			name = fmt.Sprintf("%s %d/%d", cfg.Scenario, i+1, rounds)
		}
		cfg.logf("run: %s, %d devices, %v or %d ops", name, cfg.Concurrency, slice.Duration, slice.Count)
		cpu0, err := processCPUOrZero(cfg.ServerPID)
		if err != nil {
			return err
		}
		o := load{name: name, duration: slice.Duration, count: slice.Count, rate: cfg.Rate, timeout: cfg.Timeout, progress: cfg.progress()}.run(scWorkers)
		cpu1, err := processCPUOrZero(cfg.ServerPID)
		if err != nil {
			return err
		}
		o.serverCPU = cpu1 - cpu0
		main = main.merge(o)
	}
	res.fill(main)
	if len(others) > 0 {
		byAdmission[t.admission] = main
		res.Admissions = admissionRuns(byAdmission)
	}
	if base != nil {
		if cfg.Scenario == ScenarioJoin {
			res.BaselineThroughput = float64(bl.ok) / bl.elapsed.Seconds()
			res.Crypto.Throughput = res.BaselineThroughput
			res.Crypto.PerCore = res.BaselineThroughput / float64(res.Crypto.Cores)
			res.Crypto.OpMicros = 1e6 / res.Crypto.PerCore
			if res.ServerCPUMicros > 0 {
				res.ServerCPURatio = res.Crypto.OpMicros / res.ServerCPUMicros
			}
		} else {
			lat := latencies(bl.samples)
			res.BaselineThroughput = float64(bl.ok) / bl.elapsed.Seconds()
			res.BaselineP50, res.BaselineP99 = quantile(lat, 0.5), quantile(lat, 0.99)
			res.BaselineWindows = windows(bl.samples, bl.elapsed)
			if bl.ok > 0 && res.CPUMicros > 0 {
				res.BaselineCPUMicros = float64(bl.cpu.Microseconds()) / float64(bl.ok)
				res.CPURatio = res.BaselineCPUMicros / res.CPUMicros
			}
			if bl.ok > 0 && bl.serverCPU > 0 {
				res.BaselineServerCPUMicros = float64(bl.serverCPU.Microseconds()) / float64(bl.ok)
				if res.ServerCPUMicros > 0 {
					res.ServerCPURatio = res.BaselineServerCPUMicros / res.ServerCPUMicros
				}
			}
		}
		for k, v := range bl.errors {
			res.Errors["baseline "+k] += v
		}
		res.Ratio = res.Throughput / res.BaselineThroughput
	}
	return nil
}

// baseline prepares the scenario's baseline: a function measuring one
// slice of it, and what to release after.
func baseline(cfg Config, t *target, res *Result) (func(Config) (outcome, error), func(), error) {
	if cfg.Scenario == ScenarioJoin {
		res.Baseline = "crypto: ES256 verify + ES256 sign + ECDH P-256, in-process, all cores"
		res.Goal = GoalJoin
		res.Crypto = &CryptoBound{Cores: runtime.GOMAXPROCS(0)}
		return func(c Config) (outcome, error) {
			d := min(c.Duration, time.Second)
			cfg.logf("baseline: crypto bound on %d cores for %v", runtime.GOMAXPROCS(0), d)
			cb, err := MeasureCryptoBound(d)
			if err != nil {
				return outcome{}, err
			}
			return outcome{ok: int64(cb.Throughput * d.Seconds()), elapsed: d, errors: map[string]int64{}}, nil
		}, func() {}, nil
	}
	req, resp, err := payloadSizes(cfg.Scenario, t.cluster, t.prefix+"-m-0000")
	if err != nil {
		return nil, nil, err
	}
	addr, stop := hostPort(cfg.EchoServer), func() {}
	res.Baseline = "go-coap echo: same server options, process, payload sizes and client setup"
	if cfg.EchoServer == "" {
		srv, err := StartEcho("127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		addr, stop = srv.Addr(), func() { srv.Close() }
	} else {
		res.Baseline = "go-coap echo in its own process (" + cfg.EchoServer + "): same server options, payload sizes and client setup"
	}
	ws, err := echoWorkers(addr, cfg.Concurrency, req, resp)
	if err != nil {
		stop()
		return nil, nil, err
	}
	res.PayloadBytes = [2]int{req, resp}
	res.Goal = GoalProtected
	if cfg.Scenario == ScenarioM2M || cfg.Scenario == ScenarioMixed {
		res.Goal = 0
	}
	run := func(c Config) (outcome, error) {
		cfg.logf("baseline: go-coap echo, %d associations, %d/%d bytes, %v", cfg.Concurrency, req, resp, c.Duration)
		cpu0, err := processCPUOrZero(cfg.EchoServerPID)
		if err != nil {
			return outcome{}, err
		}
		o := load{name: "echo baseline", duration: c.Duration, count: c.Count, rate: c.Rate, timeout: cfg.Timeout, progress: cfg.progress()}.run(ws)
		cpu1, err := processCPUOrZero(cfg.EchoServerPID)
		o.serverCPU = cpu1 - cpu0
		return o, err
	}
	return run, func() { closeAll(ws); stop() }, nil
}

// target is the cluster head under load.
type target struct {
	addr      string
	ch        *clusterhead.CH // nil for an external server
	dir       string          // the started CH's data directory
	tmp       string          // temporary data directory to remove
	cluster   string
	lat, lon  int64
	prefix    string            // device IDs of this run start with it
	admission string            // how its devices are admitted: AdmitOpen, AdmitEnrolled, AdmitFleet
	fleet     *ecdsa.PrivateKey // the fleet key it trusts, whose credentials members carry; nil: none
}

// benchPosition is where the started CH stands; devices join at it.
var benchPosition = cluster.Position{Lat: 48_856_600, Lon: 2_352_200}

// openTarget returns the cluster head to load: cfg.Server, or one started
// in this process whose joins are admitted as admission says (AdmitOpen,
// AdmitEnrolled, AdmitFleet). Members always join a started one with fleet
// credentials; admission decides how the join scenario's devices do.
func openTarget(cfg Config, admission string) (*target, error) {
	t := &target{prefix: runPrefix(), admission: admission}
	if cfg.Server != "" {
		t.addr = strings.TrimSuffix(strings.TrimPrefix(cfg.Server, "coap://"), "/")
		info, a, err := probe(t.addr, cfg.Timeout)
		if err != nil {
			return nil, err
		}
		t.cluster, t.lat, t.lon = info.Cluster, info.Lat, info.Lon
		switch {
		case a == AdmitOpen:
			t.admission = AdmitOpen
		case cfg.Fleet == nil:
			return nil, fmt.Errorf("%w: %s admits enrolled devices only (%q): give --fleet with a fleet key it trusts (--fleet-key), or serve with --admission open", ErrAdmission, cfg.Server, a)
		default:
			t.admission, t.fleet = AdmitFleet, cfg.Fleet
		}
		return t, nil
	}
	dir := cfg.DataDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "iotguard-bench-"); err != nil {
			return nil, fmt.Errorf("failed to make a data directory: %w", err)
		}
		t.tmp = dir
	}
	fleet, err := newFleet()
	if err != nil {
		t.close()
		return nil, err
	}
	adm := cluster.AdmissionEnrolled
	if admission == AdmitOpen {
		adm = cluster.AdmissionOpen
	}
	ch, err := clusterhead.Start(clusterhead.Config{
		Listen: "127.0.0.1:0", DataDir: dir, NoAdmin: true,
		Cluster: cluster.Config{ID: "bench", Position: benchPosition, Radius: 1000, Admission: adm,
			FleetKeys: []*ecdsa.PublicKey{&fleet.PublicKey}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.close()
		return nil, err
	}
	t.ch, t.addr, t.cluster, t.dir, t.fleet = ch, ch.Addr(), "bench", dir, fleet
	t.lat, t.lon = benchPosition.Lat, benchPosition.Lon
	return t, nil
}

func (t *target) describe() string {
	if t.ch != nil {
		return "in-process coap://" + t.addr + " (rate limit off, metrics off)"
	}
	return "coap://" + t.addr
}

func (t *target) close() {
	if t.ch != nil {
		t.ch.Close()
	}
	if t.tmp != "" {
		os.RemoveAll(t.tmp)
	}
}
