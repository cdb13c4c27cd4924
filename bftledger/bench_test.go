package bftledger_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"

	"github.com/iotguard/iotguard/bftledger"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// BenchmarkJoinCommit measures Append of join events — the durable,
// committed write a /join waits for — on the bbolt ledger and on CometBFT
// networks of 1 and 4 validators on 127.0.0.1 in this process (the CH's
// node is validator 0). seq appends one at a time (commit latency);
// c64 runs 64 appenders (throughput, group commit / full blocks). Reported:
// p50-ms and p99-ms of Append, and events/s.
//
//	cd bftledger && go test -run NONE -bench 'JoinCommit/.*/seq' -benchtime 200x .
//	cd bftledger && go test -run NONE -bench 'JoinCommit/.*/c64' -benchtime 3000x .
func BenchmarkJoinCommit(b *testing.B) {
	type backend struct {
		name string
		open func(b *testing.B) ledger.Ledger
	}
	backends := []backend{
		{"bolt", openBolt},
		{"cometbft-1", func(b *testing.B) ledger.Ledger { return openNet(b, 1, nil) }},
		{"cometbft-4", func(b *testing.B) ledger.Ledger { return openNet(b, 4, nil) }},
		{"cometbft-4-commit20ms", func(b *testing.B) ledger.Ledger {
			return openNet(b, 4, func(_ int, c *cfg.Config) { c.Consensus.TimeoutCommit = 20 * time.Millisecond })
		}},
		// Four validators share this machine's one disk; on tmpfs their
		// fsyncs cost nothing, which separates consensus from disk contention.
		{"cometbft-4-tmpfs", func(b *testing.B) ledger.Ledger {
			if _, err := os.Stat("/dev/shm"); err != nil {
				b.Skip("no /dev/shm")
			}
			dir, err := os.MkdirTemp("/dev/shm", "iotguard-bench-")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
			return openNetIn(b, dir, 4, nil)
		}},
	}
	for _, be := range backends {
		for _, conc := range []int{1, 64} {
			name := "seq"
			if conc > 1 {
				name = fmt.Sprintf("c%d", conc)
			}
			b.Run(be.name+"/"+name, func(b *testing.B) {
				l := be.open(b)
				benchAppend(b, l, conc)
			})
		}
	}
}

