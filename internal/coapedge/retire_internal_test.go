package coapedge

import (
	"net"
	"testing"
	"time"
)

// TestHandshakeAcrossRetireIsRetired: a handshake that began before its
// identity's PSK died may have run under the dead PSK, and registered only
// after closeIdentity looked for it; it is retired as it completes. One
// that began after is kept.
func TestHandshakeAcrossRetireIsRetired(t *testing.T) {
	g := newDTLSGuard(DTLSConfig{}.withDefaults())
	association := func(begun time.Time) *association {
		c, peer := net.Pipe()
		t.Cleanup(func() { peer.Close(); c.Close() })
		a := &association{Conn: c, g: g, source: "s", begun: begun, identity: "alice"}
		g.total++
		g.bySource["s"]++
		return a
	}
	before := association(time.Now().Add(-time.Second))
	g.closeIdentity("alice") // alice rejoined while before's handshake ran
	after := association(time.Now().Add(time.Second))
	g.established(before)
	g.established(after)
	if !before.retired {
		t.Error("a handshake begun before its PSK died was kept")
	}
	if after.retired {
		t.Error("a handshake begun after its PSK died was retired")
	}
	if n := len(g.byIdentity["alice"]); n != 1 {
		t.Errorf("%d associations of alice registered, want the one kept", n)
	}
}
