package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/iotguard/iotguard/internal/bench"
)

// BenchmarkBusySource measures one request from a source that already sent
// `prior` requests to the same go-coap server within EXCHANGE_LIFETIME.
// go-coap v3.8.0's UDP server scanned that source's whole response cache
// for every datagram (plgd-dev/go-coap#586), so ns/op grew with prior: one
// busy source decayed from ~5.5k to <1k req/s within 20 s. With the patched
// copy in third_party/go-coap the rows are equal; compare with benchstat,
// and against upstream with `make bench-decay-upstream`.
func BenchmarkBusySource(b *testing.B) {
	for _, prior := range []int{0, 20_000} {
		b.Run(fmt.Sprintf("prior=%d", prior), func(b *testing.B) {
			srv, err := bench.StartEcho("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			conn, err := udp.Dial(srv.Addr())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			body := bench.EchoRequest(71, 93)
			post := func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				resp, err := conn.Post(ctx, "/echo", message.AppCoseEncrypt0, bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := resp.ReadBody(); err != nil {
					b.Fatal(err)
				}
			}
			for range prior {
				post()
			}
			if prior+b.N > 60_000 { // one source has 65,536 message IDs per 247 s
				b.Fatalf("%d requests from one source: run with -benchtime=Nx, N ≤ %d", prior+b.N, 60_000-prior)
			}
			b.ResetTimer()
			for range b.N {
				post()
			}
		})
	}
}
