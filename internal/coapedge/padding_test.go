package coapedge_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/iotguard/iotguard/internal/coapedge"
)

// TestPad: a padded request, as go-coap encodes it, is the smallest
// datagram of at least PaddedRequest bytes, whatever its token, path and
// body (the Padding option's header grows at 13 and 269 bytes of value); a
// request already that large gets an empty Padding option.
func TestPad(t *testing.T) {
	encode := func(m *pool.Message) []byte {
		t.Helper()
		b, err := m.MarshalWithEncoder(coder.DefaultCoder)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for token := 0; token <= 8; token++ {
		for path := 1; path <= 100; path++ {
			for _, body := range []int{0, 1, 50, 120} {
				m := pool.NewMessage(context.Background())
				m.SetCode(codes.GET)
				m.SetType(message.Confirmable)
				m.SetMessageID(1)
				m.SetToken(bytes.Repeat([]byte{7}, token))
				if err := m.SetPath("/" + strings.Repeat("p", path)); err != nil {
					t.Fatal(err)
				}
				if body > 0 {
					m.SetBody(bytes.NewReader(make([]byte, body)))
				}
				coapedge.Pad(m)
				size := len(encode(m))
				value, err := m.Options().GetBytes(coapedge.OptionPadding)
				if err != nil {
					t.Fatalf("token %d, path %d, body %d: no Padding option: %v", token, path, body, err)
				}
				if size < coapedge.PaddedRequest {
					t.Errorf("token %d, path %d, body %d: padded to %d bytes", token, path, body, size)
				}
				if len(value) == 0 {
					continue
				}
				m.SetOptionBytes(coapedge.OptionPadding, value[1:])
				if less := len(encode(m)); less >= coapedge.PaddedRequest {
					t.Errorf("token %d, path %d, body %d: padded to %d bytes, %d would do", token, path, body, size, less)
				}
			}
		}
	}
}

// TestPaddingIsElective: the Padding option is elective, safe to forward
// and no cache key (RFC 7252 §5.4.6), so a server that does not know it
// ignores it.
func TestPaddingIsElective(t *testing.T) {
	id := coapedge.OptionPadding
	if id&1 != 0 || id&2 != 0 || id&0x1e != 0x1c || id < 65000 {
		t.Errorf("Padding option %d: critical %v, unsafe %v, no cache key %v, experimental %v", id, id&1 != 0, id&2 != 0, id&0x1e == 0x1c, id >= 65000)
	}
}
