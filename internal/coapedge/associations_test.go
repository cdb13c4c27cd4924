package coapedge_test

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// frozen is a clock that does not move: no bucket refills during a test.
func frozen() time.Time { return time.Unix(1_700_000_000, 0) }

// probe sends GET /held from s and returns the answer's code (2.03). /held
// is not Stateless: the request makes an association. The edge reads
// datagrams in order on one loop, so when the answer arrives every datagram
// sent before it, from any socket, has been admitted or dropped.
func probe(t *testing.T, s *chtest.Socket) codes.Code {
	t.Helper()
	answer, _, _ := s.Exchange(chtest.Request(message.NonConfirmable, codes.GET, "/held"))
	return answer.Code
}

// send sends GET /held from s, not waiting for an answer.
func send(t *testing.T, s *chtest.Socket) {
	t.Helper()
	m := chtest.Request(message.NonConfirmable, codes.GET, "/held")
	m.MessageID = 0x7777
	s.Send(chtest.Datagram(t, m))
}

func expectDrops(t *testing.T, rec *recorder, want []string, associations int) {
	t.Helper()
	if dropped, n := rec.drops(); !slices.Equal(dropped, want) || n != associations {
		t.Errorf("dropped %v with %d associations, want %v with %d", dropped, n, want, associations)
	}
}

// TestNewAssociationsBounded: with room for two associations, or a budget of
// one new association (the clock is frozen, so it never refills), the
// datagram of one more source endpoint is dropped before go-coap makes
// anything for it — no connection, no answer — and counted; the endpoints
// held are still served.
func TestNewAssociationsBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opt    coapedge.Option
		held   int
		reason string
	}{
		{"cap", coapedge.WithMaxAssociations(2), 2, coapedge.DropAssociationCap},
		{"rate", coapedge.WithAssociationRate(1.0 / 60), 1, coapedge.DropAssociationRate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, rec := listen(t, tc.opt, coapedge.WithClock(frozen))
			addr := srv.Addr().String()
			var held []*chtest.Socket
			for range tc.held {
				s := chtest.NewSocket(t, addr, "")
				if probe(t, s) != codes.Valid {
					t.Fatal("a source endpoint within the bound was not served")
				}
				held = append(held, s)
			}
			send(t, chtest.NewSocket(t, addr, ""))
			if probe(t, held[0]) != codes.Valid {
				t.Fatal("a held association was not served")
			}
			expectDrops(t, rec, []string{tc.reason}, tc.held)
		})
	}
}

// TestSourceOverItsLimitGetsNoNewAssociation: a source (here 127.0.0.1)
// that spent its burst gets 4.29 on its association, and a new source port
// of it gets nothing at all: cycling through ports buys no new budget.
func TestSourceOverItsLimitGetsNoNewAssociation(t *testing.T) {
	srv, rec := listen(t, coapedge.WithRateLimit(1), coapedge.WithClock(frozen)) // burst 3
	addr := srv.Addr().String()
	a, b := chtest.NewSocket(t, addr, ""), chtest.NewSocket(t, addr, "")
	for range 3 {
		if code := probe(t, a); code != codes.Valid {
			t.Fatalf("within the burst: %v", code)
		}
	}
	if code := probe(t, a); code != codes.TooManyRequests {
		t.Fatalf("beyond the burst: %v, want 4.29", code)
	}
	send(t, b)
	if code := probe(t, a); code != codes.TooManyRequests {
		t.Fatalf("beyond the burst: %v, want 4.29", code)
	}
	expectDrops(t, rec, []string{coapedge.DropSourceRate}, 1)
}

