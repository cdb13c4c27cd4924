package ledger_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// grantRecords returns n encoded session records between m2 and m1.
func grantRecords(t testing.TB, n int, m2, m1 string) [][]byte {
	t.Helper()
	recs := make([][]byte, n)
	for i := range recs {
		ev := session(m2, m1)
		ev.SessionID = fmt.Appendf(nil, "sid-%04d", i)
		b, err := wire.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = b
	}
	return recs
}

func openGrants(t testing.TB, dir string) *ledger.GrantLog {
	t.Helper()
	g, err := ledger.OpenGrantLog(filepath.Join(dir, ledger.GrantLogFile), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// grantScene returns a ledger where m1 and m2 joined, and an empty grant log.
func grantScene(t testing.TB) (*ledger.Bolt, *ledger.GrantLog) {
	t.Helper()
	l := newEnv(t).open(t)
	mustAppend(t, l, join("m1", "k1"))
	mustAppend(t, l, join("m2", "k2"))
	return l, openGrants(t, t.TempDir())
}

// The state machine accepts a well-formed session batch and grants-pruned
// event, with no effect on the index, and refuses malformed ones and batch
// fields on other events.
func TestSessionBatchEvent(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	good := ledger.GrantBatch{Seq: 1, Count: 3, Root: [32]byte{1}, TimeMS: 1_700_000_000_005}.Event(testCluster)
	mustAppend(t, l, good)
	mustAppend(t, l, ledger.GrantsPrunedEvent(testCluster, 2, time.UnixMilli(1_700_000_000_006)))
	withRoot := func(ev ledger.Event, n int) ledger.Event { ev.Root = make([]byte, n); return ev }
	bad := map[string]ledger.Event{
		"no batch number": func() ledger.Event { ev := good; ev.Batch = 0; return ev }(),
		"no grants":       func() ledger.Event { ev := good; ev.Count = 0; return ev }(),
		"too many grants": func() ledger.Event { ev := good; ev.Count = ledger.MaxGrantBatch + 1; return ev }(),
		"short root":      withRoot(good, 31),
		"no root":         withRoot(good, 0),
		"a peer":          func() ledger.Event { ev := good; ev.Peer = "m1"; return ev }(),
		"a session ID":    func() ledger.Event { ev := good; ev.SessionID = []byte{1}; return ev }(),
		"key material":    func() ledger.Event { ev := good; ev.Key = []byte{1}; return ev }(),
		"a session with a root": func() ledger.Event {
			ev := session("m2", "m1")
			ev.Root = make([]byte, 32)
			return ev
		}(),
		"a warning with a count":        func() ledger.Event { ev := warning("m2", "m1"); ev.Count = 1; return ev }(),
		"a warning with a batch number": func() ledger.Event { ev := warning("m2", "m1"); ev.Batch = 2; return ev }(),
		"a prune of no batch":           ledger.GrantsPrunedEvent(testCluster, 1, time.UnixMilli(1_700_000_000_005)),
		"a prune with a count": func() ledger.Event {
			ev := ledger.GrantsPrunedEvent(testCluster, 2, time.UnixMilli(1_700_000_000_005))
			ev.Count = 1
			return ev
		}(),
		"a prune with a reason": func() ledger.Event {
			ev := ledger.GrantsPrunedEvent(testCluster, 2, time.UnixMilli(1_700_000_000_005))
			ev.Reason = "old"
			return ev
		}(),
	}
	for name, ev := range bad {
		if _, err := l.Append(t.Context(), ev); !errors.Is(err, ledger.ErrInvalidEvent) {
			t.Errorf("%s: %v, want ErrInvalidEvent", name, err)
		}
	}
	mustVerify(t, l)
}

// Every grant of batches of 1..33 grants has an inclusion path that checks
// against the batch's event, and against no other index, record or root.
func TestGrantInclusion(t *testing.T) {
	for n := 1; n <= 33; n++ {
		recs := grantRecords(t, n, "m2", "m1")
		root, err := ledger.GrantRoot(recs)
		if err != nil {
			t.Fatal(err)
		}
		ev := ledger.GrantBatch{Seq: 1, Count: uint64(n), Root: root}.Event(testCluster)
		for i := range recs {
			path, err := ledger.GrantInclusion(recs, uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			if err := ledger.VerifyGrantInclusion(ev, recs[i], uint64(i), path); err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
			if n > 1 {
				if err := ledger.VerifyGrantInclusion(ev, recs[i], uint64((i+1)%n), path); !errors.Is(err, ledger.ErrBadGrant) {
					t.Errorf("n=%d i=%d at another index: %v", n, i, err)
				}
				if err := ledger.VerifyGrantInclusion(ev, recs[(i+1)%n], uint64(i), path); !errors.Is(err, ledger.ErrBadGrant) {
					t.Errorf("n=%d i=%d another record: %v", n, i, err)
				}
			}
			other := ev
			other.Root = append([]byte{}, ev.Root...)
			other.Root[0] ^= 1
			if err := ledger.VerifyGrantInclusion(other, recs[i], uint64(i), path); !errors.Is(err, ledger.ErrBadGrant) {
				t.Errorf("n=%d i=%d another root: %v", n, i, err)
			}
		}
	}
}

// A batch written to the grant log but not committed (a crash between the
// two) is appended by RecoverGrants; one whose event was committed but not
// marked is marked, not appended twice. CheckGrants then accepts the pair.
func TestRecoverGrants(t *testing.T) {
	l, g := grantScene(t)
	now := time.UnixMilli(1_700_000_000_010)

	// Batch 1: committed and marked. Batch 2: committed, not marked.
	// Batch 3: written only.
	for seq := uint64(1); seq <= 3; seq++ {
		b, err := g.Write(grantRecords(t, int(seq)*5, "m2", "m1"), now)
		if err != nil || b.Seq != seq {
			t.Fatalf("Write: batch %d %v, want %d", b.Seq, err, seq)
		}
		if seq <= 2 {
			ref := mustAppend(t, l, b.Event(testCluster))
			if seq == 1 {
				if err := g.Committed(seq, ref.Height); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Batch 3 is pending: not an error, counted apart (the CH appends it at
	// its next start).
	if s, err := ledger.CheckGrants(t.Context(), l, g, testCluster); err != nil || s.Batches != 2 || s.Grants != 15 || s.PendingBatches != 1 || s.PendingGrants != 15 {
		t.Fatalf("CheckGrants before recovery: %+v %v, want batches 1 and 2 (15 grants) on the ledger, batch 3 (15) pending", s, err)
	}
	if err := ledger.RecoverGrants(t.Context(), l, g, testCluster); err != nil {
		t.Fatal(err)
	}
	if err := ledger.RecoverGrants(t.Context(), l, g, testCluster); err != nil { // idempotent
		t.Fatal(err)
	}
	batches := 0
	for _, b := range allBlocks(t, l) {
		for _, ev := range b.Events {
			if ev.Type == ledger.EventSessionBatch {
				batches++
			}
		}
	}
	if batches != 3 {
		t.Fatalf("%d session-batch events after recovery, want 3", batches)
	}
	err := g.Batches(func(b ledger.GrantBatch) error {
		if b.Height == 0 {
			return fmt.Errorf("batch %d not marked committed", b.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.CheckGrants(t.Context(), l, g, testCluster)
	if err != nil || s.Batches != 3 || s.Grants != 30 || s.PendingBatches != 0 {
		t.Fatalf("CheckGrants: %+v %v, want 3 batches of 30 grants, none pending", s, err)
	}
	mustVerify(t, l)
}

// TestCheckGrantsBatchAppendedTwice: on a shared ledger an append of a batch
// left uncertain and its retry may both commit. The same batch twice is that
// batch, once; the same number with other grants is still a bad grant.
// Before, ledger verify --data called an honest CH's grant log bad after any
// such outage ("holds batch 1 again").
func TestCheckGrantsBatchAppendedTwice(t *testing.T) {
	l, g := grantScene(t)
	now := time.UnixMilli(1_700_000_000_010)
	b, err := g.Write(grantRecords(t, 5, "m2", "m1"), now)
	if err != nil {
		t.Fatal(err)
	}
	first := mustAppend(t, l, b.Event(testCluster))
	retry := b.Event(testCluster)
	retry.Time += time.Minute.Milliseconds() // appended again later
	mustAppend(t, l, retry)
	if err := g.Committed(b.Seq, first.Height); err != nil {
		t.Fatal(err)
	}
	if s, err := ledger.CheckGrants(t.Context(), l, g, testCluster); err != nil || s.Batches != 1 || s.Grants != 5 {
		t.Fatalf("CheckGrants of a batch on the ledger twice: %+v %v, want 1 batch of 5 grants", s, err)
	}
	other := b.Event(testCluster)
	other.Root = bytes.Repeat([]byte{0xee}, 32)
	mustAppend(t, l, other)
	if _, err := ledger.CheckGrants(t.Context(), l, g, testCluster); !errors.Is(err, ledger.ErrBadGrant) {
		t.Fatalf("CheckGrants of batch 1 again with other grants: %v, want ErrBadGrant", err)
	}
}

// CheckGrants finds a grant record changed, removed or added in the grant
// log — of a batch on the ledger or of one still pending —, a batch missing
// from the ledger, and a grant naming a device that never joined.
func TestCheckGrantsTamper(t *testing.T) {
	cases := map[string]func(tx *bolt.Tx) error{
		"record changed": func(tx *bolt.Tx) error {
			ev := session("m2", "m1")
			ev.SessionID = []byte("forged")
			b, _ := wire.Marshal(ev)
			return tx.Bucket([]byte("grants")).Put(grantKey(1, 2), b)
		},
		"record removed": func(tx *bolt.Tx) error { return tx.Bucket([]byte("grants")).Delete(grantKey(1, 3)) },
		"record added": func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("grants")).Put(grantKey(1, 4), grantRecords(t, 1, "m2", "m1")[0])
		},
		"batch removed": func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("batches")).Delete(binary.BigEndian.AppendUint64(nil, 1))
		},
	}
	for name, tamper := range cases {
		for _, pending := range []bool{false, true} {
			if pending && name == "batch removed" {
				continue // a pending batch removed is one never written
			}
			label := name
			if pending {
				label = "pending, " + name
			}
			t.Run(label, func(t *testing.T) {
				e := newEnv(t)
				l := e.open(t)
				mustAppend(t, l, join("m1", "k1"))
				mustAppend(t, l, join("m2", "k2"))
				dir := t.TempDir()
				g := openGrants(t, dir)
				b, err := g.Write(grantRecords(t, 4, "m2", "m1"), time.UnixMilli(1_700_000_000_010))
				if err != nil {
					t.Fatal(err)
				}
				if !pending {
					mustAppend(t, l, b.Event(testCluster))
				}
				if _, err := ledger.CheckGrants(t.Context(), l, g, testCluster); err != nil {
					t.Fatalf("CheckGrants before tampering: %v", err)
				}
				g.Close()
				db, err := bolt.Open(filepath.Join(dir, ledger.GrantLogFile), 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Update(tamper); err != nil {
					t.Fatal(err)
				}
				db.Close()
				g = openGrants(t, dir)
				if _, err := ledger.CheckGrants(t.Context(), l, g, testCluster); !errors.Is(err, ledger.ErrBadGrant) {
					t.Fatalf("CheckGrants after %s: %v, want ErrBadGrant", label, err)
				}
			})
		}
	}

	// A grant's peer must have joined before its batch: not at all ("ghost"),
	// or only after the batch was committed (the index knows m1 by the time
	// of the check) is a bad grant.
	for name, joinsAfter := range map[string]bool{"grant to a device that never joined": false, "grant to a device that joined after its batch": true} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(t)
			mustAppend(t, l, join("m2", "k2"))
			peer := "ghost"
			if joinsAfter {
				peer = "m1"
			}
			g := openGrants(t, t.TempDir())
			b, err := g.Write(grantRecords(t, 2, "m2", peer), time.UnixMilli(1_700_000_000_010))
			if err != nil {
				t.Fatal(err)
			}
			mustAppend(t, l, b.Event(testCluster))
			if joinsAfter {
				mustAppend(t, l, join("m1", "k1"))
			}
			if _, err := ledger.CheckGrants(t.Context(), l, g, testCluster); !errors.Is(err, ledger.ErrBadGrant) || !errors.Is(err, ledger.ErrUnknownDevice) {
				t.Fatalf("CheckGrants: %v, want ErrBadGrant and ErrUnknownDevice", err)
			}
		})
	}
}

// recordOn records prunes on l, as a CH does (ledger.GrantsPrunedEvent).
func recordOn(l ledger.Ledger) ledger.PruneRecorder {
	return func(ctx context.Context, horizon uint64) (ledger.BlockRef, error) {
		return l.Append(ctx, ledger.GrantsPrunedEvent(testCluster, horizon, time.Now()))
	}
}

// grantKey is the grant log's key of record i of batch seq.
func grantKey(seq uint64, i uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, seq), i)
}

// Prune deletes the records of committed batches written before its time,
// never those of a batch not yet on the ledger; CheckGrants still checks the
// pruned batches' counts and roots, and an inclusion path kept before the
// prune still proves its record against the ledger's event.
func TestPruneGrants(t *testing.T) {
	l, g := grantScene(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	var first ledger.Event
	for i, at := range []time.Time{t0, t0.Add(time.Minute), t0.Add(time.Hour)} {
		b, err := g.Write(grantRecords(t, 4+i, "m2", "m1"), at)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			continue // batch 2: written, not committed (a crash)
		}
		ref := mustAppend(t, l, b.Event(testCluster))
		if err := g.Committed(b.Seq, ref.Height); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b.Event(testCluster)
		}
	}
	recs, err := g.Records(1)
	if err != nil {
		t.Fatal(err)
	}
	path, err := ledger.GrantInclusion(recs, 2)
	if err != nil {
		t.Fatal(err)
	}

	p, err := g.Prune(t.Context(), t0.Add(30*time.Minute), recordOn(l), nil)
	if err != nil || p.Batches != 1 || p.Records != 4 {
		t.Fatalf("Prune: %+v, %v; want batch 1's 4 records (batch 2 is not on the ledger)", p, err)
	}
	if got, err := g.Records(1); err != nil || len(got) != 0 {
		t.Fatalf("batch 1 after the prune: %d records, %v", len(got), err)
	}
	if got, err := g.Records(2); err != nil || len(got) != 5 {
		t.Fatalf("batch 2 (pending) after the prune: %d records, %v", len(got), err)
	}
	if err := ledger.RecoverGrants(t.Context(), l, g, testCluster); err != nil {
		t.Fatal(err)
	}
	s, err := ledger.CheckGrants(t.Context(), l, g, testCluster)
	if err != nil || s.Batches != 3 || s.Grants != 15 || s.Pruned != 4 {
		t.Fatalf("CheckGrants after the prune: %+v %v", s, err)
	}
	if err := ledger.VerifyGrantInclusion(first, recs[2], 2, path); err != nil {
		t.Fatalf("a proof kept before the prune: %v", err)
	}
	if p, err := g.Prune(t.Context(), t0.Add(2*time.Hour), recordOn(l), nil); err != nil || p.Batches != 2 || p.Records != 11 {
		t.Fatalf("second Prune: %+v, %v; want batches 2 and 3", p, err)
	}
}

// A prune is on the ledger before any record goes: a grants-pruned event
// whose horizon covers the batches it deletes, committed before it. A grant
// log whose pruned batches no such event covers — a CH that deleted records
// without saying so, or said so before the batch was committed — fails
// CheckGrants; a prune that cannot be recorded deletes nothing.
func TestPruneRecordedOnLedger(t *testing.T) {
	l, g := grantScene(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	commit := func(n int, at time.Time) ledger.GrantBatch {
		t.Helper()
		b, err := g.Write(grantRecords(t, n, "m2", "m1"), at)
		if err != nil {
			t.Fatal(err)
		}
		ref := mustAppend(t, l, b.Event(testCluster))
		if err := g.Committed(b.Seq, ref.Height); err != nil {
			t.Fatal(err)
		}
		return b
	}
	commit(3, t0)
	commit(4, t0.Add(time.Hour))

	p, err := g.Prune(t.Context(), t0.Add(30*time.Minute), recordOn(l), nil)
	if err != nil || p.Batches != 1 || p.Horizon != 2 {
		t.Fatalf("Prune: %+v, %v; want batch 1, horizon 2", p, err)
	}
	var got []ledger.Event
	if err := l.Blocks(p.Block, func(b ledger.Block) error { got = append(got, b.Events...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Type != ledger.EventGrantsPruned || got[0].Device != testCluster || got[0].Batch != 2 {
		t.Fatalf("block %d holds %+v, want the grants-pruned event of %s, horizon 2", p.Block, got, testCluster)
	}
	if s, err := ledger.CheckGrants(t.Context(), l, g, testCluster); err != nil || s.Pruned != 3 {
		t.Fatalf("CheckGrants after a recorded prune: %+v %v", s, err)
	}

	failing := func(context.Context, uint64) (ledger.BlockRef, error) {
		return ledger.BlockRef{}, errors.New("ledger down")
	}
	if p, err := g.Prune(t.Context(), t0.Add(2*time.Hour), failing, nil); err == nil || p.Batches != 0 {
		t.Fatalf("Prune with a ledger that cannot record it: %+v, %v; want an error and nothing pruned", p, err)
	}
	if recs, err := g.Records(2); err != nil || len(recs) != 4 {
		t.Fatalf("batch 2 after a prune that could not be recorded: %d records, %v", len(recs), err)
	}

	// An event appended before batch 3's block does not cover it, whatever
	// its horizon; a prune that claims a block past the head is on no ledger.
	mustAppend(t, l, ledger.GrantsPrunedEvent(testCluster, 100, time.Now()))
	commit(5, t0.Add(2*time.Hour))
	head, _, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	unrecorded := func(context.Context, uint64) (ledger.BlockRef, error) {
		return ledger.BlockRef{Height: head.Height + 10}, nil
	}
	if p, err := g.Prune(t.Context(), t0.Add(3*time.Hour), unrecorded, nil); err != nil || p.Batches != 2 {
		t.Fatalf("Prune: %+v, %v", p, err)
	}
	_, err = ledger.CheckGrants(t.Context(), l, g, testCluster)
	if !errors.Is(err, ledger.ErrBadGrant) || !strings.Contains(err.Error(), "batch 3 (5 grants") || !strings.Contains(err.Error(), "no grants-pruned event") {
		t.Fatalf("CheckGrants of a batch pruned unrecorded: %v; want ErrBadGrant naming batch 3", err)
	}
}

// A prune works in transactions of about PruneChunk records, whole batches
// each: the grant log takes writes between them, a prune stopped between
// them leaves a log that checks out, and the next prune finishes the job.
func TestPruneInChunks(t *testing.T) {
	l, g := grantScene(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	per := ledger.PruneChunk/3 + 1 // three batches fill a chunk
	for i := range 4 {
		b, err := g.Write(grantRecords(t, per, "m2", "m1"), t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ref := mustAppend(t, l, b.Event(testCluster))
		if err := g.Committed(b.Seq, ref.Height); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	var calls [][2]uint64
	p, err := g.Prune(ctx, t0.Add(time.Hour), recordOn(l), func(done, total uint64) {
		calls = append(calls, [2]uint64{done, total})
		if _, err := g.Write(grantRecords(t, 1, "m2", "m1"), t0.Add(2*time.Hour)); err != nil {
			t.Errorf("a write between two chunks: %v", err)
		}
		cancel() // the operator's ^C, or the control socket's client gone
	})
	if !errors.Is(err, context.Canceled) || p.Batches != 3 || p.Records != uint64(3*per) {
		t.Fatalf("Prune stopped after its first chunk: %+v, %v", p, err)
	}
	if fmt.Sprint(calls) != "[[3 4]]" {
		t.Fatalf("progress %v, want [[3 4]]: one chunk of three batches of four", calls)
	}
	if got, err := g.Records(4); err != nil || len(got) != per {
		t.Fatalf("batch 4 after the stopped prune: %d records, %v", len(got), err)
	}
	if s, err := ledger.CheckGrants(t.Context(), l, g, testCluster); err != nil || s.Pruned != uint64(3*per) {
		t.Fatalf("CheckGrants after the stopped prune: %+v %v", s, err)
	}
	calls = nil
	p, err = g.Prune(t.Context(), t0.Add(time.Hour), recordOn(l), func(done, total uint64) { calls = append(calls, [2]uint64{done, total}) })
	if err != nil || p.Batches != 1 || p.Records != uint64(per) || fmt.Sprint(calls) != "[[1 1]]" {
		t.Fatalf("the next Prune: %+v, %v, progress %v; want batch 4 alone", p, err, calls)
	}
	if got, err := g.Records(5); err != nil || len(got) != 1 {
		t.Fatalf("the batch written during the prune: %d records, %v", len(got), err)
	}
}

// A grant log copied after its ledger (a backup) may hold a batch marked
// with a block the ledger copy does not have: RecoverGrants appends it again.
func TestRecoverGrantsAfterRestore(t *testing.T) {
	l, g := grantScene(t)
	b, err := g.Write(grantRecords(t, 3, "m2", "m1"), time.UnixMilli(1_700_000_000_010))
	if err != nil {
		t.Fatal(err)
	}
	head, _, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Committed(b.Seq, head.Height+1); err != nil { // committed in a block the copy lacks
		t.Fatal(err)
	}
	if err := ledger.RecoverGrants(t.Context(), l, g, testCluster); err != nil {
		t.Fatal(err)
	}
	if s, err := ledger.CheckGrants(t.Context(), l, g, testCluster); err != nil || s.Batches != 1 || s.Grants != 3 {
		t.Fatalf("CheckGrants: %+v %v", s, err)
	}
}

// TestCheckGrantRecord: what a record of the grant log may be — a session
// between two known devices, or a warning to a known asker about anything
// it named — and what it may not.
func TestCheckGrantRecord(t *testing.T) {
	known := func(id string, _ int64) error {
		if id == "m1" || id == "m2" {
			return nil
		}
		return ledger.ErrUnknownDevice
	}
	enc := func(ev ledger.Event) []byte {
		b, err := wire.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withSID := func(ev ledger.Event) ledger.Event { ev.SessionID = []byte("sid"); return ev }
	leave := ledger.Event{Type: ledger.EventLeave, Device: "m1", Time: 1}
	tests := []struct {
		name string
		rec  []byte
		ok   bool
	}{
		{"session of known devices", enc(withSID(session("m2", "m1"))), true},
		{"warning to a known asker about an unknown ID", enc(warning("m2", "ghost")), true},
		{"warning to a known asker about a member", enc(warning("m2", "m1")), true},
		{"session with an unknown peer", enc(withSID(session("m2", "ghost"))), false},
		{"session of an unknown requester", enc(withSID(session("ghost", "m1"))), false},
		{"warning to an unknown asker", enc(warning("ghost", "m1")), false},
		{"a membership event", enc(leave), false},
		{"a session batch", enc(ledger.Event{Type: ledger.EventSessionBatch, Device: "m1", Time: 1, Batch: 1, Count: 1, Root: make([]byte, 32)}), false},
		{"not CBOR", []byte{0xff}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ledger.CheckGrantRecord(tt.rec, known); (err == nil) != tt.ok {
				t.Fatalf("CheckGrantRecord = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestGrantRuleMembershipAtTime: a record's devices must have been current
// members within GrantSlack of its time — joined, not yet left or revoked,
// not expired (a rejoin before the expiry extends it) — and a record may not
// be dated after its batch.
func TestGrantRuleMembershipAtTime(t *testing.T) {
	const t0 = 1_700_000_000_000 // the joins' time (join)
	slack := ledger.GrantSlack.Milliseconds()
	at := func(ev ledger.Event, ms int64) ledger.Event { ev.Time = ms; return ev }
	expiring := func(ev ledger.Event, ms int64) ledger.Event { ev.Expires = ms / 1000; return ev }
	tests := []struct {
		name string
		rec  ledger.Event
		want error // nil: valid
	}{
		{"grant between members", at(session("m2", "m1"), t0+10_000), nil},
		{"warning to a member", at(warning("m2", "ghost"), t0+10_000), nil},
		{"grant within the slack after the peer's revoke", at(session("m2", "gone"), t0+60_000+slack-1), nil},
		{"grant after the peer's revoke", at(session("m2", "gone"), t0+60_000+slack+1), ledger.ErrNotMember},
		{"warning to an asker that left", at(warning("gone", "m1"), t0+60_000+slack+1), ledger.ErrNotMember},
		{"grant before the peer joined", at(session("m2", "m1"), t0-slack-1), ledger.ErrNotMember},
		{"grant to an expired member", at(session("m2", "short"), t0+30_000+slack+1), ledger.ErrNotMember},
		{"grant to a member whose rejoin extended its expiry", at(session("m2", "renewed"), t0+100_000), nil},
		{"record dated after its batch", at(session("m2", "m1"), t0+200_000+slack+1), ledger.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(t)
			mustAppend(t, l, join("m1", "k1"))
			mustAppend(t, l, join("m2", "k2"))
			mustAppend(t, l, join("gone", "k3"))
			mustAppend(t, l, at(revoke("gone"), t0+60_000))
			mustAppend(t, l, expiring(join("short", "k4"), t0+30_000))
			mustAppend(t, l, expiring(join("renewed", "k5"), t0+30_000))
			mustAppend(t, l, signedNow(t, l, at(join("renewed", "k5"), t0+20_000)))
			rec, err := wire.Marshal(tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			g := openGrants(t, t.TempDir())
			b, err := g.Write([][]byte{rec}, time.UnixMilli(t0+200_000))
			if err != nil {
				t.Fatal(err)
			}
			mustAppend(t, l, b.Event(testCluster))
			_, err = ledger.CheckGrants(t.Context(), l, g, testCluster)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("CheckGrants: %v", err)
			case tt.want != nil && (!errors.Is(err, ledger.ErrBadGrant) || !errors.Is(err, tt.want)):
				t.Fatalf("CheckGrants: %v, want ErrBadGrant and %v", err, tt.want)
			}
		})
	}
}
