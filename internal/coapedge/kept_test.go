package coapedge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// keptEdge runs an edge with /once (an Authenticated answer), /repeat (a
// Repeat answer) and /open (neither), each Stateless and answering how
// many times its handler ran, which served counts.
func keptEdge(t *testing.T, opts ...coapedge.Option) (*coapedge.Server, *recorder, *atomic.Int64) {
	t.Helper()
	rec, served := &recorder{}, &atomic.Int64{}
	handle := func(authenticated, repeat bool) coapedge.Handler {
		return func(context.Context, *coapedge.Request) coapedge.Response {
			n := served.Add(1)
			return coapedge.Response{Code: codes.Content, Format: message.TextPlain, Body: fmt.Appendf(nil, "answer %d", n),
				Authenticated: authenticated, Repeat: repeat}
		}
	}
	srv := serve(t, []coapedge.Resource{
		{Path: "/once", Method: codes.POST, Format: message.TextPlain, Stateless: true, Handle: handle(true, false)},
		{Path: "/repeat", Method: codes.POST, Format: message.TextPlain, Stateless: true, Handle: handle(false, true)},
		{Path: "/open", Method: codes.POST, Format: message.TextPlain, Stateless: true, Handle: handle(false, false)},
	}, append([]coapedge.Option{coapedge.WithObserver(rec), coapedge.WithErrors(rec.error)}, opts...)...)
	return srv, rec, served
}

func keptRequest(typ message.Type, path string, mid int32) message.Message {
	m := chtest.Request(typ, codes.POST, path, message.Option{ID: message.ContentFormat, Value: []byte{0}})
	m.MessageID, m.Token, m.Payload = mid, []byte{byte(mid)}, []byte("request")
	return m
}

// TestDuplicateDrawsKeptAnswer: served without an association, a duplicate
// (the same datagram from the same endpoint: a CON whose answer was lost, a
// NON sent twice) of a request whose answer is Authenticated or Repeat
// draws that answer again, its handler not run again — the replay window
// of a protected request would refuse it. A duplicate of any other request
// is served again; so is a datagram differing in one byte, or the same one
// from another endpoint: only the request's own endpoint draws its answer.
func TestDuplicateDrawsKeptAnswer(t *testing.T) {
	srv, _, served := keptEdge(t)
	s := chtest.NewSocket(t, srv.Addr().String(), "")
	for i, tc := range []struct {
		typ    message.Type
		path   string
		served int64 // handler runs for the request and its duplicate
	}{
		{message.Confirmable, "/once", 1},
		{message.NonConfirmable, "/once", 1},
		{message.Confirmable, "/repeat", 1},
		{message.Confirmable, "/open", 2},
	} {
		req := keptRequest(tc.typ, tc.path, int32(0x7000+i))
		before := served.Load()
		first, _, _ := s.Exchange(req)
		again, _, _ := s.Exchange(req)
		if first.Code != codes.Content || again.Code != codes.Content || again.MessageID != first.MessageID ||
			(tc.served == 1 && string(again.Payload) != string(first.Payload)) {
			t.Errorf("%v %s: %s, then %s", tc.typ, tc.path, chtest.Describe(first), chtest.Describe(again))
		}
		if n := served.Load() - before; n != tc.served {
			t.Errorf("%v %s and its duplicate: served %d times, want %d", tc.typ, tc.path, n, tc.served)
		}
	}
	req := keptRequest(message.Confirmable, "/once", 0x7100)
	first, _, _ := s.Exchange(req)
	changed := req
	changed.Payload = []byte("requesT")
	other := chtest.NewSocket(t, srv.Addr().String(), "")
	for name, exchange := range map[string]func() message.Message{
		"one byte changed": func() message.Message { a, _, _ := s.Exchange(changed); return a },
		"another endpoint": func() message.Message { a, _, _ := other.Exchange(req); return a },
	} {
		if a := exchange(); a.Code != codes.Content || string(a.Payload) == string(first.Payload) {
			t.Errorf("%s: %s, want served again (not %q)", name, chtest.Describe(a), first.Payload)
		}
	}
}

// TestKeptAnswersBounded: the answers kept are at most the bound, the
// oldest giving its place to a new one, and each for EXCHANGE_LIFETIME;
// a duplicate of one no longer kept is served again.
func TestKeptAnswersBounded(t *testing.T) {
	var now atomic.Int64
	now.Store(frozen().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	srv, _, served := keptEdge(t, coapedge.WithMaxKept(2), coapedge.WithClock(clock))
	s := chtest.NewSocket(t, srv.Addr().String(), "")
	exchange := func(mid int32) string {
		a, _, _ := s.Exchange(keptRequest(message.Confirmable, "/once", mid))
		if a.Code != codes.Content {
			t.Fatalf("request %#x: %s", mid, chtest.Describe(a))
		}
		return string(a.Payload)
	}
	first := exchange(1)
	exchange(2)
	if again := exchange(1); again != first {
		t.Fatalf("duplicate within the bound: %q, want %q", again, first)
	}
	exchange(3) // the third kept: the first gives its place
	if again := exchange(1); again == first || served.Load() != 4 {
		t.Fatalf("duplicate of the oldest beyond the bound: %q after %d runs, want served again", again, served.Load())
	}
	third := exchange(3)
	now.Add(int64(coapedge.ExchangeLifetime))
	if again := exchange(3); again == third {
		t.Fatalf("duplicate after EXCHANGE_LIFETIME drew the kept answer %q", third)
	}
}

// TestKeptAnswerRateLimited: a duplicate drawing a kept answer counts
// against its source's rate limit; beyond it, it is dropped unanswered and
// counted.
func TestKeptAnswerRateLimited(t *testing.T) {
	srv, rec, served := keptEdge(t, coapedge.WithRateLimit(1), coapedge.WithClock(frozen)) // burst 3
	s := chtest.NewSocket(t, srv.Addr().String(), "")
	req := keptRequest(message.Confirmable, "/once", 1)
	first, _, _ := s.Exchange(req)
	for range 2 {
		if again, _, _ := s.Exchange(req); first.Code != codes.Content || string(again.Payload) != string(first.Payload) {
			t.Fatalf("%s, then %s", chtest.Describe(first), chtest.Describe(again))
		}
	}
	s.Send(chtest.Datagram(t, req)) // beyond the burst
	// Datagrams are taken in order: once the next is answered, the
	// duplicate was dropped or answered.
	if a, _, _ := s.Exchange(keptRequest(message.Confirmable, "/once", 2)); a.Code != codes.TooManyRequests {
		t.Fatalf("a new request beyond the burst: %s", chtest.Describe(a))
	}
	expectDrops(t, rec, []string{coapedge.DropSourceRate}, 0)
	if served.Load() != 1 {
		t.Errorf("served %d times, want once", served.Load())
	}
}
