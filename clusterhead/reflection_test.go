package clusterhead_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/wire"
)

// maxAmplification is RFC 9175 §2.4's bound on an answer to a source whose
// address is not verified: three times the request.
const maxAmplification = 3

func accept(cf message.MediaType) message.Option {
	return message.Option{ID: message.Accept, Value: bytesTrim(uint32(cf))}
}

func contentFormat(cf message.MediaType) message.Option {
	return message.Option{ID: message.ContentFormat, Value: bytesTrim(uint32(cf))}
}

func query(q string) message.Option { return message.Option{ID: message.URIQuery, Value: []byte(q)} }

func bytesTrim(v uint32) []byte {
	b := []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// reflectionCases are the smallest requests (no token) that reach each
// public resource and each refusal of the CH.
func reflectionCases(t testing.TB) []struct {
	name string
	req  message.Message
	code codes.Code
} {
	post := func(path string, cf message.MediaType, body []byte) message.Message {
		m := chtest.Request(message.Confirmable, codes.POST, path, contentFormat(cf))
		m.Payload = body
		return m
	}
	// padded: only /cluster, signed once and kept, is served at once to a
	// padded request (docs/PROTOCOL.md §2); the others still challenge.
	padded := func(m message.Message) message.Message { return chtest.Padded(t, m, coapedge.PaddedRequest) }
	return []struct {
		name string
		req  message.Message
		code codes.Code
	}{
		{"GET /cluster", chtest.Request(message.Confirmable, codes.GET, "/cluster"), codes.Unauthorized},
		{"GET /cluster Accept 0", chtest.Request(message.Confirmable, codes.GET, "/cluster", accept(message.TextPlain)), codes.Unauthorized},
		{"GET /ledger/head", chtest.Request(message.Confirmable, codes.GET, "/ledger/head"), codes.Unauthorized},
		{"GET /ledger/head Accept 0", chtest.Request(message.Confirmable, codes.GET, "/ledger/head", accept(message.TextPlain)), codes.Unauthorized},
		{"GET /.well-known/core", chtest.Request(message.Confirmable, codes.GET, "/.well-known/core"), codes.Unauthorized},
		{"GET /ledger/checkpoint", chtest.Request(message.Confirmable, codes.GET, "/ledger/checkpoint"), codes.Unauthorized},
		{"GET /ledger/proof?height=1", chtest.Request(message.Confirmable, codes.GET, "/ledger/proof", query("height=1")), codes.Unauthorized},
		{"GET /ledger/consistency?from=1", chtest.Request(message.Confirmable, codes.GET, "/ledger/consistency", query("from=1")), codes.Unauthorized},
		{"GET /cluster padded", padded(chtest.Request(message.Confirmable, codes.GET, "/cluster")), codes.Content},
		{"GET /cluster Accept 0 padded", padded(chtest.Request(message.Confirmable, codes.GET, "/cluster", accept(message.TextPlain))), codes.Content},
		{"GET /ledger/head padded", padded(chtest.Request(message.Confirmable, codes.GET, "/ledger/head")), codes.Unauthorized},
		{"GET /ledger/proof?height=1 padded", padded(chtest.Request(message.Confirmable, codes.GET, "/ledger/proof", query("height=1"))), codes.Unauthorized},
		{"GET /cluster Accept 60", chtest.Request(message.Confirmable, codes.GET, "/cluster", accept(message.AppCBOR)), codes.NotAcceptable},
		{"GET / (no path)", chtest.Request(message.Confirmable, codes.GET, ""), codes.NotFound},
		{"GET /x", chtest.Request(message.Confirmable, codes.GET, "/x"), codes.NotFound},
		{"PUT /join", chtest.Request(message.Confirmable, codes.PUT, "/join"), codes.MethodNotAllowed},
		{"POST /join without Content-Format", chtest.Request(message.Confirmable, codes.POST, "/join"), codes.UnsupportedMediaType},
		{"POST /join malformed", post("/join", message.AppCoseSign1, []byte{0}), codes.BadRequest},
		{"POST /verify malformed", post("/verify", message.AppCoseEncrypt0, []byte{0}), codes.BadRequest},
		{"POST /verify unknown kid", post("/verify", message.AppCoseEncrypt0, floodProtected(t, 1)), codes.Unauthorized},
	}
}

// TestReflectionBounded: what a spoofed request draws. Each public resource
// and each refusal, asked by a source whose address no Echo verified (a
// fresh source port, which is all a spoofed source is to the CH) with the
// smallest request that reaches it, as CON and as NON: the answer is at most
// three times the request (RFC 9175 §2.4: the public resources answer 4.01
// with an Echo option instead of their content; errors fit), a NON request
// gets a NON answer and a CON one a piggybacked ACK, and the ledger is
// unchanged. The factors are logged (docs/SECURITY.md has them).
func TestReflectionBounded(t *testing.T) {
	ch := chtest.Start(t, "")
	chtest.Joined(t, ch, "sensor-a")
	before := chtest.Snap(t, ch)
	var table strings.Builder
	for _, tc := range reflectionCases(t) {
		for _, typ := range []message.Type{message.Confirmable, message.NonConfirmable} {
			t.Run(fmt.Sprintf("%s %v", tc.name, typ), func(t *testing.T) {
				req := tc.req
				req.Type = typ
				s := chtest.NewSocket(t, ch.Addr(), "")
				answer, sent, received := s.Exchange(req)
				factor := float64(received) / float64(sent)
				fmt.Fprintf(&table, "\n%-36s %v: %3d B → %3d B (%.2f×) %v", tc.name, typ, sent, received, factor, chtest.Describe(answer))
				if answer.Code != tc.code {
					t.Errorf("answered %s, want %v", chtest.Describe(answer), tc.code)
				}
				if factor > maxAmplification {
					t.Errorf("%d B answered with %d B (%.1f×): %s", sent, received, factor, chtest.Describe(answer))
				}
				want := message.Acknowledgement
				if typ == message.NonConfirmable {
					want = message.NonConfirmable
				}
				if answer.Type != want {
					t.Errorf("%v request answered %v", typ, answer.Type)
				}
			})
		}
	}
	t.Logf("answers to unverified sources:%s", table.String())
	chtest.Unchanged(t, ch, before)
}

// TestVerifiedSourceServed: a source that returns the Echo of its 4.01 gets
// the public resources' full answers (the factors are logged); the Echo is
// bound to the source, so another source port presenting it is challenged
// again.
func TestVerifiedSourceServed(t *testing.T) {
	ch := chtest.Start(t, "")
	chtest.Joined(t, ch, "sensor-a")
	before := chtest.Snap(t, ch)
	s := chtest.NewSocket(t, ch.Addr(), "")
	challenge, _, _ := s.Exchange(chtest.Request(message.NonConfirmable, codes.GET, "/cluster"))
	echo, _ := challenge.Options.GetBytes(message.Echo)
	if challenge.Code != codes.Unauthorized || len(echo) == 0 {
		t.Fatalf("GET /cluster from a new source: %s, want 4.01 with an Echo", chtest.Describe(challenge))
	}
	withEcho := message.Option{ID: message.Echo, Value: echo}
	var table strings.Builder
	for _, tc := range []struct {
		name, path string
		opts       []message.Option
		aad        []byte
	}{
		{"GET /cluster", "/cluster", nil, wire.AADCluster},
		{"GET /cluster Accept 0", "/cluster", []message.Option{accept(message.TextPlain)}, nil},
		{"GET /ledger/head", "/ledger/head", nil, wire.AADHead},
		{"GET /ledger/head Accept 0", "/ledger/head", []message.Option{accept(message.TextPlain)}, nil},
		{"GET /.well-known/core", "/.well-known/core", nil, nil},
		{"GET /ledger/checkpoint", "/ledger/checkpoint", nil, nil},
		{"GET /ledger/proof?height=1", "/ledger/proof", []message.Option{query("height=1")}, nil},
		{"GET /ledger/consistency?from=1", "/ledger/consistency", []message.Option{query("from=1")}, nil},
	} {
		answer, sent, received := s.Exchange(chtest.Request(message.NonConfirmable, codes.GET, tc.path, append(tc.opts, withEcho)...))
		fmt.Fprintf(&table, "\n%-38s %3d B → %3d B (%.1f×)", tc.name+" + Echo", sent, received, float64(received)/float64(sent))
		if answer.Code != codes.Content || answer.Type != message.NonConfirmable {
			t.Fatalf("%s with its Echo: %s", tc.name, chtest.Describe(answer))
		}
		if tc.aad != nil {
			signed, err := wire.ParseSign1(answer.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if err := signed.Verify(ch.Keys.PublicKey(), tc.aad); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
	}
	t.Logf("answers to a verified source:%s", table.String())

	other := chtest.NewSocket(t, ch.Addr(), "")
	answer, _, _ := other.Exchange(chtest.Request(message.NonConfirmable, codes.GET, "/cluster", withEcho))
	if again, _ := answer.Options.GetBytes(message.Echo); answer.Code != codes.Unauthorized || len(again) == 0 || bytes.Equal(again, echo) {
		t.Fatalf("another source's Echo: %s, want 4.01 with a new Echo", chtest.Describe(answer))
	}
	chtest.Unchanged(t, ch, before)
}

// TestStrayResponsesIgnored: messages that are not requests — an ACK or a
// NON carrying a response code with no request behind it, a Reset, an empty
// NON — are never answered as if they were requests (the CH once answered
// an ACK 2.05 with a CON 4.04, and would retransmit it); a CON response is
// rejected with a Reset (RFC 7252 §4.2), 4 bytes. Nothing reaches the ledger.
func TestStrayResponsesIgnored(t *testing.T) {
	ch := chtest.Start(t, "")
	before := chtest.Snap(t, ch)
	stray := func(typ message.Type, code codes.Code) message.Message {
		return message.Message{Type: typ, Code: code, MessageID: 0x4321, Token: []byte{1, 2, 3, 4}, Payload: []byte("stray")}
	}
	for _, m := range []message.Message{
		stray(message.Acknowledgement, codes.Content),
		stray(message.Acknowledgement, codes.NotFound),
		stray(message.NonConfirmable, codes.Content),
		stray(message.Reset, codes.Empty),
		{Type: message.NonConfirmable, Code: codes.Empty, MessageID: 0x4321},
		{Type: message.Acknowledgement, Code: codes.GET, MessageID: 0x4321, Options: message.Options{{ID: message.URIPath, Value: []byte("cluster")}}},
	} {
		t.Run(chtest.Describe(m), func(t *testing.T) {
			s := chtest.NewSocket(t, ch.Addr(), "")
			s.Send(chtest.Datagram(t, m))
			s.Silent(0x77)
		})
	}
	t.Run("CON 2.05", func(t *testing.T) {
		s := chtest.NewSocket(t, ch.Addr(), "")
		rst, sent, received := s.Exchange(stray(message.Confirmable, codes.Content))
		if rst.Type != message.Reset || rst.Code != codes.Empty || rst.MessageID != 0x4321 || received != 4 {
			t.Fatalf("CON 2.05 (%d B) answered %s (%d B), want a 4-byte Reset", sent, chtest.Describe(rst), received)
		}
	})
	chtest.Unchanged(t, ch, before)
}

// TestUnservableAcceptGets406: an Accept option naming a Content-Format the
// resource cannot answer in gets 4.06 (RFC 7252 §5.10.4, a MUST), before
// anything else is done for it; the ledger is unchanged.
func TestUnservableAcceptGets406(t *testing.T) {
	ch := chtest.Start(t, "")
	before := chtest.Snap(t, ch)
	for _, tc := range []struct {
		name string
		req  message.Message
	}{
		{"GET /cluster Accept 60", chtest.Request(message.Confirmable, codes.GET, "/cluster", accept(message.AppCBOR))},
		{"GET /cluster Accept 50", chtest.Request(message.Confirmable, codes.GET, "/cluster", accept(message.AppJSON))},
		{"GET /ledger/head Accept 16", chtest.Request(message.Confirmable, codes.GET, "/ledger/head", accept(message.AppCoseEncrypt0))},
		{"GET /.well-known/core Accept 0", chtest.Request(message.Confirmable, codes.GET, "/.well-known/core", accept(message.TextPlain))},
		{"POST /join Accept 0", func() message.Message {
			m := chtest.Request(message.Confirmable, codes.POST, "/join", contentFormat(message.AppCoseSign1), accept(message.TextPlain))
			m.Payload = floodJoin(t, nil, 1, nil)
			return m
		}()},
		{"POST /verify Accept 18", func() message.Message {
			m := chtest.Request(message.Confirmable, codes.POST, "/verify", contentFormat(message.AppCoseEncrypt0), accept(message.AppCoseSign1))
			m.Payload = floodProtected(t, 1)
			return m
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer, _, _ := chtest.NewSocket(t, ch.Addr(), "").Exchange(tc.req)
			if answer.Code != codes.NotAcceptable || string(answer.Payload) != "not acceptable" {
				t.Fatalf("answered %s, want 4.06 not acceptable", chtest.Describe(answer))
			}
		})
	}
	chtest.Unchanged(t, ch, before)
}

// TestDuplicateOfAnotherSizeIsNotReplayed: go-coap answers a retransmission
// (same source, same message ID, RFC 7252 §4.5) from its cache of answers.
// A spoofer once used it as an amplifier: one request drawing a long answer
// (a 4.15 whose diagnostic names the wanted format), then 4-byte datagrams
// with the same message ID, each answered with the cached long answer. Now
// only a datagram of the original's size is answered from the cache; a
// smaller one is a request of its own, answered within three times its size.
func TestDuplicateOfAnotherSizeIsNotReplayed(t *testing.T) {
	ch := chtest.Start(t, "")
	before := chtest.Snap(t, ch)
	s := chtest.NewSocket(t, ch.Addr(), "")
	req := chtest.Request(message.NonConfirmable, codes.POST, "/join", contentFormat(message.TextPlain))
	req.MessageID = 0x4444
	req.Payload = bytes.Repeat([]byte{'x'}, 24)
	long, sent, received := s.Exchange(req)
	if long.Code != codes.UnsupportedMediaType || received > maxAmplification*sent {
		t.Fatalf("%d B drew %s (%d B)", sent, chtest.Describe(long), received)
	}
	// Another request between: the first is no longer in flight (Exchange).
	s.Exchange(chtest.Request(message.NonConfirmable, codes.GET, "/x"))
	again, _, receivedAgain := s.Exchange(req)
	if again.Code != long.Code || receivedAgain != received {
		t.Fatalf("a retransmission drew %s (%d B), want the cached answer (%d B)", chtest.Describe(again), receivedAgain, received)
	}
	s.Exchange(chtest.Request(message.NonConfirmable, codes.GET, "/x"))
	tiny := message.Message{Type: message.NonConfirmable, Code: codes.GET, MessageID: req.MessageID}
	answer, sentTiny, receivedTiny := s.Exchange(tiny)
	if receivedTiny > maxAmplification*sentTiny {
		t.Fatalf("a %d-byte datagram with the message ID of a %d-byte request drew %d B: %s", sentTiny, sent, receivedTiny, chtest.Describe(answer))
	}
	chtest.Unchanged(t, ch, before)
}