func benchAppend(b *testing.B, l ledger.Ledger, conc int) {
	// Warm up: the network elects its first proposer, connections settle.
	for i := range 3 {
		if _, err := l.Append(context.Background(), benchJoin(fmt.Sprintf("warm-%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	b.ResetTimer()
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if _, err := l.Append(context.Background(), benchJoin(fmt.Sprintf("dev-%d", i))); err != nil {
					errs <- err
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op") // per-op time is meaningless with concurrency; see p50/p99
}

// benchJoin is a join event of realistic size for the cluster "bench": a
// COSE_Key, two nonces and, as its evidence, the device's signed join
// request (about 300 bytes), which every validator verifies.
func benchJoin(id string) ledger.Event {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	key, err := wire.EncodePublicKey(&priv.PublicKey)
	if err != nil {
		panic(err)
	}
	nonce, chNonce := make([]byte, 16), make([]byte, 16)
	for _, b := range [][]byte{nonce, chNonce} {
		rand.Read(b)
	}
	now := time.Now()
	echo := echoes.Echo("192.0.2.1:5683", now, 0) // an echo made at genesis: fresh for a device's first join
	const lat, lon = 48_860_000, 2_350_000
	payload, err := wire.Marshal(&wire.JoinRequest{Cluster: "bench", ID: id, Key: key, Lat: lat, Lon: lon, Nonce: nonce, Echo: echo})
	if err != nil {
		panic(err)
	}
	req, err := wire.Sign1(priv, []byte(id), wire.AADJoinRequest, payload)
	if err != nil {
		panic(err)
	}
	return ledger.Event{Type: ledger.EventJoin, Device: id, Time: now.UnixMilli(), Key: key, DeviceNonce: nonce, CHNonce: chNonce,
		Lat: lat, Lon: lon, Expires: now.Add(24 * time.Hour).Unix(), Request: req}
}

func openBolt(b *testing.B) ledger.Ledger {
	dir := b.TempDir()
	keys, err := keysvc.Open(dir, "bench")
	if err != nil {
		b.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{Cluster: "bench", Signer: keys, Verifier: keys})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// openNet starts n validators with the default IoT-Guard configuration
// (adjusted by tune) and returns the ledger of a CH on validator 0.
func openNet(b *testing.B, n int, tune func(int, *cfg.Config)) ledger.Ledger {
	return openNetIn(b, b.TempDir(), n, tune)
}

func openNetIn(b *testing.B, dir string, n int, tune func(int, *cfg.Config)) ledger.Ledger {
	return openValidators(b, dir, n, tune)[0]
}

// openValidators starts n validators in dir and returns their ledgers, the
// first with a CH. Each is closed when the benchmark ends (a second Close of
// one the benchmark stopped is harmless).
func openValidators(b *testing.B, dir string, n int, tune func(int, *cfg.Config)) []*bftledger.Ledger {
	keys, err := keysvc.Open(filepath.Join(dir, "ch"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	homes, err := bftledger.GenerateNet(dir, bftledger.NetSpec{
		ChainID: "iotguard-bench", Validators: n, P2PPorts: freePorts(b, n), RPCPorts: make([]int, n),
		Clusters: []bftledger.ClusterEntry{{ID: "bench", Key: keys.COSEKey()}}, Tune: tune,
	})
	if err != nil {
		b.Fatal(err)
	}
	var ledgers []*bftledger.Ledger
	for i, home := range homes {
		opts := bftledger.Options{Home: home}
		if i == 0 {
			opts.Cluster, opts.Signer = "bench", keys
		}
		l, err := bftledger.Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		ledgers = append(ledgers, l)
	}
	return ledgers
}

// BenchmarkJoinLatency measures the latency of a join's commit (Append, what
// a /join waits for) on four validators with the IoT-Guard default
// configuration, with all four up and with one of them stopped (down=k:
// validator k, never the CH's validator 0; which one matters, since a
// stopped validator costs the heights whose proposer it would be). seq
// appends back to back; gap waits 3 s after each commit, as joins that are
// rare (a quiet deployment) meet a network that went idle. Reported: p50-ms,
// p99-ms and the largest, max-ms.
//
//	cd bftledger && go test -run NONE -bench 'JoinLatency' -benchtime 40x .
func BenchmarkJoinLatency(b *testing.B) {
	for _, down := range []int{-1, 1, 2, 3} {
		for _, gap := range []time.Duration{0, 3 * time.Second} {
			name := "4of4"
			if down >= 0 {
				name = fmt.Sprintf("3of4-down=%d", down)
			}
			name += map[bool]string{true: "/gap", false: "/seq"}[gap > 0]
			b.Run(name, func(b *testing.B) {
				ls := openValidators(b, b.TempDir(), 4, nil)
				l := ls[0]
				for i := range 3 { // the network elects its first proposer
					if _, err := l.Append(context.Background(), benchJoin(fmt.Sprintf("warm-%d", i))); err != nil {
						b.Fatal(err)
					}
				}
				if down >= 0 {
					if err := ls[down].Close(); err != nil {
						b.Fatal(err)
					}
				}
				lat := make([]time.Duration, b.N)
				b.ResetTimer()
				for i := range b.N {
					if gap > 0 {
						b.StopTimer()
						time.Sleep(gap)
						b.StartTimer()
					}
					t0 := time.Now()
					if _, err := l.Append(context.Background(), benchJoin(fmt.Sprintf("dev-%d", i))); err != nil {
						b.Fatal(err)
					}
					lat[i] = time.Since(t0)
				}
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
