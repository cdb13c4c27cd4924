package coapedge_test

import (
	"bytes"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"

	"github.com/iotguard/iotguard/internal/coapedge"
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

// TestCodeString: codes as CoAP writes them, from the table and beyond it.
func TestCodeString(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.Content: "2.05", codes.Forbidden: "4.03", codes.ServiceUnavailable: "5.03", 0: "0.00", 0x1ff: "15.31"} {
		if got := coapedge.CodeString(c); got != want {
			t.Errorf("CodeString(%d) = %q, want %q", c, got, want)
		}
	}
}
