package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/iotguard/iotguard/internal/bench"
	"github.com/iotguard/iotguard/internal/pemkey"
	"github.com/iotguard/iotguard/metrics"
)

const benchUsage = `Usage: iotguard bench [flags]

Drives a cluster head with the device library over UDP on loopback and
reports throughput, p50/p95/p99/max latency and errors by CoAP code. Without
--server it starts its own cluster head on 127.0.0.1 in a temporary
directory (rate limit and metrics off). Each device is one UDP association;
--concurrency is the number of devices. Every run stops at --duration or
--count, whichever comes first.

Scenarios: join (fresh devices join), verify, session (protected requests of
joined members), m2m (device-to-device messages), mixed, echo (the bare
go-coap baseline alone), scale (enroll --members devices, then measure join
and verify latency and memory at each size), ratios (verify, session and
join one after another, each with its baseline, in one table: the numbers
of docs/PERFORMANCE.md).

A cluster head the bench starts admits enrolled devices only, like 'serve';
the join scenario reports join throughput under each admission in the same
run: open, enrolled (each device enrolled individually: the headline
numbers) and fleet (each join carrying a fleet credential). A --server that
admits enrolled devices only needs --fleet: a fleet key it trusts, whose
credentials the bench's devices carry.

--baseline measures, in the same run, a bare go-coap echo server moving the
same payload sizes (verify, session, m2m, mixed) or the pure crypto cost of a
join (ES256 verify + sign + ECDH on every core), and reports the ratio.
With --server and --server-pid it also measures the cluster head's own CPU
time per op, and for join the ratio of the crypto bound to it: what the
cluster head would reach with the machine to itself, apart from the load
generator's devices. --serve-echo ADDR runs the echo baseline alone, in a
process of its own (with --metrics ADDR --pprof to profile it; with --bare,
go-coap's codec on a bare socket instead of its server: the floor of what
the load generator and the kernel allow, see docs/PERFORMANCE.md); another
bench uses it with --echo-server and measures its CPU with
--echo-server-pid, so that a cluster head in its own process is set against
an echo in its own process. A progress bar shows on a terminal only.

Examples:
  iotguard bench --scenario verify --duration 60s --baseline
  iotguard bench --scenario join --duration 30s --baseline --half-load --plot join.svg
  iotguard bench --scenario session --baseline --json | jq .ratio
  iotguard bench --scenario echo --concurrency 1 --duration 60s --plot decay.svg
  iotguard bench --scenario scale --members 1000,100000,1000000 --duration 10s
  iotguard bench --scenario ratios --duration 20s --concurrency 64
  iotguard bench --scenario verify --server coap://127.0.0.1:5683 --fleet fleet.pem   # serve with --rate-limit 0 --join-rate 0 --fleet-key fleet.pub
  iotguard serve --admission open --rate-limit 0 --join-rate 0 & ch=$!   # a cluster head in its own process, and its PID
  iotguard bench --scenario join --baseline --server coap://127.0.0.1:5683 --server-pid $ch
  iotguard bench --serve-echo 127.0.0.1:5700 --metrics 127.0.0.1:9470 --pprof & echo=$!
  iotguard bench --serve-echo 127.0.0.1:5701 --bare &     # the floor: no go-coap server
  iotguard bench --scenario verify --baseline --server coap://127.0.0.1:5683 --server-pid $ch \
      --echo-server coap://127.0.0.1:5700 --echo-server-pid $echo

Flags:
`

