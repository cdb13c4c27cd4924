package coapedge

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	coapnet "github.com/plgd-dev/go-coap/v3/net"
)

// toGroup reports whether a datagram came to a group address — multicast,
// the IPv4 limited broadcast, or the directed broadcast of one of the
// host's IPv4 networks (192.0.2.255 for 192.0.2.2/24) — as its control
// message cm says (nil when the socket gives none). IoT-Guard has no group
// requests (docs/PROTOCOL.md §2), and a datagram sent to a group reaches
// every CoAP server of the link that listens on the wildcard address (every
// Linux host is in 224.0.0.1 and ff02::1): one request with a spoofed source
// would draw an answer from each, N times the reflection bound (RFC 7252
// §11.3). Such a datagram is dropped unanswered (DropGroup), before go-coap
// makes anything for it.
func (s *Server) toGroup(cm *coapnet.ControlMessage) bool {
	if cm == nil || cm.Dst == nil {
		return false
	}
	return cm.Dst.IsMulticast() || cm.Dst.Equal(net.IPv4bcast) || s.broadcasts.has(cm.Dst, s.cfg.now())
}

// broadcastsTTL is how long the host's directed broadcast addresses are
// used before they are read again: interfaces come and go (DHCP, VPNs).
const broadcastsTTL = 10 * time.Second

// broadcasts knows the directed broadcast addresses of the host's IPv4
// networks, read from its interfaces at most once per broadcastsTTL, on the
// first datagram after it (a few interfaces: tens of microseconds).
type broadcasts struct {
	set atomic.Pointer[broadcastSet]
}

type broadcastSet struct {
	read  time.Time
	addrs map[netip.Addr]bool
}

// has reports whether dst is one of the directed broadcast addresses at now.
func (b *broadcasts) has(dst net.IP, now time.Time) bool {
	ip, ok := netip.AddrFromSlice(dst)
	if !ok || !ip.Unmap().Is4() {
		return false
	}
	set := b.set.Load()
	if set == nil || now.Sub(set.read) >= broadcastsTTL {
		set = &broadcastSet{read: now, addrs: hostBroadcasts()}
		b.set.Store(set)
	}
	return set.addrs[ip.Unmap()]
}

// hostBroadcasts returns the directed broadcast address of each IPv4
// network of the host's interfaces; none for a /31 or a /32, which have
// none (RFC 3021). An interface that cannot be read adds nothing.
func hostBroadcasts() map[netip.Addr]bool {
	addrs := map[netip.Addr]bool{}
	ifaces, err := net.Interfaces()
	if err != nil {
		return addrs
	}
	for _, ifi := range ifaces {
		as, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			n, ok := a.(*net.IPNet)
			if !ok || len(n.Mask) != net.IPv4len {
				continue
			}
			ip4 := n.IP.To4()
			if ones, _ := n.Mask.Size(); ip4 == nil || ones >= 31 {
				continue
			}
			var b [4]byte
			for i := range b {
				b[i] = ip4[i] | ^n.Mask[i]
			}
			addrs[netip.AddrFrom4(b)] = true
		}
	}
	return addrs
}
