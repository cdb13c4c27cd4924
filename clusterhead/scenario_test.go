package clusterhead_test

import (
	"errors"
	"testing"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/membership"
)

// TestSeedScenario runs the whole seed scenario over real UDP and a real
// ledger: join inside R, refusal outside R, verify, session, encrypted talk
// both ways, an impostor unable to ask and warned about, leave, and an
// intact chain at the end.
func TestSeedScenario(t *testing.T) {
	ch := chtest.Start(t, "")
	ctx := chtest.Ctx(t)

	a := chtest.Joined(t, ch, "sensor-a")
	b := chtest.Joined(t, ch, "sensor-b")

	c := chtest.Device(t, ch, "sensor-c")
	before := chtest.Height(t, ch)
	_, err := c.Join(ctx, chtest.Far.Lat, chtest.Far.Lon)
	var ce *device.CodeError
	if !errors.As(err, &ce) || ce.Code.String() != "Forbidden" || ce.Diagnostic != "outside radius" {
		t.Fatalf("join outside radius: got %v, want 4.03 outside radius", err)
	}
	if h := chtest.Height(t, ch); h != before {
		t.Fatalf("refused join changed the ledger: height %d → %d", before, h)
	}

	got := make(chan string, 1)
	l, err := b.Listen("127.0.0.1:0", func(from string, msg []byte) []byte {
		got <- from + ":" + string(msg)
		return []byte("hello " + from)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	talk, err := a.Talk(ctx, l.Addr().String(), "sensor-b")
	if err != nil {
		t.Fatalf("A talks to B: %v", err)
	}
	defer talk.Close()
	reply, err := talk.Send(ctx, []byte("temperature 21.5"))
	if err != nil {
		t.Fatalf("A sends: %v", err)
	}
	if received := <-got; string(reply) != "hello sensor-a" || received != "sensor-a:temperature 21.5" {
		t.Fatalf("exchange: reply %q, B got %q", reply, received)
	}

	// An impostor that never joined has no member key to make a talk proof
	// with (forged hellos: device TestForgedHelloWritesNothing).
	x := chtest.Device(t, ch, "impostor-x")
	_, err = x.Talk(ctx, l.Addr().String(), "sensor-b")
	if !errors.Is(err, device.ErrNotJoined) {
		t.Fatalf("impostor talk: got %v, want ErrNotJoined", err)
	}
	v, err := b.Verify(ctx, "impostor-x")
	if !errors.Is(err, device.ErrWarning) || v.Status.Membership() != membership.Unknown {
		t.Fatalf("verify impostor: %v %v", v, err)
	}

	if _, err := a.Leave(ctx); err != nil {
		t.Fatalf("A leaves: %v", err)
	}
	v, err = b.Verify(ctx, "sensor-a")
	if !errors.Is(err, device.ErrWarning) || v.Status.Membership() != membership.Left {
		t.Fatalf("verify A after leave: %+v %v", v, err)
	}
	if err := ch.Ledger.Verify(ctx, nil); err != nil {
		t.Fatalf("ledger verify: %v", err)
	}
}
