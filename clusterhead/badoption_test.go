package clusterhead_test

import (
	"fmt"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
)

// unknownCritical returns n options of class critical (odd numbers) that
// CoAP does not define, from first on, each one byte on the wire after the
// first (option delta 2, no value).
func unknownCritical(first message.OptionID, n int) []message.Option {
	opts := make([]message.Option, n)
	for i := range opts {
		opts[i] = message.Option{ID: first + message.OptionID(2*i)}
	}
	return opts
}

// TestUnknownCriticalOptionsBounded: a request with options of class
// critical the CH does not know (RFC 7252 §5.4.1) is answered 4.02 (CON) or
// not at all (NON), within the reflection bound, and under the rate limit
// like every request. go-coap answered it itself, before any check of the
// edge: with a diagnostic naming every such option, 2 to 6 bytes of answer
// per byte of request (a 7-byte request drew 36 bytes, 300 one-byte options
// 1,833), to any source, spoofed or not, and past the rate limit. (A
// request now has at most 64 options: TestManyOptionsNotKept.)
func TestUnknownCriticalOptionsBounded(t *testing.T) {
	ch := chtest.Start(t, "")
	before := chtest.Snap(t, ch)
	for _, tc := range []struct {
		name string
		opts []message.Option
	}{
		{"one", unknownCritical(13, 1)},
		{"60 of three digits", unknownCritical(293, 60)},
		{"60 of five digits", unknownCritical(10001, 60)},
	} {
		for _, path := range []string{"/x", "/verify", "/cluster", "/join"} { // with an association, and without
			for _, typ := range []message.Type{message.Confirmable, message.NonConfirmable} {
				t.Run(fmt.Sprintf("%s %s %v", tc.name, path, typ), func(t *testing.T) {
					s := chtest.NewSocket(t, ch.Addr(), "")
					req := chtest.Request(typ, codes.GET, path, tc.opts...)
					if typ == message.NonConfirmable {
						req.MessageID = 0x4242
						s.Send(chtest.Datagram(t, req))
						s.Silent(0x4243) // nothing answers the request; the probe's answer comes first
						return
					}
					answer, sent, received := s.Exchange(req)
					if answer.Code != codes.BadOption {
						t.Errorf("answered %s, want 4.02", chtest.Describe(answer))
					}
					if factor := float64(received) / float64(sent); factor > maxAmplification {
						t.Errorf("%d B answered with %d B (%.1f×): %s", sent, received, factor, chtest.Describe(answer))
					}
				})
			}
		}
	}
	chtest.Unchanged(t, ch, before)
}
