package bench_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/bench"
	"github.com/iotguard/iotguard/internal/chtest"
)

// TestServerCPU drives a cluster head that runs in this very process, named
// as the server's PID: the server CPU the run reports must then be this
// process's CPU, which the run measures too (to within /proc's 10 ms ticks),
// and a join run relates it to the crypto bound. Bounded: 1 s phases.
func TestServerCPU(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open) // the bench's devices join a server it cannot enroll them on
	for _, sc := range []string{bench.ScenarioVerify, bench.ScenarioJoin} {
		cfg := bench.DefaultConfig()
		cfg.Scenario, cfg.Duration, cfg.Concurrency, cfg.Baseline = sc, time.Second, 2, sc == bench.ScenarioJoin
		cfg.Server, cfg.ServerPID = "coap://"+ch.Addr(), os.Getpid()
		res, err := bench.Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Ops == 0 || res.ServerCPUMicros <= 0 {
			t.Fatalf("%s: %d ops, server CPU %.0f µs/op", sc, res.Ops, res.ServerCPUMicros)
		}
		tick := 0.02e6 / float64(res.Ops) // two 10 ms ticks, per op
		if d := math.Abs(res.ServerCPUMicros - res.CPUMicros); d > tick+0.05*res.CPUMicros {
			t.Errorf("%s: server CPU %.1f µs/op, process CPU %.1f µs/op: the same process", sc, res.ServerCPUMicros, res.CPUMicros)
		}
		if sc == bench.ScenarioJoin && (res.Crypto == nil || math.Abs(res.ServerCPURatio-res.Crypto.OpMicros/res.ServerCPUMicros) > 1e-9) {
			t.Errorf("join: server CPU ratio %v with crypto %+v", res.ServerCPURatio, res.Crypto)
		}
	}
	cfg := bench.DefaultConfig()
	cfg.ServerPID = os.Getpid()
	if err := cfg.Validate(); err == nil {
		t.Error("a server PID without --server was accepted")
	}
}