func benchCmd(args []string) error {
	def := bench.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	scenario := fs.String("scenario", def.Scenario, "`name`: "+strings.Join(bench.Scenarios, ", "))
	duration := fs.Duration("duration", def.Duration, "stop each measured phase after this long")
	count := fs.Int64("count", def.Count, "stop each measured phase after this many operations")
	concurrency := fs.Int("concurrency", def.Concurrency, "devices (UDP associations) sending at once")
	rate := fs.Float64("rate", 0, "offered operations per second over all devices (0: as fast as they go)")
	baseline := fs.Bool("baseline", false, "measure the baseline in the same run and report the ratio")
	halfLoad := fs.Bool("half-load", false, "then run again at half the measured throughput (latency with headroom)")
	server := fs.String("server", "", "`URL` of a running cluster head on loopback (default: start one)")
	serverPID := fs.Int("server-pid", 0, "with --server: the cluster head's `PID`, to measure its own CPU per op")
	data := fs.String("data", "", "data `directory` of the started cluster head (default: temporary)")
	fleetFile := fs.String("fleet", "", "with --server: a fleet private key `file` it trusts; the bench's devices join with its credentials")
	members := fs.String("members", joinInts(def.Members), "scale: member `counts`, comma-separated")
	timeout := fs.Duration("timeout", def.Timeout, "per-operation timeout")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of the table")
	plotFile := fs.String("plot", "", "write a latency and throughput plot to `FILE` (.svg or .png)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE` (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the whole run to `FILE` (go tool pprof -sample_index=alloc_space)")
	echoServer := fs.String("echo-server", "", "`URL` of the echo baseline in a process of its own (iotguard bench --serve-echo); default: one in this process")
	echoServerPID := fs.Int("echo-server-pid", 0, "with --echo-server: its `PID`, to measure its own CPU per echo")
	serveEcho := fs.String("serve-echo", "", "serve the echo baseline on `ADDR` (UDP, loopback) until interrupted, for another bench's --echo-server")
	metricsAddr := fs.String("metrics", "", "with --serve-echo: serve the process's Go metrics on `ADDR` (HTTP, loopback)")
	pprofOn := fs.Bool("pprof", false, "with --serve-echo and --metrics: also serve net/http/pprof there")
	bare := fs.Bool("bare", false, "with --serve-echo: answer with go-coap's codec on a bare socket, one datagram at a time, without its server (no associations, hand-offs or answer cache)")
	if err := Parse(fs, benchUsage, args); err != nil {
		return err
	}
	if *serveEcho != "" {
		return serveEchoCmd(*serveEcho, *bare, *metricsAddr, *pprofOn)
	}
	if *metricsAddr != "" || *pprofOn || *bare {
		return usageError{msg: "--metrics, --pprof and --bare go with --serve-echo (profile a cluster head with 'iotguard serve --pprof')"}
	}
	ms, err := parseInts(*members)
	if err != nil {
		return usageError{msg: "--members: " + err.Error()}
	}
	cfg := bench.Config{
		Scenario: *scenario, Duration: *duration, Count: *count, Concurrency: *concurrency, Rate: *rate,
		Baseline: *baseline, HalfLoad: *halfLoad, Server: *server, ServerPID: *serverPID, EchoServer: *echoServer, EchoServerPID: *echoServerPID,
		DataDir: *data, Members: ms, Timeout: *timeout,
		Progress: bench.TerminalProgress(os.Stderr),
	}
	if err := cfg.Validate(); err != nil {
		return usageError{msg: err.Error()}
	}
	if *fleetFile != "" {
		if cfg.Fleet, err = pemkey.ReadPrivate(*fleetFile); err != nil {
			return err
		}
	}
	if !*jsonOut && bench.IsTerminal(os.Stderr) { // pipes get the result alone
		cfg.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	if *plotFile != "" {
		if err := res.WritePlot(*plotFile); err != nil {
			return err
		}
	}
	if *jsonOut {
		return res.WriteJSON(os.Stdout)
	}
	return res.WriteTable(os.Stdout)
}

// serveEchoCmd serves the echo baseline (bare: the bare echo) on addr until
// SIGINT or SIGTERM: the baseline in a process of its own, to profile it
// (--metrics with --pprof) and to measure its CPU per echo (another bench's
// --echo-server with --echo-server-pid).
func serveEchoCmd(addr string, bare bool, metricsAddr string, withPprof bool) error {
	if withPprof && metricsAddr == "" {
		return usageError{msg: "--pprof needs --metrics ADDR"}
	}
	var srv interface {
		Addr() string
		Close() error
	}
	var err error
	if bare {
		srv, err = bench.ServeBareEcho(addr)
	} else {
		srv, err = bench.ServeEcho(addr)
	}
	if err != nil {
		return err
	}
	defer srv.Close()
	if metricsAddr != "" {
		if err := bench.CheckLoopback(metricsAddr); err != nil {
			return err
		}
		var opts []metrics.ServeOption
		if withPprof {
			opts = append(opts, metrics.WithPprof())
		}
		m, err := metrics.Serve(metricsAddr, metrics.NewRegistry(), opts...)
		if err != nil {
			return err
		}
		defer m.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	name := "echo baseline"
	if bare {
		name = "bare echo"
	}
	fmt.Printf("%s on coap://%s, pid %d; stop with SIGINT or SIGTERM\n", name, srv.Addr(), os.Getpid())
	<-ctx.Done()
	return nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		p = strings.ReplaceAll(strings.TrimSpace(p), "_", "")
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
