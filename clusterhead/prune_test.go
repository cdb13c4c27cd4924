package clusterhead_test

import (
	"errors"
	"testing"
	"time"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/ledger"
)

// TestPruneGrantsWhileServing: through the control socket of a running CH,
// an operator prunes the records of committed grant batches. The ledger
// does not change, members keep getting sessions, the grant log checks out
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
	chtest.Unchanged(t, ch, before)
	if _, _, err := a.dev.Session(ctx, "sensor-b"); err != nil {
		t.Fatalf("a session after the prune: %v", err)
	}
	ch.Core.Flush()
	time.Sleep(2 * time.Millisecond)
	if p, err := admin.PruneGrants(ctx, dir, time.Nanosecond, nil); err != nil || p.Records != 1 {
		t.Fatalf("a second prune: %+v, %v; want the one grant since", p, err)
	}

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