// TestEchoServerApart: with the cluster head and the echo each given as a
// server with a PID (here both this process), the run measures the echo's
// own CPU per echo and sets it against the cluster head's. An echo apart
// needs a cluster head apart: like with like.
func TestEchoServerApart(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	echo, err := bench.ServeEcho("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	cfg := bench.DefaultConfig()
	cfg.Scenario, cfg.Duration, cfg.Concurrency, cfg.Baseline = bench.ScenarioVerify, time.Second, 2, true
	cfg.Server, cfg.ServerPID = "coap://"+ch.Addr(), os.Getpid()
	cfg.EchoServer, cfg.EchoServerPID = "coap://"+echo.Addr(), os.Getpid()
	res, err := bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.BaselineThroughput <= 0 || res.BaselineServerCPUMicros <= 0 || res.ServerCPUMicros <= 0 || len(res.Errors) != 0 {
		t.Fatalf("baseline %.0f ops/s, echo server CPU %.1f µs/op, CH CPU %.1f µs/op, errors %v", res.BaselineThroughput, res.BaselineServerCPUMicros, res.ServerCPUMicros, res.Errors)
	}
	if want := res.BaselineServerCPUMicros / res.ServerCPUMicros; math.Abs(res.ServerCPURatio-want) > 1e-9 || !strings.Contains(res.Baseline, "own process") {
		t.Errorf("server CPU ratio %v, want %v; baseline %q", res.ServerCPURatio, want, res.Baseline)
	}
	cfg.Server, cfg.ServerPID = "", 0
	if err := cfg.Validate(); !errors.Is(err, bench.ErrBounds) {
		t.Errorf("an echo apart with a cluster head in process: %v, want ErrBounds", err)
	}
	cfg.EchoServer = "coap://192.0.2.1:5700"
	cfg.Server = "coap://" + ch.Addr()
	if err := cfg.Validate(); !errors.Is(err, bench.ErrNotLoopback) {
		t.Errorf("an echo server off loopback: %v, want ErrNotLoopback", err)
	}
}

// TestM2MUnrefused: the m2m scenario's messages all come from 127.0.0.1, so
// its listeners run without their per-source limit, as the bench's cluster
// head does: every message is answered, none refused 4.29.
func TestM2MUnrefused(t *testing.T) {
	cfg := bench.DefaultConfig()
	cfg.Scenario, cfg.Duration, cfg.Concurrency = bench.ScenarioM2M, time.Second, 4
	res, err := bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || len(res.Errors) != 0 {
		t.Fatalf("%d ops, errors %v", res.Ops, res.Errors)
	}
}

// TestHalfLoadBaseline: --half-load with --baseline measures the echo at the
// same offered rate, so the report can set the scenario's tail beside the
// transport's own.
func TestHalfLoadBaseline(t *testing.T) {
	cfg := bench.DefaultConfig()
	cfg.Scenario, cfg.Duration, cfg.Concurrency, cfg.Baseline, cfg.HalfLoad = bench.ScenarioVerify, time.Second, 2, true, true
	res, err := bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := res.HalfLoad
	if h == nil || h.P50 <= 0 || h.BaselineP50 <= 0 || h.BaselineP99 < h.BaselineP50 || h.BaselineP99OverP50 != h.BaselineP99/h.BaselineP50 {
		t.Fatalf("half load %+v", h)
	}
}

// TestJoinAdmissions: a join run on the bench's own cluster heads measures
// open, enrolled and fleet admission in the same run, every join admitted
// (no errors), with enrolled as the headline numbers.
func TestJoinAdmissions(t *testing.T) {
	cfg := bench.DefaultConfig()
	cfg.Scenario, cfg.Duration, cfg.Count, cfg.Concurrency = bench.ScenarioJoin, time.Second, 200, 2
	res, err := bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Admission != bench.AdmitEnrolled || len(res.Errors) != 0 {
		t.Fatalf("admission %q, errors %v", res.Admission, res.Errors)
	}
	var got []string
	for _, a := range res.Admissions {
		got = append(got, a.Admission)
		if a.Ops == 0 || a.Throughput <= 0 || a.P50 <= 0 {
			t.Errorf("admission %s: %+v", a.Admission, a)
		}
		if a.Admission == bench.AdmitEnrolled && (a.Ops != res.Ops || a.Throughput != res.Throughput) {
			t.Errorf("enrolled row %+v is not the headline (%d ops, %.0f/s)", a, res.Ops, res.Throughput)
		}
		if a.Admission == bench.AdmitOpen && a.VsOpen != 1 {
			t.Errorf("open vs open: %v", a.VsOpen)
		}
	}
	if strings.Join(got, ",") != "open,enrolled,fleet" {
		t.Errorf("admissions measured: %v", got)
	}
}

// TestEnrolledServerNeedsFleet: a --server that admits enrolled devices only
// is refused without a fleet key it trusts (before any load), and loaded
// with one: the bench's devices then carry credentials of it.
func TestEnrolledServerNeedsFleet(t *testing.T) {
	fleet, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ch := chtest.Start(t, "", func(c *clusterhead.Config) { c.Cluster.FleetKeys = []*ecdsa.PublicKey{&fleet.PublicKey} })
	cfg := bench.DefaultConfig()
	cfg.Scenario, cfg.Duration, cfg.Count, cfg.Concurrency, cfg.Server = bench.ScenarioVerify, time.Second, 100, 2, "coap://"+ch.Addr()
	if _, err := bench.Run(t.Context(), cfg); !errors.Is(err, bench.ErrAdmission) {
		t.Fatalf("without a fleet key: %v, want ErrAdmission", err)
	}
	cfg.Fleet = fleet
	res, err := bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Admission != bench.AdmitFleet || res.Ops == 0 || len(res.Errors) != 0 {
		t.Fatalf("with a fleet key: admission %q, %d ops, errors %v", res.Admission, res.Ops, res.Errors)
	}
}

// TestRatios: the ratios scenario runs verify, session and join, each with
// its baseline measured in the same run, against one cluster head in this
// process named as the server's PID (so join gets a server CPU ratio), and
// reports them in one table. Bounded: 1 s phases, 2 devices.
func TestRatios(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open) // the bench's devices join a server it cannot enroll them on
	cfg := bench.DefaultConfig()
	cfg.Scenario, cfg.Duration, cfg.Concurrency = bench.ScenarioRatios, time.Second, 2
	cfg.Server, cfg.ServerPID = "coap://"+ch.Addr(), os.Getpid()
	res, err := bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Parts) != 3 {
		t.Fatalf("%d parts, want verify, session, join", len(res.Parts))
	}
	for i, want := range []string{bench.ScenarioVerify, bench.ScenarioSession, bench.ScenarioJoin} {
		p := res.Parts[i]
		if p.Scenario != want || p.Ops == 0 || p.Ratio <= 0 || p.BaselineThroughput <= 0 || p.P50 <= 0 || p.P99 < p.P50 {
			t.Errorf("part %d: %s, %d ops, ratio %.2f, baseline %.0f/s, p50 %.2f, p99 %.2f", i, p.Scenario, p.Ops, p.Ratio, p.BaselineThroughput, p.P50, p.P99)
		}
	}
	if j := res.Parts[2]; j.ServerCPURatio <= 0 || j.Crypto == nil {
		t.Errorf("join: server CPU ratio %v, crypto %+v", j.ServerCPURatio, j.Crypto)
	}
	var b strings.Builder
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"\nverify ", "\nsession ", "\njoin ", "crypto "} {
		if !strings.Contains(b.String(), row) {
			t.Errorf("table without %q:\n%s", row, b.String())
		}
	}
}
