package device_test

import (
	"errors"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/wire"
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

// TestHelloFromItselfNotForwarded: a hello naming the listener as its own
// initiator, with a well-formed, fresh proof that anyone can make up, is
// answered as its CH would answer it (4.03 "warning: peer not a member: peer
// is the requester") without asking the CH: no sequence number spent.
func TestHelloFromItselfNotForwarded(t *testing.T) {
	s := newTalkScene(t)
	seq := s.m2.Seq()
	proof := &wire.TalkProof{Nonce: randomBytes(t, wire.NonceSize), Time: uint64(time.Now().Unix()), Tag: randomBytes(t, wire.TagSize)}
	r := talkPost(t, dialListener(t, s.l), mustCBOR(t, &wire.Hello{ID: "m2", Responder: "m2", Proof: proof}))
	if r.Code != codes.Forbidden || r.Diagnostic != "warning: peer not a member: peer is the requester" {
		t.Errorf("a hello from the listener itself: %v %q", r.Code, r.Diagnostic)
	}
	if s.m2.Seq() != seq {
		t.Error("the listener asked its CH about a hello from itself")
	}
	s.alive(t)
}
