package coapedge_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// clientHello returns the first datagram a DTLS client sends: a ClientHello
// without a cookie, what a spoofer sends (it never sees the
// HelloVerifyRequest, so it never gets further).
func clientHello(t *testing.T) []byte {
	t.Helper()
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	conn, pc := chtest.DTLSClient(t, sink.LocalAddr().String(), "mallory", []byte("any key"), piondtls.TLS_PSK_WITH_AES_128_CCM_8)
	defer pc.Close()
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	go func() { _ = conn.HandshakeContext(ctx) }()
	buf := make([]byte, 2048)
	if err := sink.SetReadDeadline(time.Now().Add(chtest.HandshakeBound)); err != nil {
		t.Fatal(err)
	}
	n, _, err := sink.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no ClientHello: %v", err)
	}
	return buf[:n]
}

// spoofHello sends hello to addr from laddr (a host:port on loopback, as a
// spoofer would claim any address) and reports whether the server answered
// it: a HelloVerifyRequest, sent once the server made the association.
func spoofHello(t *testing.T, addr, laddr string, hello []byte) bool {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	local, err := net.ResolveUDPAddr("udp", laddr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", local, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 2048))
	return err == nil
}

// TestSpoofedHellosDoNotLockOutMembers: ClientHellos from spoofed sources —
// which never return the HelloVerifyRequest's cookie, so their address is
// never verified — do not keep a member out. The edge makes an association
// for a ClientHello before the cookie exchange (pion's listener), and each
// held its place for the whole handshake timeout: 1,024 spoofed datagrams
// every 10 s (4 per source, from 256 made-up addresses) kept every new coaps
// client out, and 4 every 10 s naming a member's address kept that member
// out. An association whose handshake has not completed now gives its place
// to a newcomer when there is no other: a spoofer has to outpace every
// handshake in flight, and established associations are never pushed out.
func TestSpoofedHellosDoNotLockOutMembers(t *testing.T) {
	hello := clientHello(t)
	tests := []struct {
		name     string
		dc       coapedge.DTLSConfig
		spoofed  func(i int) string // the i-th spoofed source
		spoofers int                // as many as fill the places bob's association left
	}{
		{"total", coapedge.DTLSConfig{MaxAssociations: 4, MaxPerSource: 4},
			func(i int) string { return fmt.Sprintf("127.0.0.%d:0", i+2) }, 3},
		{"member's source", coapedge.DTLSConfig{MaxAssociations: 64, MaxPerSource: 2},
			func(int) string { return "127.0.0.1:0" }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rs := startDTLS(t, tt.dc)
			addr := srv.Addr().String()
			bob, err := dialDTLS(t, addr, "bob", "psk of bob") // established before the flood, from 127.0.0.1
			if err != nil {
				t.Fatal(err)
			}
			// Served: the server has recorded bob's handshake as complete
			// (the client may finish a moment before it does, and a
			// handshake not complete may give its place to a newcomer).
			if who, err := whoami(t, bob); err != nil || who != "bob" {
				t.Fatalf("bob: /whoami = %q, %v", who, err)
			}
			for i := range tt.spoofers {
				if !spoofHello(t, addr, tt.spoofed(i), hello) {
					t.Fatalf("spoofed ClientHello %d got no HelloVerifyRequest: no association made", i)
				}
			}
			alice, err := dialDTLS(t, addr, "alice", "psk of alice")
			if err != nil {
				t.Fatalf("alice's handshake after %d spoofed ClientHellos: %v (capacity refusals: %d)",
					tt.spoofers, err, rs.get(coapedge.HandshakeCapacity))
			}
			if who, err := whoami(t, alice); err != nil || who != "alice" {
				t.Fatalf("alice: /whoami = %q, %v", who, err)
			}
			if who, err := whoami(t, bob); err != nil || who != "bob" {
				t.Fatalf("bob's established association: /whoami = %q, %v", who, err)
			}
		})
	}
}
