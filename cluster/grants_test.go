package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// gatedGrants is a grant log whose Write waits for its gate; it counts the
// records written.
type gatedGrants struct {
	gate    chan struct{}
	written chan int // the size of each batch written
}

func (g *gatedGrants) Write(records [][]byte, now time.Time) (ledger.GrantBatch, error) {
	<-g.gate
	g.written <- len(records)
	root, err := ledger.GrantRoot(records)
	return ledger.GrantBatch{Seq: 1, Count: uint64(len(records)), Root: root}, err
}

func (g *gatedGrants) Committed(seq, height uint64) error { return nil }

// batchLedger takes any session-batch event.
type batchLedger struct{ ledger.Ledger }

func (batchLedger) Append(context.Context, ledger.Event) (ledger.BlockRef, error) {
	return ledger.BlockRef{Height: 1}, nil
}

func sessionEvent(i int) ledger.Event {
	return ledger.Event{Type: ledger.EventSession, Device: "m2", Peer: "m1", SessionID: bytes.Repeat([]byte{byte(i)}, 16), Time: 1, Expires: 2}
}

// TestAuditBackPressure: audit records do not wait for the grant log, but
// at most maxSealedBatches full batches wait (with one being written); the
// record that fills the next one waits for a place instead of being
// dropped, and Flush returns only when every record is written. After
// Close, a record is refused.
func TestAuditBackPressure(t *testing.T) {
	g := &gatedGrants{gate: make(chan struct{}), written: make(chan int, 2*maxSealedBatches)}
	c, err := New(Config{ID: "cluster-1", Radius: 1, Grants: g, GrantBatch: 1, GrantPeriod: time.Hour}, nil, batchLedger{})
	if err != nil {
		t.Fatal(err)
	}
	const free = maxSealedBatches + 1 // the queue, and the batch the writer holds
	for i := range free {
		if err := c.grants.add(sessionEvent(i)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	blocked := make(chan error)
	go func() { blocked <- c.grants.add(sessionEvent(free)) }()
	select {
	case err := <-blocked:
		t.Fatalf("a record beyond the bound returned (%v) while the grant log was stuck", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(g.gate)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	c.Flush()
	if n := len(g.written); n != free+1 {
		t.Fatalf("%d batches written, want %d", n, free+1)
	}
	c.Close()
	if err := c.grants.add(sessionEvent(0)); !errors.Is(err, errGrantsClosed) {
		t.Fatalf("record after Close: %v, want %v", err, errGrantsClosed)
	}
}

// failingGrants is a grant log that refuses every write while fail is set;
// it keeps the records of the batches it took.
type failingGrants struct {
	fail    bool // set and read only between Flushes
	written [][]byte
}

func (g *failingGrants) Write(records [][]byte, now time.Time) (ledger.GrantBatch, error) {
	if g.fail {
		return ledger.GrantBatch{}, errors.New("disk full")
	}
	g.written = append(g.written, records...)
	root, err := ledger.GrantRoot(records)
	return ledger.GrantBatch{Seq: uint64(len(g.written)), Count: uint64(len(records)), Root: root}, err
}

func (g *failingGrants) Committed(seq, height uint64) error { return nil }

// TestGrantLogFailureKeepsRecords: when the grant log refuses a batch, its
// records (already answered) are kept and written once the log takes writes
// again, and meanwhile new records are refused (5.03 busy) instead of being
// answered and lost: never a dropped record.
func TestGrantLogFailureKeepsRecords(t *testing.T) {
	g := &failingGrants{fail: true}
	var logged bytes.Buffer
	c, err := New(Config{ID: "cluster-1", Radius: 1, Grants: g, GrantPeriod: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logged, nil))}, nil, batchLedger{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.grants.add(sessionEvent(1)); err != nil {
		t.Fatal(err)
	}
	c.Flush() // the grant log refuses the batch
	var r *Refusal
	if err := c.grants.add(sessionEvent(2)); !errors.As(err, &r) || r.Reason != ErrBusy {
		t.Fatalf("record while the grant log refuses writes: %v, want a busy refusal", err)
	}
	c.Flush() // refused again: still one error line, not one per try
	if n := strings.Count(logged.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d error lines while the grant log refused writes, want 1:\n%s", n, logged.String())
	}
	g.fail = false
	c.Flush()
	if err := c.grants.add(sessionEvent(3)); err != nil {
		t.Fatalf("record once the grant log takes writes: %v", err)
	}
	c.Flush()
	if len(g.written) != 2 || !bytes.Equal(g.written[0], encode(t, sessionEvent(1))) || !bytes.Equal(g.written[1], encode(t, sessionEvent(3))) {
		t.Fatalf("written %d records, want records 1 and 3", len(g.written))
	}
}

func encode(t *testing.T, ev ledger.Event) []byte {
	t.Helper()
	b, err := wire.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
