package ledger_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/iotguard/iotguard/membership"
)

// TestLookupSeesEveryCommit: Lookup answers from a cache of decoded records;
// once an Append returns, every Lookup — including those racing with the
// commit — sees the committed record, never the one before it. Readers run
// all along; after each acknowledged event the test checks the record twice
// (a cache hit after the first read).
func TestLookupSeesEveryCommit(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range 8 {
					_, _ = l.Lookup(fmt.Sprintf("d%d", i))
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	for round := range 20 {
		for i := range 8 {
			id := fmt.Sprintf("d%d", i)
			mustAppend(t, l, signedNow(t, l, join(id, fmt.Sprintf("k%d", i))))
			for range 2 {
				if d, err := l.Lookup(id); err != nil || d.Status != membership.Member {
					t.Fatalf("round %d: %s after join: %+v %v", round, id, d.Status, err)
				}
			}
			ev := leave(id)
			if round == 19 && i%2 == 1 { // a revoked ID cannot rejoin: last round only
				ev = revoke(id)
			}
			ref := mustAppend(t, l, ev)
			for range 2 {
				d, err := l.Lookup(id)
				if err != nil || d.Status == membership.Member || d.Updated != ref {
					t.Fatalf("round %d: %s after %s: status %v updated %d, want block %d (%v)", round, id, ev.Type, d.Status, d.Updated.Height, ref.Height, err)
				}
			}
		}
	}
}
