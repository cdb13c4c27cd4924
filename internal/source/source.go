// Package source says what one sender is, for every limit that counts per
// sender (the edge's rate limit, the coaps listener's per-source bound, the
// cluster's share of the join rate): an IPv4 address, or an IPv6 /64, the
// share of addresses one host usually holds. A host that rotates through its
// /64 is still one source.
package source

import (
	"net"
	"net/netip"
)

// Of returns ip's source as a map key: its 4 bytes, or the first 8 of an
// IPv6 address.
func Of(ip net.IP) string {
	if ip4 := ip.To4(); ip4 != nil {
		return string(ip4)
	}
	return string(ip.To16()[:8])
}

// OfAddr returns the source of addr, a "host:port" with a literal IP; an
// addr that is not one is its own source.
func OfAddr(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return addr
	}
	return Of(net.IP(ap.Addr().Unmap().AsSlice()))
}
