package clusterhead_test

import (
	"bytes"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/iotguard/iotguard/internal/bench"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/wire"
)

// BenchmarkVerifyTransports times one member's /verify round trips over
// loopback, in one run: the bare CoAP echo on the same edge (the floor),
// /verify as COSE_Encrypt0 over CoAP, /verify as plain CBOR over an open
// coaps association, and, apart, a whole DTLS handshake. Compare the ns/op
// of the same run (docs/PERFORMANCE.md).
func BenchmarkVerifyTransports(b *testing.B) {
	ch := startCoaps(b)
	a := chtest.Joined(b, ch, "sensor-a")
	chtest.Joined(b, ch, "sensor-b")
	verify := testMarshal(b, &wire.VerifyRequest{Peer: "sensor-b"})

	b.Run("echo", func(b *testing.B) {
		srv, err := bench.StartEcho("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		c, err := udp.Dial(srv.Addr())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		body := bench.EchoRequest(len(verify)+40, 93)
		for b.Loop() {
			if _, err := c.Post(chtest.Ctx(b), "/echo", message.AppCoseEncrypt0, bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cose", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.Verify(chtest.Ctx(b), "sensor-b"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("coaps", func(b *testing.B) {
		c, err := coaps(b, ch, a, nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := c.Post(chtest.Ctx(b), "/verify", message.AppCBOR, bytes.NewReader(verify)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("coaps-handshake", func(b *testing.B) {
		for b.Loop() {
			c, err := coaps(b, ch, a, nil)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}
