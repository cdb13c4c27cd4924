package clusterhead_test

import (
	"bytes"
	"net"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/wire"
)

// TestPayloadLimitBoundary: 1024 bytes of payload are read and judged on
// their content (4.00 for garbage), 1025 get 4.13 with Size1 = 1024 — at
// every POST resource — and nothing is written either way.
func TestPayloadLimitBoundary(t *testing.T) {
	ch := chtest.Start(t, "")
	conn := chtest.Raw(t, ch)
	for _, res := range []struct {
		path string
		cf   message.MediaType
	}{{"/join", message.AppCoseSign1}, {"/verify", message.AppCoseEncrypt0}, {"/session", message.AppCoseEncrypt0}, {"/leave", message.AppCoseEncrypt0}} {
		for _, n := range []int{wire.MaxPayload, wire.MaxPayload + 1} {
			before := chtest.Snap(t, ch)
			resp, err := conn.Post(chtest.Ctx(t), res.path, res.cf, bytes.NewReader(bytes.Repeat([]byte{0xa5}, n)))
			if err != nil {
				t.Fatal(err)
			}
			size1, _ := resp.GetOptionUint32(message.Size1)
			switch {
			case n == wire.MaxPayload && resp.Code() != codes.BadRequest:
				t.Errorf("%s with %d bytes: %v, want 4.00 (read, then found malformed)", res.path, n, resp.Code())
			case n > wire.MaxPayload && (resp.Code() != codes.RequestEntityTooLarge || size1 != wire.MaxPayload):
				t.Errorf("%s with %d bytes: %v Size1 %d, want 4.13 Size1 %d", res.path, n, resp.Code(), size1, wire.MaxPayload)
			}
			chtest.Unchanged(t, ch, before)
		}
	}
}

// nest wraps inner in n one-item arrays.
func nest(n int, inner []byte) []byte {
	return append(bytes.Repeat([]byte{0x81}, n), inner...)
}

// TestCBORLimitsOverUDP sends fresh joins, validly signed, whose key field
// (kept as raw CBOR until the key is parsed) holds values at and just past the
// decoder's limits (PROTOCOL.md §1: nesting over 8, arrays over 64 items, maps
// over 32 pairs). Within the limits the payload decodes and the join fails
// later, at the key ("malformed: join key"); past them decoding itself
// refuses it ("malformed: join payload"). Nothing is written either way.
func TestCBORLimitsOverUDP(t *testing.T) {
	ch := chtest.Start(t, "")
	conn := chtest.Raw(t, ch)
	arr := func(n int) []byte { // [0, 0, …] with n items (24 ≤ n < 256)
		return append([]byte{0x98, byte(n)}, make([]byte, n)...)
	}
	mp := func(n int) []byte { // {0: 0, 1: 0, …} with n pairs (24 ≤ n < 256)
		b := []byte{0xb8, byte(n)}
		for i := 0; i < n; i++ {
			if i < 24 {
				b = append(b, byte(i), 0x00)
			} else {
				b = append(b, 0x18, byte(i), 0x00)
			}
		}
		return b
	}
	cases := []struct {
		name  string
		value []byte
		over  bool
	}{
		// join-req map (1) > the value: 6 wrappers around an empty array
		// make 8 levels in all, 7 make 9.
		{"nesting of 8", nest(6, []byte{0x80}), false},
		{"nesting of 9", nest(7, []byte{0x80}), true},
		{"array of 64 items", arr(64), false},
		{"array of 65 items", arr(65), true},
		{"map of 32 pairs", mp(32), false},
		{"map of 33 pairs", mp(33), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := newJoiner(t, conn, "sensor-limits")
			j.fresh()
			j.req.Key = tc.value
			before := chtest.Snap(t, ch)
			want := "malformed: join key"
			if tc.over {
				want = "malformed: join payload"
			}
			expect(t, j.post(j.sign(j.req.ID)), codes.BadRequest, want)
			chtest.Unchanged(t, ch, before)
		})
	}
}

// TestRateLimitIsPerSourceIP: one source IP over its budget gets 4.29 with
// a Max-Age, while another source IP (127.0.0.2, also loopback) is served.
func TestRateLimitIsPerSourceIP(t *testing.T) {
	ch := chtest.Start(t, "", func(c *clusterhead.Config) { c.RateLimit = 1 }) // burst 3
	noisy := chtest.Raw(t, ch)
	limited := 0
	for i := 0; i < 10; i++ { // bounded: 10 requests
		resp, err := noisy.Get(chtest.Ctx(t), "/cluster")
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code() == codes.TooManyRequests {
			limited++
			if age, err := resp.GetOptionUint32(message.MaxAge); err != nil || age < 1 {
				t.Fatalf("4.29 without Max-Age: %d %v", age, err)
			}
		}
	}
	if limited < 5 {
		t.Fatalf("only %d of 10 requests limited at 1/s with burst 3", limited)
	}
	quiet, err := udp.Dial(ch.Addr(), options.WithDialer(&net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}}))
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	defer quiet.Close()
	if r := chtest.Get(t, quiet, "/cluster"); r.Code != codes.Content {
		t.Fatalf("another source IP: %v, want 2.05", r.Code)
	}
}
