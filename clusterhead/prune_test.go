package clusterhead_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/ledger"
)

// TestPruneGrantsWhileServing: through the control socket of a running CH,
// an operator prunes the records of committed grant batches. The ledger
// gains one grants-pruned event per prune that covers new batches, and
// nothing else; members keep getting sessions, the grant log checks out
// after a restart with the pruned records counted, and a prune that cannot
// be done says why: a bad age is refused, and the stopped-CH path meets the
// running server's lock.
func TestPruneGrantsWhileServing(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir, withAdmin)
	ctx := chtest.Ctx(t)
	a := joinMember(t, ch, "sensor-a")
	joinMember(t, ch, "sensor-b")
	for range 6 {
		if _, _, err := a.dev.Session(ctx, "sensor-b"); err != nil {
			t.Fatal(err)
		}
	}
	before := chtest.Snap(t, ch) // commits the batch of six
	// A batch is older than the cut only from the next millisecond on (batch
	// times are in milliseconds): a prune in the same one would find none.
	time.Sleep(2 * time.Millisecond)

	var last [2]uint64
	p, err := admin.PruneGrants(ctx, dir, time.Nanosecond, func(done, total uint64) { last = [2]uint64{done, total} })
	if err != nil || p.Records != 6 || p.Batches != 1 || last != [2]uint64{1, 1} {
		t.Fatalf("prune through the socket: %+v, %v, last progress %v; want the batch of six", p, err, last)
	}
	pruned := func(before chtest.Snapshot, horizon uint64) {
		t.Helper()
		after := chtest.Snap(t, ch)
		var evs []ledger.Event
		err := ch.Ledger.Blocks(before.Head.Height+1, func(b ledger.Block) error { evs = append(evs, b.Events...); return nil })
		if err != nil || len(evs) != 1 || evs[0].Type != ledger.EventGrantsPruned || evs[0].Batch != horizon || evs[0].Device != ch.Core.Config().ID {
			t.Fatalf("the ledger after a prune: %+v, %v; want one grants-pruned event of horizon %d", evs, err, horizon)
		}
		before.Head = after.Head
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("a prune changed devices or enrollments: %+v → %+v", before, after)
		}
	}
	pruned(before, 2)
	if _, _, err := a.dev.Session(ctx, "sensor-b"); err != nil {
		t.Fatalf("a session after the prune: %v", err)
	}
	before = chtest.Snap(t, ch)
	time.Sleep(2 * time.Millisecond)
	if p, err := admin.PruneGrants(ctx, dir, time.Nanosecond, nil); err != nil || p.Records != 1 {
		t.Fatalf("a second prune: %+v, %v; want the one grant since", p, err)
	}
	pruned(before, 3)
	before = chtest.Snap(t, ch)
	if p, err := admin.PruneGrants(ctx, dir, time.Nanosecond, nil); err != nil || p.Records != 0 {
		t.Fatalf("a prune with nothing to prune: %+v, %v", p, err)
	}
	chtest.Unchanged(t, ch, before)

	if _, err := admin.PruneGrants(ctx, dir, 0, nil); err == nil || err.Error() != `older-than "0s": want a positive duration` {
		t.Errorf("a prune of age 0: %v", err)
	}
	if _, err := clusterhead.PruneGrantsStopped(ctx, dir, time.Nanosecond, nil); !errors.Is(err, ledger.ErrLocked) {
		t.Errorf("the stopped-CH prune while the CH runs: %v, want ErrLocked", err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PruneGrants(ctx, dir, time.Nanosecond, nil); !errors.Is(err, admin.ErrNotRunning) {
		t.Errorf("a prune through the socket of a stopped CH: %v, want ErrNotRunning", err)
	}
	if s := checkGrants(t, dir); s.Grants != 7 || s.Pruned != 7 {
		t.Fatalf("CheckGrants after the prunes: %+v", s)
	}
}
