package clusterhead_test

import (
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
)

// TestRateLimit: past its burst, a source gets 4.29 and nothing is decoded.
func TestRateLimit(t *testing.T) {
	ch := chtest.Start(t, "", func(c *clusterhead.Config) { c.RateLimit = 1 }) // burst 3
	conn := chtest.Raw(t, ch)
	before := chtest.Snap(t, ch)
	var limited int
	for i := 0; i < 10; i++ { // bounded: 10 requests
		if r := chtest.Post(t, conn, "/join", message.AppCoseSign1, []byte("x")); r.Code == codes.TooManyRequests {
			if r.Diagnostic != "rate limited" {
				t.Fatalf("4.29 diagnostic %q", r.Diagnostic)
			}
			limited++
		}
	}
	if limited < 5 {
		t.Fatalf("only %d of 10 requests limited at 1/s with burst 3", limited)
	}
	chtest.Unchanged(t, ch, before)
}

// FuzzRequests feeds arbitrary payloads to every POST resource of a real CH
// through its Core: nothing panics and nothing reaches the ledger.
func FuzzRequests(f *testing.F) {
	f.Add(byte(0), []byte{0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x40, 0x40})
	f.Add(byte(1), []byte{0x83, 0x43, 0xa1, 0x01, 0x01, 0xa2, 0x04, 0x41, 'a', 0x06, 0x41, 0x00, 0x50})
	f.Add(byte(2), []byte("garbage"))
	ch := chtest.Start(f, "")
	before := chtest.Snap(f, ch)
	f.Fuzz(func(t *testing.T, which byte, payload []byte) {
		ctx := chtest.Ctx(t)
		switch which % 4 {
		case 0:
			_, _ = ch.Core.Join(ctx, payload, "127.0.0.1:1")
		case 1:
			_, _ = ch.Core.Verify(ctx, payload, "127.0.0.1:1")
		case 2:
			_, _ = ch.Core.Session(ctx, payload, "127.0.0.1:1")
		default:
			_, _ = ch.Core.Leave(ctx, payload, "127.0.0.1:1")
		}
		chtest.Unchanged(t, ch, before)
	})
}
