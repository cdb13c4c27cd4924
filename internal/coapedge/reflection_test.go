package coapedge_test

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// Handler calls of the reflection resources.
var largeCalls, bigCalls, paddedCalls atomic.Int64

var (
	bigAnswer    = bytes.Repeat([]byte{0xb1}, 300)
	paddedAnswer = bytes.Repeat([]byte{0xb2}, 400) // a 407-byte datagram to a request without a token
)

// reflectionResources: /large (Large: verified sources only), /padded
// (Large and Padded: padded requests too), /bigger (an answer too large for
// an unverified source, not marked Large), /authentic (as large, from a
// request that authenticated) and /long-error (an error with a 200-byte
// diagnostic).
func reflectionResources() []coapedge.Resource {
	answer := func(calls *atomic.Int64, authenticated bool) coapedge.Handler {
		return func(context.Context, *coapedge.Request) coapedge.Response {
			if calls != nil {
				calls.Add(1)
			}
			return coapedge.Response{Code: codes.Content, Format: message.AppOctets, Body: bigAnswer, Authenticated: authenticated}
		}
	}
	padded := func(context.Context, *coapedge.Request) coapedge.Response {
		paddedCalls.Add(1)
		return coapedge.Response{Code: codes.Content, Format: message.AppOctets, Body: paddedAnswer}
	}
	octets := []message.MediaType{message.AppOctets}
	return []coapedge.Resource{
		{Path: "/large", Method: codes.GET, Answers: []message.MediaType{message.AppOctets, message.TextPlain}, Large: true,
			Link: `rt="test.large"`, Handle: answer(&largeCalls, false)},
		{Path: "/padded", Method: codes.GET, Answers: octets, Large: true, Padded: true, Handle: padded},
		{Path: "/bigger", Method: codes.GET, Answers: octets, Handle: answer(&bigCalls, false)},
		{Path: "/authentic", Method: codes.GET, Answers: octets, Handle: answer(nil, true)},
		{Path: "/long-error", Method: codes.GET, Handle: func(context.Context, *coapedge.Request) coapedge.Response {
			return coapedge.Diagnostic(codes.BadRequest, strings.Repeat("x", 200))
		}},
	}
}

// readVerified GETs path the way a client that follows RFC 9175 does: a
// 4.01 with an Echo option is answered by the same request carrying it.
func readVerified(t *testing.T, c *client.Conn, path string) (codes.Code, string) {
	t.Helper()
	code, body, _ := read(t, c, codes.GET, path, 0, nil)
	if code != codes.Unauthorized {
		return code, body
	}
	req, err := c.NewGetRequest(ctx(t), path)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	echo, err := resp.Echo()
	if err != nil {
		t.Fatalf("4.01 without an Echo option")
	}
	code, body, _ = read(t, c, codes.GET, path, 0, nil, message.Option{ID: message.Echo, Value: echo})
	return code, body
}

// TestReflectionBound: to a source whose address no Echo verified, no
// answer is larger than three times its request (RFC 9175 §2.4), whatever
// the resource; a resource marked Large challenges before its handler runs,
// another one after; an error loses its diagnostic; an authenticated answer
// and an answer to a request carrying the source's Echo are served whole.
// Each request is the smallest that reaches its resource (no token; paths of
// at least 5 characters, like every real one: a 20-byte Echo challenge is 27
// bytes, within 3× of a 9-byte request), as
// NON (answered NON) and as CON (answered with a piggybacked ACK).
func TestReflectionBound(t *testing.T) {
	srv, _ := listen(t)
	for _, typ := range []message.Type{message.NonConfirmable, message.Confirmable} {
		want := message.NonConfirmable
		if typ == message.Confirmable {
			want = message.Acknowledgement
		}
		exchange := func(s *chtest.Socket, path string, opts ...message.Option) (message.Message, float64) {
			t.Helper()
			answer, sent, received := s.Exchange(chtest.Request(typ, codes.GET, path, opts...))
			if answer.Type != want {
				t.Errorf("%v GET %s answered %v", typ, path, answer.Type)
			}
			return answer, float64(received) / float64(sent)
		}
		s := chtest.NewSocket(t, srv.Addr().String(), "")
		large0, big0 := largeCalls.Load(), bigCalls.Load()
		for _, tc := range []struct {
			path string
			code codes.Code
			echo bool // a 4.01 with an Echo option
		}{
			{"/large", codes.Unauthorized, true},
			{"/bigger", codes.Unauthorized, true},
			{"/long-error", codes.BadRequest, false},
			{"/nothing", codes.NotFound, false},
		} {
			answer, factor := exchange(s, tc.path)
			echo, _ := answer.Options.GetBytes(message.Echo)
			if answer.Code != tc.code || (len(echo) > 0) != tc.echo || factor > coapedge.MaxAmplification {
				t.Errorf("%v GET %s from an unverified source: %.1f× %s", typ, tc.path, factor, chtest.Describe(answer))
			}
		}
		if n := largeCalls.Load() - large0; n != 0 {
			t.Errorf("/large's handler ran %d times for an unverified source", n)
		}
		if n := bigCalls.Load() - big0; n != 1 {
			t.Errorf("/bigger's handler ran %d times, want 1 (its answer then replaced)", n)
		}

		challenge, _ := exchange(s, "/large")
		echo, _ := challenge.Options.GetBytes(message.Echo)
		withEcho := message.Option{ID: message.Echo, Value: echo}
		for _, path := range []string{"/large", "/bigger"} {
			if answer, _ := exchange(s, path, withEcho); answer.Code != codes.Content || !bytes.Equal(answer.Payload, bigAnswer) {
				t.Errorf("%v GET %s with its Echo: %s", typ, path, chtest.Describe(answer))
			}
		}
		if answer, _ := exchange(s, "/authentic"); answer.Code != codes.Content || !bytes.Equal(answer.Payload, bigAnswer) {
			t.Errorf("%v GET /authentic: %s", typ, chtest.Describe(answer))
		}
		other := chtest.NewSocket(t, srv.Addr().String(), "")
		if answer, factor := exchange(other, "/large", withEcho); answer.Code != codes.Unauthorized || factor > coapedge.MaxAmplification {
			t.Errorf("%v GET /large with another source's Echo: %.1f× %s", typ, factor, chtest.Describe(answer))
		}
	}
}

