package coapedge_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// statelessEdge runs an edge with /state (GET, Stateless: answers the
// source it saw), /hold (GET, Stateless: waits until release is closed, or
// its deadline),
// /boom (GET, Stateless: panics) and /assoc (GET: the association path);
// calls counts the handler runs of /state.
func statelessEdge(t testing.TB, release <-chan struct{}, opts ...coapedge.Option) (srv *coapedge.Server, rec *recorder, calls *atomic.Int64) {
	t.Helper()
	rec, calls = &recorder{}, &atomic.Int64{}
	text := []message.MediaType{message.TextPlain}
	srv = serve(t, []coapedge.Resource{
		{Path: "/state", Method: codes.GET, Answers: text, Stateless: true, Handle: func(_ context.Context, r *coapedge.Request) coapedge.Response {
			calls.Add(1)
			return coapedge.Response{Code: codes.Content, Format: message.TextPlain, Body: []byte(r.Source)}
		}},
		{Path: "/hold", Method: codes.GET, Stateless: true, Handle: func(ctx context.Context, _ *coapedge.Request) coapedge.Response {
			select {
			case <-release:
			case <-ctx.Done(): // the edge's deadline: Close waits for the handlers it took
			}
			return coapedge.Response{Code: codes.Valid}
		}},
		{Path: "/boom", Method: codes.GET, Stateless: true, Handle: func(context.Context, *coapedge.Request) coapedge.Response { panic("boom") }},
		{Path: "/assoc", Method: codes.GET, Handle: func(context.Context, *coapedge.Request) coapedge.Response {
			return coapedge.Response{Code: codes.Content}
		}},
	}, append([]coapedge.Option{coapedge.WithObserver(rec), coapedge.WithErrors(rec.error)}, opts...)...)
	return srv, rec, calls
}

// TestStatelessServedWithoutAssociation: a request to a Stateless resource
// from a source endpoint without an association is answered — a CON with a
// piggybacked ACK of its message ID and token, a NON with a NON — and no
// association is made for it; a duplicate CON is served again (the resource
// is idempotent), not dropped. A request to another resource makes one.
func TestStatelessServedWithoutAssociation(t *testing.T) {
	srv, rec, calls := statelessEdge(t, nil)
	for _, tc := range []struct {
		typ, want message.Type
	}{
		{message.Confirmable, message.Acknowledgement},
		{message.NonConfirmable, message.NonConfirmable},
	} {
		s := chtest.NewSocket(t, srv.Addr().String(), "")
		req := chtest.Request(tc.typ, codes.GET, "/state")
		req.Token, req.MessageID = []byte{0xc0, 0xde}, 0x4242
		for range 2 {
			answer, _, _ := s.Exchange(req)
			if answer.Type != tc.want || answer.Code != codes.Content || string(answer.Token) != "\xc0\xde" ||
				string(answer.Payload) != s.Addr() || (tc.typ == message.Confirmable && answer.MessageID != 0x4242) {
				t.Errorf("%v GET /state: %s", tc.typ, chtest.Describe(answer))
			}
		}
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("/state served %d times, want 4 (a duplicate is served again)", n)
	}
	if _, held := rec.drops(); held != 0 {
		t.Errorf("%d associations after requests to a Stateless resource only", held)
	}
	s := chtest.NewSocket(t, srv.Addr().String(), "")
	if answer, _, _ := s.Exchange(chtest.Request(message.Confirmable, codes.GET, "/assoc")); answer.Code != codes.Content {
		t.Fatalf("GET /assoc: %s", chtest.Describe(answer))
	}
	if _, held := rec.drops(); held != 1 {
		t.Errorf("%d associations after a request to /assoc, want 1", held)
	}
}

