package coapedge_test

import (
	"bytes"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/pool"
)

// TestReadBodyAtItsSize: go-coap's ReadBody, which the edge, the device
// library and the echo baseline read every payload with and go-coap marshals
// every message through, allocates the payload's size, not at least 1 KiB
// (patch 5, third_party/README.md).
func TestReadBodyAtItsSize(t *testing.T) {
	for _, n := range []int{0, 1, 1023, 1024, 1025, 4000} {
		m := pool.NewMessage(t.Context())
		want := bytes.Repeat([]byte{0x5a}, n)
		if n > 0 {
			m.SetBody(bytes.NewReader(want))
		}
		for range 2 { // a second read sees the whole payload again
			got, err := m.ReadBody()
			if err != nil || !bytes.Equal(got, want) || (n == 0) != (got == nil) || cap(got) != len(got) {
				t.Fatalf("%d bytes: ReadBody = %d bytes (cap %d), %v", n, len(got), cap(got), err)
			}
		}
	}
}