// TestPaddedRequest: a request padded to PaddedRequest bytes reaches a
// Padded resource without an Echo, its handler runs once, and its answer is
// still at most three times the request (else the Echo challenge); one byte
// less, or a Large resource not marked Padded, is challenged before any
// handler runs, as an unpadded request is.
func TestPaddedRequest(t *testing.T) {
	srv, _ := listen(t)
	s := chtest.NewSocket(t, srv.Addr().String(), "")
	for _, tc := range []struct {
		path     string
		size     int
		code     codes.Code
		padded   int64 // runs of /padded's handler
		largeRan bool
	}{
		{"/padded", 0, codes.Unauthorized, 0, false},
		{"/padded", coapedge.PaddedRequest - 1, codes.Unauthorized, 0, false},
		{"/padded", coapedge.PaddedRequest, codes.Unauthorized, 1, false}, // 407 > 3 × 128: run, then replaced
		{"/padded", (len(paddedAnswer) + 7 + 2) / 3, codes.Content, 1, false},
		{"/large", 200, codes.Unauthorized, 0, false},
	} {
		p0, l0 := paddedCalls.Load(), largeCalls.Load()
		m := chtest.Request(message.Confirmable, codes.GET, tc.path)
		if tc.size > 0 {
			m = chtest.Padded(t, m, tc.size)
		}
		answer, sent, received := s.Exchange(m)
		echo, _ := answer.Options.GetBytes(message.Echo)
		if answer.Code != tc.code || (tc.code == codes.Unauthorized) != (len(echo) > 0) ||
			float64(received) > coapedge.MaxAmplification*float64(sent) {
			t.Errorf("GET %s padded to %d bytes (%d): %d bytes back, %s", tc.path, tc.size, sent, received, chtest.Describe(answer))
		}
		if tc.code == codes.Content && !bytes.Equal(answer.Payload, paddedAnswer) {
			t.Errorf("GET %s padded to %d bytes: not the whole answer", tc.path, tc.size)
		}
		if n := paddedCalls.Load() - p0; n != tc.padded {
			t.Errorf("GET %s padded to %d bytes: /padded's handler ran %d times, want %d", tc.path, tc.size, n, tc.padded)
		}
		if n := largeCalls.Load() - l0; n != 0 {
			t.Errorf("GET %s padded to %d bytes: /large's handler ran %d times for an unverified source", tc.path, tc.size, n)
		}
	}
}

// TestNotARequestDropped: what is not a request is never answered as one:
// an ACK or a NON response, a Reset, an empty NON are dropped and counted,
// a CON response is rejected with a Reset, the ping gets its Reset.
func TestNotARequestDropped(t *testing.T) {
	srv, rec := listen(t)
	s := chtest.NewSocket(t, srv.Addr().String(), "")
	for i, m := range []message.Message{
		{Type: message.Acknowledgement, Code: codes.Content, MessageID: 1, Token: []byte{1}},
		{Type: message.NonConfirmable, Code: codes.Content, MessageID: 2, Token: []byte{2}},
		{Type: message.Reset, Code: codes.Empty, MessageID: 3},
		{Type: message.NonConfirmable, Code: codes.Empty, MessageID: 4},
	} {
		s.Send(chtest.Datagram(t, m))
		s.Silent(uint16(100 + i))
		if dropped, _ := rec.drops(); len(dropped) != i+1 || dropped[i] != coapedge.DropNotRequest {
			t.Errorf("%s: dropped %v", chtest.Describe(m), dropped)
		}
	}
	for _, m := range []message.Message{
		{Type: message.Confirmable, Code: codes.Content, MessageID: 5, Token: []byte{5}, Payload: []byte("stray")},
		{Type: message.Confirmable, Code: codes.Empty, MessageID: 6}, // ping
	} {
		rst, _, received := s.Exchange(m)
		if rst.Type != message.Reset || rst.Code != codes.Empty || rst.MessageID != m.MessageID || received != 4 {
			t.Errorf("%s answered %s", chtest.Describe(m), chtest.Describe(rst))
		}
	}
}
