package bftledger_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
)

// TestSharedLedger: two cluster heads on a four-validator network share one
// ledger. Devices join both; a device of cluster A is verified through CH B;
// CH B cannot take A's member nor grant a session with it; a validator is
// killed and joins continue; it comes back, catches up, and every
// validator's verification agrees.
func TestSharedLedger(t *testing.T) {
	n := startNet(t, []string{"cluster-a", "cluster-b"}, nil)
	chA, chB := n.ch("cluster-a"), n.ch("cluster-b")

	stA1, err := device.NewState("a1")
	if err != nil {
		t.Fatal(err)
	}
	chtest.Enroll(t, chA, stA1)
	a1 := chtest.Dial(t, chA, stA1)
	joinA1, err := a1.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon)
	if err != nil {
		t.Fatalf("join a1 through CH A: %v", err)
	}
	b1 := chtest.Joined(t, chB, "b1")
	chtest.Joined(t, chA, "a2")
	chtest.Joined(t, chB, "b2")

	// B's member asks CH B about A's member: the shared ledger answers.
	v, err := b1.Verify(chtest.Ctx(t), "a1")
	if err != nil {
		t.Fatalf("verify a1 through CH B: %v", err)
	}
	if v.Status.Membership() != membership.Member || v.Height != joinA1.Height || !bytes.Equal(v.BlockHash, joinA1.BlockHash) {
		t.Fatalf("CH B says a1 is %v at %d %x; CH A recorded the join at %d %x", v.Status, v.Height, v.BlockHash, joinA1.Height, joinA1.BlockHash)
	}
	if _, err := b1.Verify(chtest.Ctx(t), "nobody"); !errors.Is(err, device.ErrWarning) {
		t.Fatalf("verify of an unknown device through CH B: %v, want a warning", err)
	}

	// CH B may not take in A's current member, and says so, nor grant a
	// session with it (its member key is with CH A). The device itself
	// trusts CH A's key: re-pinned to CH B's, it asks. A's enrollment does
	// not admit it at B; a fleet credential that B trusts does, and then the
	// shared ledger refuses it.
	var ce *device.CodeError
	thumbB := chB.Keys.Thumbprint()
	toB, err := device.Dial(chB.Addr(), stA1, device.WithRepin(thumbB[:]))
	if err != nil {
		t.Fatal(err)
	}
	defer toB.Close()
	if _, err := toB.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); !errors.As(err, &ce) || ce.Code != codes.Forbidden || ce.Diagnostic != "not enrolled" {
		t.Fatalf("join of A's enrolled member through CH B: %v, want 4.03 not enrolled", err)
	}
	stA1.Credential = credential(t, stA1)
	if _, err := toB.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); !errors.As(err, &ce) ||
		ce.Code != codes.Conflict || ce.Diagnostic != "member of another cluster: cluster-a" {
		t.Fatalf("join of A's member through CH B: %v, want 4.09 member of another cluster: cluster-a", err)
	}
	if _, _, err := b1.Session(chtest.Ctx(t), "a1"); !errors.As(err, &ce) || ce.Code != codes.Forbidden {
		t.Fatalf("session with A's member through CH B: %v, want 4.03", err)
	}

	// One validator dies: three of four still commit.
	n.stop(3)
	chtest.Joined(t, chA, "a3")
	chtest.Joined(t, chB, "b3")
	if v, err := b1.Verify(chtest.Ctx(t), "a3"); err != nil || v.Status.Membership() != membership.Member {
		t.Fatalf("verify a3 through CH B with a validator down: %v %v", v, err)
	}
	n.agree(0, 1, 2)

	// It comes back and catches up from its peers.
	n.start(3)
	chtest.Joined(t, chA, "a4")
	height, _ := n.agree(0, 1, 2, 3)
	if height < 4 {
		t.Fatalf("only %d blocks for 7 joins", height)
	}
	var members int
	if err := n.ledger(3).Devices(func(d ledger.Device) error { members++; return nil }); err != nil {
		t.Fatal(err)
	}
	if members != 7 {
		t.Fatalf("validator 3 knows %d devices after catching up, want 7", members)
	}
	// Enrollments replicate like every other event, each naming its cluster.
	enrolled := map[string]string{}
	if err := n.ledger(3).Enrollments(func(e ledger.Enrollment) error { enrolled[e.ID] = e.Cluster; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(enrolled) != 7 || enrolled["a1"] != "cluster-a" || enrolled["b3"] != "cluster-b" {
		t.Fatalf("validator 3's enrollments after catching up: %v", enrolled)
	}
}
