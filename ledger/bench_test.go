package ledger_test

import (
	"sync/atomic"
	"testing"

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
