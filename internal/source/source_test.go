package source_test

import (
	"net"
	"testing"

	"github.com/iotguard/iotguard/internal/source"
)

// TestOf: one IPv4 address is one source, in either of Go's forms; the
// addresses of one IPv6 /64 are one source, of two /64s two.
func TestOf(t *testing.T) {
	same := [][2]string{
		{"192.0.2.7", "::ffff:192.0.2.7"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
	}
	for _, p := range same {
		if source.Of(net.ParseIP(p[0])) != source.Of(net.ParseIP(p[1])) {
			t.Errorf("%s and %s are two sources, want one", p[0], p[1])
		}
	}
	apart := [][2]string{
		{"192.0.2.7", "192.0.2.8"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
	}
	for _, p := range apart {
		if source.Of(net.ParseIP(p[0])) == source.Of(net.ParseIP(p[1])) {
			t.Errorf("%s and %s are one source, want two", p[0], p[1])
		}
	}
}

// TestOfAddr: a source is its address's, whatever the port; a string that
// is no address is its own source.
func TestOfAddr(t *testing.T) {
	for _, tc := range []struct{ addr, ip string }{
		{"192.0.2.7:5683", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7"},
		{"[2001:db8:1:2::9]:5683", "2001:db8:1:2::1"},
	} {
		if got, want := source.OfAddr(tc.addr), source.Of(net.ParseIP(tc.ip)); got != want {
			t.Errorf("OfAddr(%s) = %x, want %x", tc.addr, got, want)
		}
	}
	if got := source.OfAddr("not an address"); got != "not an address" {
		t.Errorf("OfAddr of a non-address = %q", got)
	}
}
