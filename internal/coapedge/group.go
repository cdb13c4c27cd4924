package coapedge

import (
	"net"

	coapnet "github.com/plgd-dev/go-coap/v3/net"
)

// toGroup reports whether a datagram came to a group address — multicast,
// or the IPv4 limited broadcast — as its control message cm says (nil when
// the socket gives none). IoT-Guard has no group requests (docs/PROTOCOL.md
// §2), and a datagram sent to a group reaches every CoAP server of the link
// that listens on the wildcard address (every Linux host is in 224.0.0.1
// and ff02::1): one request with a spoofed source would draw an answer from
// each, N times the reflection bound (RFC 7252 §11.3). Such a datagram is
// dropped unanswered (DropGroup), before go-coap makes anything for it.
// A subnet's directed broadcast (e.g. 192.0.2.255) looks like a unicast
// address here and is not recognised.
func toGroup(cm *coapnet.ControlMessage) bool {
	return cm != nil && cm.Dst != nil && (cm.Dst.IsMulticast() || cm.Dst.Equal(net.IPv4bcast))
}
