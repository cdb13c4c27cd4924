package coapbody

import (
	"bytes"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/pool"
)

func TestRead(t *testing.T) {
	for _, n := range []int{0, 1, 1023, 1024, 1025, 4000} {
		m := pool.NewMessage(t.Context())
		want := bytes.Repeat([]byte{0x5a}, n)
		if n > 0 {
			m.SetBody(bytes.NewReader(want))
		}
		for range 2 { // a second read sees the whole payload again
			got, err := Read(m)
			if err != nil || !bytes.Equal(got, want) || (n == 0) != (got == nil) || cap(got) != len(got) {
				t.Fatalf("%d bytes: Read = %d bytes (cap %d), %v", n, len(got), cap(got), err)
			}
		}
	}
}
