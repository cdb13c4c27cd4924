package device_test

import (
	"errors"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
)

// TestListenerEvictsOldestSession: a listener full of live sessions makes
// room by dropping the one granted first, never a newer one — so a peer that
// was just handed a ticket can always use it, however busy the listener.
//
// Regression: the listener dropped an arbitrary session (map order) when
// full. Under load (the soak test: 8 busy members) a session was sometimes
// dropped between the /talk that granted it and the peer's first /m2m
// message, which got 4.01 "unknown session".
func TestListenerEvictsOldestSession(t *testing.T) {
	ch := chtest.Start(t, "")
	ctx := chtest.Ctx(t)
	m1 := chtest.Joined(t, ch, "m1")
	m2 := chtest.Joined(t, ch, "m2")
	// 257 talks in a row, each from an association of its own: no bounds.
	l, err := m2.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { return msg }, nil,
		device.WithListenRateLimit(0), device.WithListenAssociations(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// One session more than the listener keeps: bounded, MaxSessions+1 talks.
	talks := make([]*device.Talk, device.MaxSessions+1)
	for i := range talks {
		if talks[i], err = m1.Talk(ctx, l.Addr().String(), "m2"); err != nil {
			t.Fatalf("talk %d: %v", i, err)
		}
		defer talks[i].Close()
	}
	_, err = talks[0].Send(ctx, []byte("first"))
	var ce *device.CodeError
	if !errors.As(err, &ce) || ce.Code != codes.Unauthorized || ce.Diagnostic != "unknown session" {
		t.Fatalf("the oldest session: %v, want 4.01 unknown session", err)
	}
	for i, tk := range talks[1:] {
		if reply, err := tk.Send(ctx, []byte("later")); err != nil || string(reply) != "later" {
			t.Fatalf("session %d of %d: %q, %v", i+1, len(talks), reply, err)
		}
	}
}