// TestAddressRotationCannotResetTheLimit: a limiter that remembers two
// sources, and a source x that spent its burst. Sources the table has no
// room for (it holds x and y, neither refilled) do not push x out — which
// would give it a fresh burst — but share one bucket; once that is spent
// too, their new associations are refused. x stays limited throughout.
// (Sources are loopback addresses 127.0.0.1-4; the clock is frozen.)
func TestAddressRotationCannotResetTheLimit(t *testing.T) {
	srv, rec := listen(t, coapedge.WithRateLimit(1), coapedge.WithMaxSources(2), coapedge.WithClock(frozen)) // bursts of 3
	addr := srv.Addr().String()
	from := func(ip string) *chtest.Socket { return chtest.NewSocket(t, addr, ip+":0") }
	x := from("127.0.0.1")
	for range 3 {
		probe(t, x)
	}
	if code := probe(t, x); code != codes.TooManyRequests {
		t.Fatalf("x beyond its burst: %v, want 4.29", code)
	}
	if code := probe(t, from("127.0.0.2")); code != codes.Valid {
		t.Fatalf("y: %v", code)
	}
	z, w := from("127.0.0.3"), from("127.0.0.4")
	if probe(t, z) != codes.Valid || probe(t, w) != codes.Valid || probe(t, z) != codes.Valid {
		t.Fatal("the crowd's bucket of 3 was not served")
	}
	if code := probe(t, z); code != codes.TooManyRequests {
		t.Fatalf("z beyond the crowd's burst: %v, want 4.29", code)
	}
	if code := probe(t, x); code != codes.TooManyRequests {
		t.Fatalf("x after the rotation: %v, want 4.29 still", code)
	}
	send(t, from("127.0.0.5"))
	probe(t, x)
	expectDrops(t, rec, []string{coapedge.DropSourceRate}, 4)
}

func TestSourceKey(t *testing.T) {
	key := func(ip string) string { return coapedge.SourceKey(&net.UDPAddr{IP: net.ParseIP(ip), Port: 5683}) }
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"2001:db8::1", "2001:db8::ffff:1", true}, // one /64
		{"2001:db8::1", "2001:db8:0:1::1", false},
		{"192.0.2.1", "::ffff:192.0.2.1", true}, // IPv4-mapped
		{"192.0.2.1", "192.0.2.2", false},
		{"192.0.2.1", "c000:201::", false}, // an IPv6 /64 whose first bytes spell an IPv4 address
	} {
		if got := key(tc.a) == key(tc.b); got != tc.same {
			t.Errorf("%s and %s: same source %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// malformed is a NON request that is not CoAP: option delta 15 with a
// length (RFC 7252 §3.1: 15 is the payload marker's, reserved otherwise).
func malformed(mid uint16) []byte { return []byte{0x50, 0x02, byte(mid >> 8), byte(mid), 0xf1, 0x00} }

// TestMalformedDatagramsCounted: a datagram that is not CoAP — from an
// endpoint that holds an association, or from a new one — is dropped
// unanswered, counted as DropMalformed, and never passed to the error hook:
// any client can send them at will, and a hook that logs would write a line
// each.
func TestMalformedDatagramsCounted(t *testing.T) {
	srv, rec := listen(t)
	addr := srv.Addr().String()
	held := chtest.NewSocket(t, addr, "127.0.0.1:0")
	if code := probe(t, held); code != codes.Valid { // makes the association
		t.Fatalf("probe: %v", code)
	}
	const batches, perBatch, fresh = 10, 100, 20
	for b := range batches {
		for i := range perBatch {
			held.Send(malformed(uint16(b*perBatch + i)))
		}
		// Every datagram before the probe's answer was read (probe); in
		// batches, so that none is lost in a full socket buffer.
		if code := probe(t, held); code != codes.Valid {
			t.Fatalf("probe after batch %d: %v", b, code)
		}
	}
	for i := range fresh {
		chtest.NewSocket(t, addr, "127.0.0.1:0").Send(malformed(uint16(i)))
	}
	if code := probe(t, held); code != codes.Valid {
		t.Fatalf("last probe: %v", code)
	}
	dropped, _ := rec.drops()
	n := 0
	for _, reason := range dropped {
		if reason == coapedge.DropMalformed {
			n++
		}
	}
	if want := batches*perBatch + fresh; n != want {
		t.Errorf("%d datagrams counted as %q, want %d (dropped: %d in all)", n, coapedge.DropMalformed, want, len(dropped))
	}
	if _, errs := rec.seen(); len(errs) != 0 {
		t.Errorf("%d errors reported for malformed datagrams, want none; first: %v", len(errs), errs[0])
	}
}
