package bftledger_test

import (
	"context"
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

// benchJoin is a join event of realistic size: a COSE_Key, two nonces and a
// signed request of about 300 bytes.
func benchJoin(id string) ledger.Event {
	key, nonce, chNonce, req := make([]byte, 77), make([]byte, 16), make([]byte, 16), make([]byte, 300)
	for _, b := range [][]byte{key, nonce, chNonce, req} {
		rand.Read(b)
	}
	now := time.Now()
	return ledger.Event{Type: ledger.EventJoin, Device: id, Time: now.UnixMilli(), Key: key, DeviceNonce: nonce, CHNonce: chNonce,
		Lat: 48_860_000, Lon: 2_350_000, Expires: now.Add(24 * time.Hour).Unix(), Request: req}
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
	var first ledger.Ledger
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
		if i == 0 {
			first = l
		}
	}
	return first
}