// TestStatelessStages: the stages before a handler apply without an
// association too: the rate limit (4.29), the payload size (4.13), a
// panicking handler (5.00, the edge keeps serving); and a request from
// another loopback address is answered from the address it was sent to.
func TestStatelessStages(t *testing.T) {
	srv, rec, _ := statelessEdge(t, nil, coapedge.WithRateLimit(1), coapedge.WithMaxPayload(8))
	s := chtest.NewSocket(t, srv.Addr().String(), "")
	if answer, _, _ := s.Exchange(chtest.Request(message.Confirmable, codes.GET, "/boom")); answer.Code != codes.InternalServerError {
		t.Errorf("GET /boom: %s", chtest.Describe(answer))
	}
	big := chtest.Request(message.Confirmable, codes.GET, "/state")
	big.Payload = make([]byte, 9)
	if answer, _, _ := s.Exchange(big); answer.Code != codes.RequestEntityTooLarge {
		t.Errorf("GET /state with 9 bytes: %s", chtest.Describe(answer))
	}
	limited := 0
	for range 6 { // bounded: burst 2 at 1/s
		if answer, _, _ := s.Exchange(chtest.Request(message.Confirmable, codes.GET, "/state")); answer.Code == codes.TooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("no 4.29 at 1 request/s")
	}
	if _, errs := rec.seen(); len(errs) != 1 {
		t.Errorf("errors reported: %v, want the one panic", errs)
	}
	if c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, srv.Addr().(*net.UDPAddr)); err != nil {
		t.Logf("no second loopback address: %v", err)
	} else {
		c.Close()
		other := chtest.NewSocket(t, srv.Addr().String(), "127.0.0.2:0") // a connected socket: only the CH's address is heard
		if answer, _, _ := other.Exchange(chtest.Request(message.Confirmable, codes.GET, "/state")); answer.Code != codes.Content {
			t.Errorf("GET /state from 127.0.0.2: %s", chtest.Describe(answer))
		}
	}
}

// TestStatelessBusyDropped: beyond the requests served without an
// association at once, a datagram is dropped unanswered and counted, and
// holds nothing; those being served are answered when they finish.
func TestStatelessBusyDropped(t *testing.T) {
	release := make(chan struct{})
	srv, rec, _ := statelessEdge(t, release, coapedge.WithMaxStateless(2))
	held := make([]*chtest.Socket, 2)
	for i := range held {
		held[i] = chtest.NewSocket(t, srv.Addr().String(), "")
		req := chtest.Request(message.Confirmable, codes.GET, "/hold")
		req.MessageID = int32(0x100 + i)
		held[i].Send(chtest.Datagram(t, req))
	}
	// The read loop takes datagrams in order: once a later request on an
	// association is answered, the earlier ones were taken or dropped.
	probe := chtest.NewSocket(t, srv.Addr().String(), "")
	probe.Exchange(chtest.Request(message.Confirmable, codes.GET, "/assoc"))
	extra := chtest.NewSocket(t, srv.Addr().String(), "")
	req := chtest.Request(message.Confirmable, codes.GET, "/hold")
	req.MessageID = 0x200
	extra.Send(chtest.Datagram(t, req))
	probe.Exchange(chtest.Request(message.Confirmable, codes.GET, "/assoc"))
	if dropped, assocs := rec.drops(); len(dropped) != 1 || dropped[0] != coapedge.DropStatelessBusy || assocs != 1 {
		t.Errorf("dropped %v, %d associations (the probe's): want one %s", dropped, assocs, coapedge.DropStatelessBusy)
	}
	close(release)
	for i, s := range held {
		if answer, _ := s.Receive(); answer.Code != codes.Valid || answer.MessageID != int32(0x100+i) {
			t.Errorf("held request %d: %s", i, chtest.Describe(answer))
		}
	}
}

