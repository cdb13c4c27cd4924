package device_test

import (
	"testing"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
)

// TestDeviceOutlivesCHRestart: a request sent while the CH is down draws an
// ICMP port unreachable, which ends the device's go-coap association for
// good; the device dials a new one for its next request, so that a
// long-running device — a listener asking its CH for sessions — works again
// once the CH is back. Before this was fixed every later request failed
// ("EOF") until the device's process was restarted: a CH restart, or one
// forged ICMP message, cut every Go listener off its CH.
func TestDeviceOutlivesCHRestart(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	addr := ch.Addr()
	m1 := chtest.Joined(t, ch, "m1")
	m2 := chtest.Joined(t, ch, "m2")
	l, err := m2.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { return msg }, nil, device.WithListenRateLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Verify(chtest.Ctx(t), "m1"); err == nil {
		t.Fatal("verify with the CH down: no error")
	}
	chtest.Start(t, dir, func(c *clusterhead.Config) { c.Listen = addr })
	if _, err := m2.Verify(chtest.Ctx(t), "m1"); err != nil {
		t.Errorf("verify once the CH is back: %v", err)
	}
	talk, err := m1.Talk(chtest.Ctx(t), l.Addr().String(), "m2")
	if err != nil {
		t.Fatalf("talk to the listener once the CH is back: %v", err)
	}
	talk.Close()
}
