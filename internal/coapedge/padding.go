package coapedge

import (
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/pool"
)

// PaddedRequest is the size from which a request to a Padded resource is
// served before its source's address is verified: the client paid for the
// answer in bytes, as a QUIC client pads its first datagram (RFC 9000 §8.1),
// and the answer is still at most maxAmplification times the request
// (bound) or it becomes the Echo challenge. 128 bytes cover a signed
// /cluster answer with its Echo (~290 bytes) and spare a joining device the
// challenge's round trip (docs/PROTOCOL.md §2).
const PaddedRequest = 128

// OptionPadding is the Padding option (docs/PROTOCOL.md §2), a number from
// the experimental range of RFC 7252 §12.2: elective, safe to forward and
// not part of the cache key (65020 & 0x1f = 0x1c), so that a server that
// does not know it ignores it. Its value is zeros; it only adds to the size.
const OptionPadding message.OptionID = 65020

// Pad gives req a Padding option that makes it the smallest datagram of at
// least PaddedRequest bytes (an empty one if req is that large already):
// what a client sends to have a Padded resource answer it at once.
func Pad(req *pool.Message) {
	req.SetOptionBytes(OptionPadding, nil)
	need := PaddedRequest - requestSize(req) // bytes the value has to add
	n := max(need-2, 0)                      // its length's extension is at most 2 bytes
	for n+lengthExtension(n) < need {
		n++
	}
	req.SetOptionBytes(OptionPadding, make([]byte, n))
}

// lengthExtension is how many bytes an option value of n bytes adds to its
// option's header to encode its length (RFC 7252 §3.1).
func lengthExtension(n int) int {
	switch {
	case n < 13:
		return 0
	case n < 269:
		return 1
	default:
		return 2
	}
}
