package ledger_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/iotguard/iotguard/ledger"
)

func id(i int) string { return fmt.Sprintf("dev-%04d", i) }

// queueBehindGate starts one Append that stops inside the signer, then starts
// the others, so that they queue while the first block is being committed. It
// returns a function that opens the gate and waits for every Append.
func queueBehindGate(t *testing.T, l ledger.Ledger, g *gateSigner, evs []ledger.Event) func() ([]ledger.BlockRef, []error) {
	t.Helper()
	refs := make([]ledger.BlockRef, len(evs))
	errs := make([]error, len(evs))
	var wg sync.WaitGroup
	g.armed.Store(true)
	wg.Go(func() { refs[0], errs[0] = l.Append(t.Context(), evs[0]) })
	<-g.entered
	for i := 1; i < len(evs); i++ {
		wg.Go(func() { refs[i], errs[i] = l.Append(t.Context(), evs[i]) })
	}
	return func() ([]ledger.BlockRef, []error) {
		close(g.release)
		wg.Wait()
		return refs, errs
	}
}

func TestGroupCommit(t *testing.T) {
	const n = 200
	e := newEnv(t)
	gate := newGate(e.key)
	l := e.open(t, func(o *ledger.Options) { o.Signer = gate })

	evs := make([]ledger.Event, n)
	for i := range evs {
		evs[i] = join(id(i), id(i))
	}
	refs, errs := queueBehindGate(t, l, gate, evs)()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Append %s: %v", id(i), err)
		}
	}

	blocks := allBlocks(t, l)
	if len(blocks)-1 >= n {
		t.Errorf("%d events in %d blocks: no batching", n, len(blocks)-1)
	}
	seen := map[string]ledger.BlockRef{}
	for h, b := range blocks {
		if b.Header.Height != uint64(h) {
			t.Fatalf("block %d at position %d", b.Header.Height, h)
		}
		if len(b.Events) > ledger.MaxBatchLimit {
			t.Errorf("block %d holds %d events", h, len(b.Events))
		}
		hash, _ := b.Header.Hash()
		for _, ev := range b.Events {
			seen[ev.Device] = ledger.BlockRef{Height: uint64(h), Hash: hash}
		}
	}
	for i := range evs {
		if seen[id(i)] != refs[i] {
			t.Errorf("%s acknowledged in block %d, found in block %d", id(i), refs[i].Height, seen[id(i)].Height)
		}
	}
	if devs := allDevices(t, l); len(devs) != n {
		t.Errorf("index holds %d devices, want %d", len(devs), n)
	}
	t.Logf("%d events in %d blocks", n, len(blocks)-1)
	mustVerify(t, l)
}

func TestGroupCommitMaxBatch(t *testing.T) {
	const n, maxBatch = 50, 4
	e := newEnv(t)
	gate := newGate(e.key)
	l := e.open(t, func(o *ledger.Options) { o.Signer = gate; o.MaxBatch = maxBatch })
	evs := make([]ledger.Event, n)
	for i := range evs {
		evs[i] = join(id(i), "k")
	}
	_, errs := queueBehindGate(t, l, gate, evs)()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, b := range allBlocks(t, l) {
		if len(b.Events) > maxBatch {
			t.Errorf("block %d holds %d events, MaxBatch %d", b.Header.Height, len(b.Events), maxBatch)
		}
		total += len(b.Events)
	}
	if total != n {
		t.Errorf("%d events stored, want %d", total, n)
	}
	mustVerify(t, l)
}

// TestGroupCommitGathersRunnable: Appends whose goroutines are runnable when
// the committer takes the first one share its block. On one processor the
// committer, readied by the first Append, runs before the others have
// started: without its yield (gather) it committed that one alone, and each
// of the others in a block of its own.
func TestGroupCommitGathersRunnable(t *testing.T) {
	const n = 8
	e := newEnv(t)
	l := e.open(t)
	evs := make([]ledger.Event, n)
	for i := range evs {
		evs[i] = join(id(i), id(i))
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range evs {
		wg.Go(func() { _, errs[i] = l.Append(t.Context(), evs[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if blocks := len(allBlocks(t, l)) - 1; blocks > 2 {
		t.Errorf("%d runnable Appends in %d blocks, want 1 or 2", n, blocks)
	}
}

// Validation inside a batch sees the effect of the earlier events of the same
// batch: of many joins of one ID with different keys exactly one wins, and a
// join followed by a leave and a revoke of the same device all apply.
func TestBatchSeesItsOwnEvents(t *testing.T) {
	t.Run("conflicting joins", func(t *testing.T) {
		const n = 20
		e := newEnv(t)
		gate := newGate(e.key)
		l := e.open(t, func(o *ledger.Options) { o.Signer = gate })
		evs := []ledger.Event{join("other", "k")} // holds the gate
		for i := range n {
			evs = append(evs, join("contested", id(i)))
		}
		_, errs := queueBehindGate(t, l, gate, evs)()
		winner := -1
		for i, err := range errs[1:] {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("both %d and %d won", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, ledger.ErrConflict):
				t.Errorf("join %d: %v, want ErrConflict", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no join won")
		}
		d, err := l.Lookup("contested")
		if err != nil || !bytes.Equal(d.Key, evs[winner+1].Key) {
			t.Errorf("Lookup = %+v, %v; want the winner's key", d, err)
		}
		mustVerify(t, l)
	})
	t.Run("unsynchronised conflicting joins", func(t *testing.T) {
		const n = 20
		e := newEnv(t)
		l := e.open(t)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = l.Append(t.Context(), join("contested", id(i))) })
		}
		wg.Wait()
		wins := 0
		for i, err := range errs {
			if err == nil {
				wins++
			} else if !errors.Is(err, ledger.ErrConflict) {
				t.Errorf("join %d: %v", i, err)
			}
		}
		if wins != 1 {
			t.Errorf("%d joins won, want 1", wins)
		}
		mustVerify(t, l)
	})
}
