package coapedge_test

import (
	"context"
	"runtime"
	"slices"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

func heapBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// manyOptions returns a NON GET /stuck of size bytes, the rest Accept
// options with no value, repeated: one byte each on the wire (option delta
// 0, after one of delta 6 from Uri-Path's 11).
func manyOptions(mid uint16, size int) []byte {
	d := []byte{0x50, 0x01, byte(mid >> 8), byte(mid), 0xb5, 's', 't', 'u', 'c', 'k', 0x60}
	for len(d) < size {
		d = append(d, 0x00)
	}
	return d
}

// TestManyOptionsNotKept: a datagram of thousands of one-byte options made
// go-coap hold 32 bytes of heap per byte received (an Option each, in a
// slice grown by doubling) for as long as the request waited in its
// association's queue: 2 associations behind a stuck handler, 16 queued
// datagrams of 16 KiB each (512 KiB sent), held 16 MiB. A request has at
// most message.MaxOptions options (third_party/README.md, patch 12); one
// with more is not CoAP the edge reads: dropped, counted as malformed.
func TestManyOptionsNotKept(t *testing.T) {
	gate, entered := make(chan struct{}), make(chan struct{}, 8)
	rec := &recorder{}
	srv := serve(t, []coapedge.Resource{
		{Path: "/stuck", Method: codes.GET, Handle: func(context.Context, *coapedge.Request) coapedge.Response {
			entered <- struct{}{}
			<-gate
			return coapedge.Response{Code: codes.Content}
		}},
	}, coapedge.WithObserver(rec), coapedge.WithRateLimit(0))
	t.Cleanup(func() { close(gate) }) // before Close: the stuck handlers return
	const associations, queued, size = 2, 16, 16 << 10
	var sockets []*chtest.Socket
	for range associations {
		s := chtest.NewSocket(t, srv.Addr().String(), "127.0.0.1:0")
		m := chtest.Request(message.NonConfirmable, codes.GET, "/stuck")
		m.MessageID = 1
		s.Send(chtest.Datagram(t, m))
		<-entered // its association's handler is stuck: what it sends next waits in its queue
		sockets = append(sockets, s)
	}
	before := heapBytes()
	for _, s := range sockets {
		for i := range queued {
			s.Send(manyOptions(uint16(0x100+i), size))
		}
	}
	// Everything sent has been read once a probe from a third source is
	// answered (one read loop).
	probe := chtest.NewSocket(t, srv.Addr().String(), "127.0.0.1:0")
	if a, _, _ := probe.Exchange(chtest.Request(message.NonConfirmable, codes.GET, "/nothing")); a.Code != codes.NotFound {
		t.Fatalf("probe: %s", chtest.Describe(a))
	}
	grew := int64(heapBytes()) - int64(before)
	sent := associations * queued * size
	t.Logf("heap grew %d KiB for %d KiB sent", grew>>10, sent>>10)
	if dropped, _ := rec.drops(); !slices.Contains(dropped, coapedge.DropMalformed) {
		t.Errorf("dropped %v, want %q among them", dropped, coapedge.DropMalformed)
	}
	if grew > int64(2*sent) {
		t.Fatalf("heap grew %d KiB for %d KiB of datagrams waiting: %.0f× what was sent", grew>>10, sent>>10, float64(grew)/float64(sent))
	}
}
