package bftledger_test

import (
	"bytes"
	"testing"

	"github.com/iotguard/iotguard/bftledger"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// enrollEvent is an enroll of id with the device key named by key.
func enrollEvent(c *chainApp, id string, key byte, replace bool) ledger.Event {
	cose, err := wire.EncodePublicKey(&deviceKey(key).PublicKey)
	if err != nil {
		panic(err)
	}
	return ledger.Event{Type: ledger.EventEnroll, Device: id, Key: cose, Time: c.now().UnixMilli(), Replace: replace}
}

func (c *chainApp) enrollment(id string) ledger.Enrollment {
	c.t.Helper()
	e, ok, err := bftledger.AppEnrollment(c.app, id)
	if err != nil || !ok {
		c.t.Fatalf("enrollment of %s: %v %v", id, ok, err)
	}
	return e
}

// TestAppEnrollment: enrollment events replicate through the executor with
// the state machine's rules (the enrolled key binds the ID; a removed
// enrollment blocks it; replace ends the old key's membership), each
// enrollment names its cluster, and a CH enrolls only for its own cluster.
func TestAppEnrollment(t *testing.T) {
	keys, state := clusterKeys(t, "cluster-a", "cluster-b")
	c := newChainApp(t, keys, state)
	codes, before := c.block(c.tx("cluster-a", "cluster-a", event(ledger.EventUnenroll, "nobody", "", c.now())))
	if codes[0] != bftledger.CodeNotEnrolled {
		t.Fatalf("remove a never enrolled ID: code %d", codes[0])
	}
	codes, after := c.block(c.tx("cluster-a", "cluster-a", enrollEvent(c, "a1", 0xa1, false)))
	if codes[0] != 0 {
		t.Fatalf("enroll: code %d", codes[0])
	}
	if bytes.Equal(before, after) {
		t.Error("an enrollment left the state hash unchanged")
	}
	if e := c.enrollment("a1"); e.Cluster != "cluster-a" || e.Enrolled.Height == 0 || e.Enrolled.Hash == ([32]byte{}) {
		t.Fatalf("enrollment of a1: %+v", e)
	}
	for _, tc := range []struct {
		name    string
		cluster string
		ev      ledger.Event
		code    uint32
	}{
		{"enroll twice", "cluster-a", enrollEvent(c, "a1", 0xa1, false), bftledger.CodeEnrolled},
		{"join with another key than enrolled", "cluster-a", join("a1", 0xee, c.now()), bftledger.CodeConflict},
		{"another cluster enrolls the ID", "cluster-b", enrollEvent(c, "a1", 0xa1, true), bftledger.CodeOtherCluster},
		{"another cluster removes the enrollment", "cluster-b", event(ledger.EventUnenroll, "a1", "", c.now()), bftledger.CodeOtherCluster},
		{"remove a never enrolled ID", "cluster-a", event(ledger.EventUnenroll, "nobody", "", c.now()), bftledger.CodeNotEnrolled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.want([]uint32{tc.code}, c.tx(tc.cluster, tc.cluster, tc.ev))
		})
	}
	c.want([]uint32{0}, c.tx("cluster-a", "cluster-a", join("a1", 0xa1, c.now())))
	// A device of cluster-b may not be enrolled by cluster-a.
	c.want([]uint32{0}, c.tx("cluster-b", "cluster-b", join("b1", 0xb1, c.now())))
	c.want([]uint32{bftledger.CodeOtherCluster}, c.tx("cluster-a", "cluster-a", enrollEvent(c, "b1", 0xb1, false)))

	// Replace: the old key's membership ends in the same block, the new key joins.
	c.want([]uint32{0}, c.tx("cluster-a", "cluster-a", enrollEvent(c, "a1", 0xa2, true)))
	if d := c.device("a1"); d.Status != membership.Revoked {
		t.Fatalf("a1 after replace: %v", d.Status)
	}
	c.want([]uint32{bftledger.CodeConflict, 0},
		c.tx("cluster-a", "cluster-a", join("a1", 0xa1, c.now())), c.tx("cluster-a", "cluster-a", join("a1", 0xa2, c.now())))
	if d := c.device("a1"); d.Status != membership.Member || !bytes.Equal(d.Key, enrollEvent(c, "a1", 0xa2, false).Key) {
		t.Fatalf("a1 after the new key's join: %+v", d)
	}

	// Removal ends membership and blocks rejoin.
	c.want([]uint32{0}, c.tx("cluster-a", "cluster-a", event(ledger.EventUnenroll, "a1", "", c.now())))
	if d, e := c.device("a1"), c.enrollment("a1"); d.Status != membership.Revoked || !e.Removed {
		t.Fatalf("a1 after removal: %v, removed %v", d.Status, e.Removed)
	}
	c.want([]uint32{bftledger.CodeUnenrolled}, c.tx("cluster-a", "cluster-a", join("a1", 0xa2, c.now())))
}
