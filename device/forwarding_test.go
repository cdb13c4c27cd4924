package device_test

import (
	"errors"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
)

// TestListenerPausesWhileCHSilent: a listener whose CH left a forwarded
// hello unanswered asks it about no hello for 30 s, then for 60 s after the
// next silence, answering hellos 5.03 meanwhile without spending a sequence
// number; the CH's answer ends the pause. Before, each hello with a fresh
// proof cost the listener a request to its silent CH (a sequence number, a
// sync of its file, the device's lock until the request failed).
func TestListenerPausesWhileCHSilent(t *testing.T) {
	var c clock
	dir := t.TempDir()
	withClock := func(cfg *clusterhead.Config) { cfg.Cluster.Now = c.now }
	ch := chtest.Start(t, dir, withClock)
	addr := ch.Addr()
	m1 := joinedWithClock(t, ch, "m1", &c)
	m2 := joinedWithClock(t, ch, "m2", &c)
	l, err := m2.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { return msg }, nil, device.WithListenRateLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	talk := func() error {
		s, err := m1.Talk(chtest.Ctx(t), l.Addr().String(), "m2")
		if err == nil {
			s.Close()
		}
		return err
	}
	// unavailable talks once and wants 5.03, with the CH asked or not.
	unavailable := func(step string, asked bool) {
		t.Helper()
		seq := m2.Seq()
		err := talk()
		var ce *device.CodeError
		if !errors.As(err, &ce) || ce.Code != codes.ServiceUnavailable {
			t.Fatalf("%s: %v, want 5.03", step, err)
		}
		if got := m2.Seq() != seq; got != asked {
			t.Fatalf("%s: the listener asked its CH: %v, want %v", step, got, asked)
		}
	}

	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	unavailable("the CH down", true)
	unavailable("paused", false)
	c.advance(device.ForwardPause + time.Second)
	unavailable("after the pause, the CH still down", true)
	c.advance(device.ForwardPause + time.Second)
	unavailable("within the doubled pause", false)

	chtest.Start(t, dir, withClock, func(cfg *clusterhead.Config) { cfg.Listen = addr })
	c.advance(device.ForwardPause)
	if err := talk(); err != nil {
		t.Fatalf("the CH back, the pause over: %v", err)
	}
	if err := talk(); err != nil {
		t.Fatalf("the next talk: %v", err)
	}
}
