package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
)

// walked counts l's index records by status the slow way.
func walked(t *testing.T, l ledger.Ledger) ledger.Counts {
	t.Helper()
	var c ledger.Counts
	for _, d := range allDevices(t, l) {
		switch d.Status {
		case membership.Member:
			c.Member++
		case membership.Left:
			c.Left++
		case membership.Revoked:
			c.Revoked++
		}
	}
	return c
}

func checkCounts(t *testing.T, l *ledger.Bolt, want ledger.Counts) {
	t.Helper()
	got, err := l.Counts()
	if err != nil || got != want || walked(t, l) != want {
		t.Fatalf("Counts = %+v (%v), index walk %+v, want %+v", got, err, walked(t, l), want)
	}
}

// TestCountsFollowEvents: the O(1) counts equal a walk of the index after
// joins, leaves, revokes, rejoins, refused events in a shared block, bulk
// imports and a restart.
func TestCountsFollowEvents(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	checkCounts(t, l, ledger.Counts{})
	for i := range 5 {
		mustAppend(t, l, join(fmt.Sprintf("d%d", i), fmt.Sprintf("k%d", i)))
	}
	checkCounts(t, l, ledger.Counts{Member: 5})
	mustAppend(t, l, leave("d0"))
	mustAppend(t, l, revoke("d1"))
	mustAppend(t, l, revoke("d0")) // left, then revoked: moves from left to revoked
	checkCounts(t, l, ledger.Counts{Member: 3, Revoked: 2})
	mustAppend(t, l, leave("d2"))
	mustAppend(t, l, signedNow(t, l, join("d2", "k2"))) // a rejoin
	checkCounts(t, l, ledger.Counts{Member: 3, Revoked: 2})

	// Concurrent appends share blocks; the refused ones change nothing.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if i%4 == 0 {
				_, _ = l.Append(context.Background(), join("d1", "k1")) // revoked: refused
				return
			}
			_, _ = l.Append(context.Background(), join(fmt.Sprintf("c%d", i), "kc"))
		})
	}
	wg.Wait()
	checkCounts(t, l, ledger.Counts{Member: 33, Revoked: 2})

	var evs []ledger.Event
	for i := range 300 {
		evs = append(evs, join(fmt.Sprintf("imp%03d", i), "ki"))
	}
	evs = append(evs, leave("imp007"), revoke("d3"))
	if _, err := l.Import(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	want := ledger.Counts{Member: 331, Left: 1, Revoked: 3}
	checkCounts(t, l, want)
	mustVerify(t, l)

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, e.open(t), want)
}

// TestCountsOfOlderLedger: a ledger written before counts were stored (no
// meta key) is counted once at Open, verifies, and stores them at its next
// commit.
func TestCountsOfOlderLedger(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	for i := range 3 {
		mustAppend(t, l, join(fmt.Sprintf("d%d", i), "k"))
	}
	mustAppend(t, l, leave("d0"))
	l.Close()
	tamper(t, e.path, func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("counts")) })

	ro := e.openReadOnly(t)
	checkCounts(t, ro, ledger.Counts{Member: 2, Left: 1})
	mustVerify(t, ro)
	ro.Close()

	l = e.open(t)
	checkCounts(t, l, ledger.Counts{Member: 2, Left: 1})
	mustAppend(t, l, join("d3", "k"))
	l.Close()
	var stored bool
	tamper(t, e.path, func(tx *bolt.Tx) error { stored = tx.Bucket([]byte("meta")).Get([]byte("counts")) != nil; return nil })
	if !stored {
		t.Fatal("counts not stored by the first commit")
	}
	checkCounts(t, e.openReadOnly(t), ledger.Counts{Member: 3, Left: 1})
}

// TestVerifyTamperedCounts: stored counts that the chain does not produce
// fail Verify with ErrIndexMismatch.
func TestVerifyTamperedCounts(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, join("d0", "k"))
	l.Close()
	tamper(t, e.path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("counts"), []byte{0xa1, 0x01, 0x05}) // {1: 5}
	})
	err := e.openReadOnly(t).Verify(context.Background(), nil)
	if !errors.Is(err, ledger.ErrIndexMismatch) {
		t.Fatalf("Verify = %v, want ErrIndexMismatch", err)
	}
}
