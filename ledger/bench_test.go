package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotguard/iotguard/ledger"
)

// BenchmarkAppend measures one Append at a time: one block, one signature and
// one fsync per event.
func BenchmarkAppend(b *testing.B) {
	e := newEnv(b)
	l := e.open(b)
	i := 0
	for b.Loop() {
		mustAppend(b, l, join(id(i), "k"))
		i++
	}
	reportBlocks(b, l, i)
}

// BenchmarkAppendParallel measures Appends from many goroutines, which group
// commit packs into shared blocks. Run with -cpu to vary the concurrency.
func BenchmarkAppendParallel(b *testing.B) {
	e := newEnv(b)
	l := e.open(b)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			if _, err := l.Append(b.Context(), join(id(i), "k")); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportBlocks(b, l, int(n.Load()))
}

// reportBlocks reports the average number of events per block.
func reportBlocks(b *testing.B, l ledger.Ledger, events int) {
	head, _, err := l.Head()
	if err != nil {
		b.Fatal(err)
	}
	if head.Height > 0 {
		b.ReportMetric(float64(events)/float64(head.Height), "events/block")
	}
}

// BenchmarkLookup measures one index lookup of a random device among
// members imported beforehand: bbolt's B+tree makes it O(log n).
func BenchmarkLookup(b *testing.B) {
	for _, members := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			e := newEnv(b)
			l := e.open(b)
			for start := 0; start < members; start += 16384 {
				evs := make([]ledger.Event, 0, 16384)
				for i := start; i < min(start+16384, members); i++ {
					evs = append(evs, join(id(i), "k"))
				}
				if _, err := l.Import(b.Context(), evs); err != nil {
					b.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				l.DropCache() // time the B+tree, not the cache of decoded records
				if _, err := l.Lookup(id(r.IntN(members))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkImport measures the bulk path: 256 join events per Import, in
// blocks of 64.
func BenchmarkImport(b *testing.B) {
	e := newEnv(b)
	l := e.open(b)
	n := 0
	for b.Loop() {
		evs := make([]ledger.Event, 256)
		for i := range evs {
			evs[i] = join(id(n), "k")
			n++
		}
		if _, err := l.Import(b.Context(), evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPruneChunk measures one prune transaction: the records of one
// committed batch of PruneChunk grants deleted and the batch marked, with
// its fsync. That is the longest a serving CH's own grant-log write waits
// behind a prune; records/s is the prune's rate.
func BenchmarkPruneChunk(b *testing.B) {
	l, g := grantScene(b)
	recs := grantRecords(b, ledger.PruneChunk, "m2", "m1")
	at := time.UnixMilli(1_700_000_000_000)
	var pruned uint64
	for b.Loop() {
		b.StopTimer()
		batch, err := g.Write(recs, at)
		if err != nil {
			b.Fatal(err)
		}
		ref := mustAppend(b, l, batch.Event(testCluster))
		if err := g.Committed(batch.Seq, ref.Height); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		record := func(ctx context.Context, horizon uint64) (ledger.BlockRef, error) {
			b.StopTimer() // the ledger's append is not the grant log's transaction
			defer b.StartTimer()
			return recordOn(l)(ctx, horizon)
		}
		p, err := g.Prune(b.Context(), at.Add(time.Second), record, nil)
		if err != nil || p.Records != ledger.PruneChunk {
			b.Fatalf("Prune: %+v, %v", p, err)
		}
		pruned += p.Records
	}
	b.ReportMetric(float64(pruned)/b.Elapsed().Seconds(), "records/s")
}
