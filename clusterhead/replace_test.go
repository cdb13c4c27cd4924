package clusterhead_test

import (
	"errors"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
)

// TestSquattedIDReturnsToItsDevice: the real sensor-7 is enrolled and joins
// although a squatter tried first; and on a CH that was open, where the
// squatter did take the ID, enrolling the real key with Replace evicts it:
// the squatter's membership ends (its requests are refused, its peers
// warned), it cannot rejoin, and the real device joins. Before admission a
// revocation was final and the real device could never get its ID back.
func TestSquattedIDReturnsToItsDevice(t *testing.T) {
	ctx := chtest.Ctx(t)
	t.Run("enrolled", func(t *testing.T) {
		ch := chtest.Start(t, "")
		real := newState(t, "sensor-7")
		chtest.Enroll(t, ch, real)
		_, err := chtest.Device(t, ch, "sensor-7").Join(ctx, chtest.Near.Lat, chtest.Near.Lon)
		wantCode(t, err, codes.Forbidden, "not enrolled")
		if _, err := chtest.Dial(t, ch, real).Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
			t.Fatalf("the real device's join: %v", err)
		}
	})
	t.Run("was open", func(t *testing.T) {
		dir := t.TempDir()
		ch := chtest.Start(t, dir, chtest.Open)
		squatterSt, peerSt := newState(t, "sensor-7"), newState(t, "peer")
		for _, st := range []*device.State{squatterSt, peerSt} {
			if _, err := chtest.Dial(t, ch, st).Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
				t.Fatal(err)
			}
		}
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
		ch = chtest.Start(t, dir, withAdmin) // the operator closes joining
		squatter, peer := chtest.Dial(t, ch, squatterSt), chtest.Dial(t, ch, peerSt)
		if _, err := peer.Verify(ctx, "sensor-7"); err != nil { // the peer's first request after the restart, with its echo
			t.Fatalf("the peer's verify of the squatter before the replace: %v", err)
		}
		real := newState(t, "sensor-7")
		r := enrollment(t, real)
		if _, err := admin.Enroll(ctx, dir, r); !errors.Is(err, ledger.ErrConflict) {
			t.Fatalf("enroll without replace: %v, want ErrConflict", err)
		}
		r.Replace = true
		if _, err := admin.Enroll(ctx, dir, r); err != nil {
			t.Fatal(err)
		}
		if _, err := squatter.Verify(ctx, "peer"); err == nil {
			t.Error("the evicted squatter's request was served")
		}
		if v, err := peer.Verify(ctx, "sensor-7"); !errors.Is(err, device.ErrWarning) || v.Status.Membership() != membership.Revoked {
			t.Errorf("the peer's verify of the squatter: %+v, %v", v, err)
		}
		before := chtest.Snap(t, ch)
		_, err := squatter.Join(ctx, chtest.Near.Lat, chtest.Near.Lon)
		wantCode(t, err, codes.Forbidden, "not enrolled")
		chtest.Unchanged(t, ch, before)
		if _, err := chtest.Dial(t, ch, real).Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
			t.Fatalf("the real device's join after replace: %v", err)
		}
		if v, err := peer.Verify(ctx, "sensor-7"); err != nil || v.Status.Membership() != membership.Member {
			t.Errorf("the peer's verify of the real device: %+v, %v", v, err)
		}
	})
}
