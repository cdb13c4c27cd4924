package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotguard/iotguard/ledger"
)

// gatedLedger is a ledger whose Append waits for its gate and then answers
// err; it records what it was asked to append.
type gatedLedger struct {
	ledger.Ledger
	gate     chan struct{}
	err      error
	appended atomic.Int64
}

func (g *gatedLedger) Append(ctx context.Context, ev ledger.Event) (ledger.BlockRef, error) {
	<-g.gate
	if g.err != nil {
		return ledger.BlockRef{}, g.err
	}
	g.appended.Add(1)
	return ledger.BlockRef{Height: 1}, nil
}

func newRecordCore(t *testing.T, l ledger.Ledger, log *slog.Logger) *Core {
	t.Helper()
	c, err := New(Config{ID: "cluster-1", Radius: 1, Logger: log}, nil, l)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sessionEvent(i int) ledger.Event {
	return ledger.Event{Type: ledger.EventSession, Device: "m2", Peer: "m1", SessionID: bytes.Repeat([]byte{byte(i)}, 16), Time: 1, Expires: 2}
}

// TestRecordBackPressure: records do not wait for the ledger, but at most
// maxPendingRecords wait at once; the next one waits for a place (here until
// its context ends) instead of being dropped, and Flush returns only when
// every queued record is written.
func TestRecordBackPressure(t *testing.T) {
	l := &gatedLedger{gate: make(chan struct{})}
	c := newRecordCore(t, l, slog.Default())
	for i := range maxPendingRecords {
		if err := c.record(t.Context(), sessionEvent(i)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.record(ctx, sessionEvent(0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("record beyond the bound = %v, want it to wait until its deadline", err)
	}
	flushed := make(chan struct{})
	go func() { c.Flush(); close(flushed) }()
	select {
	case <-flushed:
		t.Fatal("Flush returned while records were still waiting for the ledger")
	case <-time.After(20 * time.Millisecond):
	}
	close(l.gate)
	<-flushed
	if got := l.appended.Load(); got != maxPendingRecords {
		t.Fatalf("%d records appended, want %d", got, maxPendingRecords)
	}
	if err := c.record(t.Context(), sessionEvent(1)); err != nil { // places are free again
		t.Fatal(err)
	}
	c.Flush()
}

// TestRecordFailureLogged: a record the ledger refuses (say, the member left
// while its session was granted) is logged with its type and devices.
func TestRecordFailureLogged(t *testing.T) {
	l := &gatedLedger{gate: make(chan struct{}), err: ledger.ErrNotMember}
	close(l.gate)
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	c := newRecordCore(t, l, log)
	if err := c.record(t.Context(), sessionEvent(7)); err != nil {
		t.Fatal(err)
	}
	c.Flush()
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"audit record not written", "type=session", "device=m2", "peer=m1", ledger.ErrNotMember.Error()} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
