package clusterhead_test

import (
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
)

// TestSquattingAttackFails is the attack of docs/SECURITY.md ("Joining is
// open"): before the real sensor-7 is installed, an attacker makes a key of
// its own and joins as sensor-7 from inside the radius. On a CH as it is
// configured by default the join must be refused and write nothing, so the
// ID is still free for its real device (TestSquattedIDReturnsToItsDevice).
//
// This test uses only what existed before admission (a CH with the default
// configuration, a fresh device, a join): run on that code, it fails at the
// squatter's join, which then succeeded and took the ID.
func TestSquattingAttackFails(t *testing.T) {
	ch := chtest.Start(t, "")
	before := chtest.Snap(t, ch)
	squatter := chtest.Device(t, ch, "sensor-7")
	_, err := squatter.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon)
	ce, ok := err.(*device.CodeError)
	if !ok || ce.Code != codes.Forbidden || ce.Diagnostic != "not enrolled" {
		t.Fatalf("the squatter's join: %v; want it refused with 4.03 not enrolled", err)
	}
	chtest.Unchanged(t, ch, before)
	if _, err := ch.Ledger.Lookup("sensor-7"); err == nil {
		t.Fatal("the squatter's key is bound to sensor-7")
	}
}