// FuzzStatelessDatagram sends arbitrary datagrams, each from a source
// endpoint of its own — what the read loop decodes to decide
// whether a request is served without an association — then a GET /state
// from the same endpoint. Whatever the datagram, the probe is answered,
// every datagram back is CoAP, and no handler panicked.
func FuzzStatelessDatagram(f *testing.F) {
	hdr := func(typ, code byte, opts ...byte) []byte { // token length 1, message ID 0x1234, token 0x7e
		return append([]byte{0x41 | typ<<4, code, 0x12, 0x34, 0x7e}, opts...)
	}
	f.Add(hdr(0, 0x01, 0xb5, 's', 't', 'a', 't', 'e'))                      // CON GET /state
	f.Add(hdr(1, 0x01, 0xb5, 's', 't', 'a', 't', 'e', 0xff, 1, 2, 3))       // NON GET /state with a payload
	f.Add(hdr(0, 0x02, 0xb5, 's', 't', 'a', 't', 'e'))                      // POST /state
	f.Add(hdr(2, 0x45, 0xb5, 's', 't', 'a', 't', 'e'))                      // ACK 2.05 /state
	f.Add(hdr(0, 0x01, 0xb5, 's', 't', 'a', 't', 'e', 0x05, 'x', 'x', 'x')) // GET /state/xxx... (delta 0: another Uri-Path)
	f.Add(hdr(0, 0x01, 0xb5, 'a', 's', 's', 'o', 'c'))                      // GET /assoc
	f.Add([]byte{0x40, 0x00, 0x12, 0x34})                                   // CoAP ping
	f.Add([]byte("garbage"))
	srv, rec, _ := statelessEdge(f, nil)
	f.Fuzz(func(t *testing.T, datagram []byte) {
		s := chtest.NewSocket(t, srv.Addr().String(), "")
		s.Send(datagram)
		probe := chtest.Request(message.Confirmable, codes.GET, "/state")
		probe.Token, probe.MessageID = []byte{0x9e, 0x9e}, 0x9e9e
		s.Send(chtest.Datagram(t, probe))
		for {
			m, _ := s.Receive() // decodes it, or fails the test
			if string(m.Token) == "\x9e\x9e" && m.MessageID == 0x9e9e {
				break
			}
		}
		if _, errs := rec.seen(); len(errs) > 0 && strings.Contains(fmt.Sprint(errs), "panic") {
			t.Fatalf("after %x: %v", datagram, errs)
		}
	})
}

// TestCostlyRequestsLeaveHalf: requests to a costly resource (Cost > 1, a
// join) served without an association take at most half of the requests
// served at once: beyond, they are dropped (costly_busy), and other
// requests are still served. Before, a flood of joins waiting for their
// blocks could hold every place, and members' requests were dropped.
func TestCostlyRequestsLeaveHalf(t *testing.T) {
	release := make(chan struct{})
	rec := &recorder{}
	srv := serve(t, []coapedge.Resource{
		{Path: "/costly", Method: codes.GET, Stateless: true, Cost: 2, Handle: func(ctx context.Context, _ *coapedge.Request) coapedge.Response {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return coapedge.Response{Code: codes.Valid}
		}},
		{Path: "/cheap", Method: codes.GET, Stateless: true, Handle: func(context.Context, *coapedge.Request) coapedge.Response {
			return coapedge.Response{Code: codes.Content}
		}},
		{Path: "/assoc", Method: codes.GET, Handle: func(context.Context, *coapedge.Request) coapedge.Response {
			return coapedge.Response{Code: codes.Content}
		}},
	}, coapedge.WithObserver(rec), coapedge.WithMaxStateless(4))
	var held []*chtest.Socket
	for i := range 4 {
		s := chtest.NewSocket(t, srv.Addr().String(), "")
		req := chtest.Request(message.Confirmable, codes.GET, "/costly")
		req.MessageID = int32(0x100 + i)
		s.Send(chtest.Datagram(t, req))
		held = append(held, s)
	}
	// The read loop takes datagrams in order: once a later request on an
	// association is answered, the earlier ones were taken or dropped.
	probe := chtest.NewSocket(t, srv.Addr().String(), "")
	probe.Exchange(chtest.Request(message.Confirmable, codes.GET, "/assoc"))
	for i := range 2 {
		if a, _, _ := chtest.NewSocket(t, srv.Addr().String(), "").Exchange(chtest.Request(message.Confirmable, codes.GET, "/cheap")); a.Code != codes.Content {
			t.Fatalf("request %d with the costly ones held: %s", i, chtest.Describe(a))
		}
	}
	expectDrops(t, rec, []string{coapedge.DropCostlyBusy, coapedge.DropCostlyBusy}, 1)
	close(release)
	for i, s := range held[:2] {
		if a, _ := s.Receive(); a.Code != codes.Valid {
			t.Errorf("costly request %d: %s", i, chtest.Describe(a))
		}
	}
}
