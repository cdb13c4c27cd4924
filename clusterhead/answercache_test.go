package clusterhead_test

import (
	"bytes"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// TestUnauthenticatedAnswersNotKept: a flood of requests that do not
// authenticate, from 8 sockets, with the rate limit of `iotguard serve`
// (most of them answered 4.29: all 8 sockets are 127.0.0.1): the CH keeps
// none of its answers, so the heap does not grow with the flood. go-coap kept every answer of an
// association for EXCHANGE_LIFETIME (247 s) to repeat it to a duplicate —
// ~100-170 B per datagram, 4.29s included, bounded by no rate limit and
// no cap but what a sender could send in 247 s. Answers to requests that
// authenticated are still kept (TestProtectedRequestDuplicateAnsweredOnce),
// by the edge now: these requests hold no association.
func TestUnauthenticatedAnswersNotKept(t *testing.T) {
	ch := chtest.Start(t, "", func(c *clusterhead.Config) { c.RateLimit = coapedge.DefaultRateLimit })
	conns := dialSockets(t, ch.Addr(), 8) // all from 127.0.0.1: most answered 4.29
	build := func(i int) (string, message.MediaType, []byte) {
		return "/verify", message.AppCoseEncrypt0, floodProtected(t, i)
	}
	before := chtest.Snap(t, ch)
	base := heapMiB()
	codesA := flood(t, conns, floodWarm, 0, build)
	warm := heapMiB()
	codesB := flood(t, conns, 2*floodN-floodWarm, floodWarm, build)
	end := heapMiB()
	t.Logf("heap: %.2f MiB at start, %.2f after %d requests, %.2f after %d; codes %v %v",
		base, warm, floodWarm, end, 2*floodN, codesA, codesB)
	if end-warm > coreAllowanceMiB {
		t.Fatalf("heap grew %.2f MiB over %d unauthenticated requests after warm-up: answers kept", end-warm, 2*floodN-floodWarm)
	}
	if codesB[codes.Unauthorized]+codesB[codes.TooManyRequests] != 2*floodN-floodWarm {
		t.Fatalf("codes %v: want every request refused 4.01 or 4.29", codesB)
	}
	chtest.Unchanged(t, ch, before)
}

// TestProtectedRequestDuplicateAnsweredOnce: a duplicate of a protected
// request that authenticated (a CON sent again, its answer lost) gets the
// answer the CH gave it, kept by the edge (the request needs no
// association): a verdict, a sealed refusal of a request whose sequence
// number it spent, a leave — not a replay refusal, nor a second grant or
// ledger event. Only answers to requests that did not authenticate are
// not kept (TestUnauthenticatedAnswersNotKept).
func TestProtectedRequestDuplicateAnsweredOnce(t *testing.T) {
	ch := chtest.Start(t, "")
	a := joinMember(t, ch, "sensor-a")
	joinMember(t, ch, "sensor-b")
	before := chtest.Snap(t, ch)
	s := chtest.NewSocket(t, ch.Addr(), "")
	for i, tc := range []struct {
		name string
		path string
		body []byte
		code codes.Code
	}{
		{"verdict", "/verify", a.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-b"}), codes.Content},
		{"sealed refusal", "/session", a.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "nobody"}), codes.Forbidden},
		{"leave", "/leave", a.seal(t, protect.PathLeave, &wire.LeaveRequest{}), codes.Changed},
	} {
		req := chtest.Request(message.Confirmable, codes.POST, tc.path, contentFormat(message.AppCoseEncrypt0))
		req.Payload = tc.body
		req.MessageID = int32(0x5000 + i)
		first, _, _ := s.Exchange(req)
		if first.Code != tc.code {
			t.Fatalf("%s: %s, want %v", tc.name, chtest.Describe(first), tc.code)
		}
		s.Silent(uint16(0x5100 + i)) // the first copy is no longer in flight
		again, _, _ := s.Exchange(req)
		if again.Code != first.Code || !bytes.Equal(again.Payload, first.Payload) {
			t.Errorf("%s: duplicate answered %s, want the first answer %s", tc.name, chtest.Describe(again), chtest.Describe(first))
		}
	}
	ch.Core.Flush()
	leaves := 0
	if err := ch.Ledger.Blocks(before.Head.Height+1, func(b ledger.Block) error {
		for _, ev := range b.Events {
			if ev.Type != ledger.EventSessionBatch { // the audit records of the verdict and the refusal
				leaves++
				if ev.Type != ledger.EventLeave || ev.Device != "sensor-a" {
					t.Errorf("event %v of %s on the ledger, want only sensor-a's leave", ev.Type, ev.Device)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if leaves != 1 {
		t.Errorf("%d events on the ledger for a leave and its duplicate, want 1", leaves)
	}
}
