package device_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/wire"
)

// A device's check of its join in the CH's log across CH key rotations
// (docs/PROTOCOL.md §6.1, §9.2), over real UDP against a real cluster head:
// the checkpoint a device keeps from before a rotation stays its memory of
// the log, followed through the signed rotations, never a reason to refuse
// the log or to forget it.

// keptKID returns the kid of the checkpoint the device file at path keeps.
func keptKID(t *testing.T, path string) []byte {
	t.Helper()
	st, err := device.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := wire.ParseSign1(st.Checkpoint)
	if err != nil {
		t.Fatalf("kept checkpoint: %v", err)
	}
	return s.KID
}

func rotate(t *testing.T, ch *clusterhead.CH) {
	t.Helper()
	if _, err := ch.RotateKey(chtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
}

// joinNear joins the device file at path to ch.
func joinNear(t *testing.T, ch *clusterhead.CH, path string, opts ...device.Option) error {
	t.Helper()
	_, err := dialFile(t, ch, path, opts...).Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon)
	return err
}

// TestJoinAfterRekey: a device that re-keyed after a rotation joins again,
// its kept checkpoint (of the old key) followed to the new key: whether its
// re-key moved the checkpoint to the new key (by default) or not (without
// the log check, as a device re-keyed before re-keys checked the log). One
// that did not re-key joins through the rotation keeping its checkpoint.
// (Before the fix, the join after a re-key failed on the client every time:
// "checkpoint signed by another key", though the CH had recorded it.)
func TestJoinAfterRekey(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	rekeyed, unchecked, rejoined := newFile(t, "sensor-r"), newFile(t, "sensor-u"), newFile(t, "sensor-j")
	for _, p := range []string{rekeyed, unchecked, rejoined} {
		if err := joinNear(t, ch, p); err != nil {
			t.Fatal(err)
		}
	}
	old := thumb(ch)
	rotate(t, ch)
	if changed, err := dialFile(t, ch, rekeyed).Rekey(chtest.Ctx(t)); err != nil || !changed {
		t.Fatalf("rekey: %v %v", changed, err)
	}
	if kid := keptKID(t, rekeyed); !bytes.Equal(kid, thumb(ch)) {
		t.Fatalf("after the re-key the device keeps a checkpoint of %x, want the new key %x", kid, thumb(ch))
	}
	if changed, err := dialFile(t, ch, unchecked, device.WithoutLogCheck()).Rekey(chtest.Ctx(t)); err != nil || !changed {
		t.Fatalf("rekey without the log check: %v %v", changed, err)
	}
	if kid := keptKID(t, unchecked); !bytes.Equal(kid, old) {
		t.Fatalf("a re-key without the log check moved the checkpoint to %x", kid)
	}
	for _, p := range []string{rekeyed, unchecked, rejoined} {
		for i := range 2 {
			if err := joinNear(t, ch, p); err != nil {
				t.Fatalf("join %d of %s after the rotation: %v", i+1, p, err)
			}
			if kid := keptKID(t, p); !bytes.Equal(kid, thumb(ch)) {
				t.Fatalf("%s keeps a checkpoint of %x after its join, want the new key %x", p, kid, thumb(ch))
			}
		}
	}
}

// TestRekeyFollowsEveryRotation: a device that re-keys after every rotation
// and joins only once in a while still proves its join after more rotations
// than GET /cluster carries (wire.MaxRotations): each re-key moved its
// checkpoint to the key it re-keyed to.
func TestRekeyFollowsEveryRotation(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	path := newFile(t, "sensor-long")
	if err := joinNear(t, ch, path); err != nil {
		t.Fatal(err)
	}
	for range wire.MaxRotations + 1 {
		rotate(t, ch)
		if _, err := dialFile(t, ch, path).Rekey(chtest.Ctx(t)); err != nil {
			t.Fatalf("rekey: %v", err)
		}
	}
	if err := joinNear(t, ch, path); err != nil {
		t.Fatalf("join after %d rotations: %v", wire.MaxRotations+1, err)
	}
}

// TestKeptCheckpointOfAnotherKey: a kept checkpoint signed by a key from
// which no rotation leads to the CH's (another CH of the same cluster ID)
// is refused, not taken for this log's: the check writes nothing, the device
// file keeps its checkpoint.
func TestKeptCheckpointOfAnotherKey(t *testing.T) {
	ch, other := chtest.Start(t, "", chtest.Open), chtest.Start(t, "", chtest.Open)
	path, stranger := newFile(t, "sensor-k"), newFile(t, "sensor-o")
	if err := joinNear(t, ch, path); err != nil {
		t.Fatal(err)
	}
	if err := joinNear(t, other, stranger); err != nil {
		t.Fatal(err)
	}
	rotate(t, ch)
	if _, err := dialFile(t, ch, path, device.WithoutLogCheck()).Rekey(chtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	st, err := device.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := device.LoadState(stranger)
	if err != nil {
		t.Fatal(err)
	}
	st.Checkpoint = foreign.Checkpoint
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	before, file := chtest.Snap(t, ch), readFile(t, path)
	_, err = dialFile(t, ch, path).CheckJoin(chtest.Ctx(t))
	var u *device.UntrustedCHError
	if !errors.As(err, &u) || !bytes.Equal(u.Trusted, thumb(other)) || !bytes.Equal(u.Got, thumb(ch)) {
		t.Fatalf("check with a checkpoint of another CH's key: %v, want an *UntrustedCHError from %x", err, thumb(other))
	}
	chtest.Unchanged(t, ch, before)
	if !bytes.Equal(readFile(t, path), file) {
		t.Fatal("a refused check changed the device file")
	}
}
