package audit_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/iotguard/iotguard/audit"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/transparency"
)

// The watcher against real cluster heads over UDP: it follows a CH key
// rotation the way a device follows it, and never a key that no rotation
// signed by the kept key leads to.

// watcher returns a Watcher of ch with state st, and the CH's pin if any.
func watcher(t *testing.T, ch *clusterhead.CH, st *audit.State, pin []byte) *audit.Watcher {
	t.Helper()
	p, err := device.DialPublic(ch.Addr(), pin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &audit.Watcher{CH: p, State: st}
}

// TestWatchFollowsRotation: a watcher that kept a checkpoint of the old key
// takes the new key's as the log's continuation after a rotation — pinned
// to the old key or not — keeps the new key from then on, and still proves
// the log consistent across it. (Before, it failed with "checkpoint signed
// by another key".)
func TestWatchFollowsRotation(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	chtest.Joined(t, ch, "sensor-w")
	old := ch.Keys.Thumbprint()
	free, pinned := &audit.State{}, &audit.State{}
	for _, w := range []*audit.Watcher{watcher(t, ch, free, nil), watcher(t, ch, pinned, old[:])} {
		if _, err := w.Check(chtest.Ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ch.RotateKey(chtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	chtest.Joined(t, ch, "sensor-x")
	for name, c := range map[string]struct {
		st  *audit.State
		pin []byte
	}{"unpinned": {free, nil}, "pinned to the old key": {pinned, old[:]}} {
		for i := range 2 {
			cp, err := watcher(t, ch, c.st, c.pin).Check(chtest.Ctx(t))
			if err != nil {
				t.Fatalf("%s, check %d after the rotation: %v", name, i+1, err)
			}
			if cp.KID != ch.Keys.Thumbprint() || cp.Size != 4 {
				t.Fatalf("%s: checkpoint of size %d by %x, want size 4 by the new key", name, cp.Size, cp.KID)
			}
		}
	}
}

// TestWatchRefusesUnannouncedKey: a CH that answers under another key with
// no rotation from the kept one (here a CH of the same cluster ID and
// another key, which rotated its own) is ErrKeyChanged, pinned to its own key or not, and the
// state stays as it was.
func TestWatchRefusesUnannouncedKey(t *testing.T) {
	ch, other := chtest.Start(t, "", chtest.Open), chtest.Start(t, "", chtest.Open)
	chtest.Joined(t, ch, "sensor-w")
	chtest.Joined(t, other, "sensor-o")
	st := &audit.State{}
	if _, err := watcher(t, ch, st, nil).Check(chtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := other.RotateKey(chtest.Ctx(t)); err != nil { // its GET /cluster carries a rotation, not from the kept key
		t.Fatal(err)
	}
	kept := *st
	otherKey := other.Keys.Thumbprint()
	for name, pin := range map[string][]byte{"unpinned": nil, "pinned to the new key": otherKey[:]} {
		_, err := watcher(t, other, st, pin).Check(chtest.Ctx(t))
		var fork *transparency.ForkError
		if !errors.Is(err, audit.ErrKeyChanged) || errors.As(err, &fork) {
			t.Errorf("%s: %v, want ErrKeyChanged", name, err)
		}
		if !reflect.DeepEqual(*st, kept) {
			t.Errorf("%s: a refused check changed the state", name)
		}
	}
}
