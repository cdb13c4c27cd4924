package ledger_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// storedBytes returns the key and value bytes of every bucket of the bbolt
// file at path: what the data takes, without bbolt's free pages and page
// rounding (the file itself grows in steps of its mmap size).
func storedBytes(tb testing.TB, path string) map[string]int {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	out := map[string]int{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error { out[string(name)] += len(k) + len(v); return nil })
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// BenchmarkLedgerBytes reports what one event adds to the ledger file —
// blocks, Merkle tree and index, in bytes of keys and values — for each
// audited operation, with 64 concurrent events per block (group commit, as
// under load) or one per block (an idle CH). Device IDs are 13 bytes
// ("sensor-000042"). The session-batch rows also report the grant log's
// bytes per record. Run: go test -run NONE -bench LedgerBytes -benchtime 20x ./ledger
func BenchmarkLedgerBytes(b *testing.B) {
	id := func(i int) string { return fmt.Sprintf("sensor-%06d", i) }
	const group = 64
	kinds := []struct {
		name  string
		per   int // events per b.Loop iteration, appended concurrently
		event func(n int) ledger.Event
	}{
		{"join/1-per-block", 1, func(n int) ledger.Event { return join(id(n), id(n)) }},
		{"join/64-per-block", group, func(n int) ledger.Event { return join(id(n), id(n)) }},
		{"verify-warning/64-per-block", group, func(n int) ledger.Event { return warning(id(0), id(n)) }},
		{"session-event/64-per-block", group, func(n int) ledger.Event {
			ev := session(id(0), id(1))
			ev.SessionID = fmt.Appendf(nil, "%016d", n)
			return ev
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			e := newEnv(b)
			l := e.open(b)
			mustAppend(b, l, join(id(0), id(0)))
			mustAppend(b, l, join(id(1), id(1)))
			before := storedBytes(b, snapshot(b, l))
			n, events := 2, 0
			for b.Loop() {
				var wg sync.WaitGroup
				for range k.per {
					n++
					ev := k.event(n)
					wg.Go(func() { mustAppend(b, l, ev) })
				}
				wg.Wait() // the k.per appends group into one block (or a few)
				events += k.per
			}
			b.StopTimer()
			after := storedBytes(b, snapshot(b, l))
			reportPerEvent(b, before, after, events)
		})
	}
	// Audit records as batches: one session-batch event per batch of
	// records (session grants, or warnings), the records in the grant log.
	grant := func(n int) ledger.Event {
		ev := session(id(0), id(1))
		ev.SessionID = fmt.Appendf(nil, "%016d", n)
		return ev
	}
	batches := []struct {
		name   string
		per    int
		record func(n int) ledger.Event
	}{
		{"session-batch/1-grants-per-batch", 1, grant},
		{"session-batch/64-grants-per-batch", 64, grant},
		{"session-batch/4096-grants-per-batch", 4096, grant},
		{"session-batch/4096-warnings-per-batch", 4096, func(n int) ledger.Event { return warning(id(0), id(n)) }},
	}
	for _, k := range batches {
		per := k.per
		b.Run(k.name, func(b *testing.B) {
			e := newEnv(b)
			l := e.open(b)
			mustAppend(b, l, join(id(0), id(0)))
			mustAppend(b, l, join(id(1), id(1)))
			gpath := filepath.Join(b.TempDir(), ledger.GrantLogFile)
			g, err := ledger.OpenGrantLog(gpath, false)
			if err != nil {
				b.Fatal(err)
			}
			before := storedBytes(b, snapshot(b, l))
			recs := make([][]byte, per)
			grants := 0
			for b.Loop() {
				for i := range recs {
					if recs[i], err = wire.Marshal(k.record(grants + i)); err != nil {
						b.Fatal(err)
					}
				}
				batch, err := g.Write(recs, time.UnixMilli(1_700_000_000_000))
				if err != nil {
					b.Fatal(err)
				}
				ref := mustAppend(b, l, batch.Event(testCluster))
				if err := g.Committed(batch.Seq, ref.Height); err != nil {
					b.Fatal(err)
				}
				grants += per
			}
			b.StopTimer()
			g.Close()
			after := storedBytes(b, snapshot(b, l))
			reportPerEvent(b, before, after, grants)
			gb := 0
			for _, v := range storedBytes(b, gpath) {
				gb += v
			}
			b.ReportMetric(float64(gb)/float64(grants), "grantlog-B/record")
		})
	}
}

// snapshot copies l's file to a temporary path (the open ledger holds the
// lock) and returns the copy's path.
func snapshot(tb testing.TB, l *ledger.Bolt) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "copy.db")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := l.Backup(f, func(int64, ledger.BlockRef) error { return nil }); err != nil {
		tb.Fatal(err)
	}
	return path
}

func reportPerEvent(b *testing.B, before, after map[string]int, events int) {
	total := 0
	for name, v := range after {
		d := v - before[name]
		total += d
		b.ReportMetric(float64(d)/float64(events), name+"-B/op")
	}
	b.ReportMetric(float64(total)/float64(events), "ledger-B/op")
}
