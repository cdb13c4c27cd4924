package coapedge_test

import (
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// TestBadOptionRateLimited: a request with an unknown critical option
// (RFC 7252 §5.4.1) counts against its source's rate limit like any
// other: once the burst is spent it is dropped unanswered, and counted. A
// NON one is never answered (§4.3). go-coap answered every one itself, 4.02
// with a diagnostic, before the edge's rate limit ran.
func TestBadOptionRateLimited(t *testing.T) {
	srv, rec := listen(t, coapedge.WithRateLimit(1), coapedge.WithClock(frozen)) // burst 3
	s := chtest.NewSocket(t, srv.Addr().String(), "")
	bad := func(typ message.Type) message.Message {
		return chtest.Request(typ, codes.GET, "/nothing", message.Option{ID: 13})
	}
	if code := probe(t, s); code != codes.Valid { // the association, and one token
		t.Fatalf("probe: %v", code)
	}
	for i := range 2 {
		if a, _, _ := s.Exchange(bad(message.Confirmable)); a.Code != codes.BadOption {
			t.Fatalf("bad option %d within the burst: %s, want 4.02", i, chtest.Describe(a))
		}
	}
	for i, typ := range []message.Type{message.Confirmable, message.NonConfirmable} {
		m := bad(typ)
		m.MessageID = int32(0x6000 + i)
		s.Send(chtest.Datagram(t, m))
	}
	// The probe's answer is the next datagram: neither was answered.
	if code := probe(t, s); code != codes.TooManyRequests {
		t.Fatalf("probe beyond the burst: %v, want 4.29", code)
	}
	expectDrops(t, rec, []string{coapedge.DropBadOption, coapedge.DropBadOption}, 1)
}

// TestPingRateLimited: a CoAP ping (an empty CON) is answered with a Reset
// within its source's rate limit, and beyond it dropped unanswered and
// counted, as every datagram the edge answers. go-coap answered every ping,
// past the rate limit.
func TestPingRateLimited(t *testing.T) {
	srv, rec := listen(t, coapedge.WithRateLimit(1), coapedge.WithClock(frozen)) // burst 3
	s := chtest.NewSocket(t, srv.Addr().String(), "")
	ping := func(mid uint16) message.Message {
		return message.Message{Type: message.Confirmable, Code: codes.Empty, MessageID: int32(mid)}
	}
	for i := range 3 {
		if a, _, _ := s.Exchange(ping(uint16(0x6100 + i))); a.Type != message.Reset {
			t.Fatalf("ping %d within the burst: %s, want a Reset", i, chtest.Describe(a))
		}
	}
	s.Send(chtest.Datagram(t, ping(0x6200)))
	if code := probe(t, s); code != codes.TooManyRequests { // the next datagram is the probe's answer
		t.Fatalf("probe beyond the burst: %v, want 4.29", code)
	}
	expectDrops(t, rec, []string{coapedge.DropSourceRate}, 1)
}
