package coapedge_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

var errNoPSK = errors.New("no such identity")

// reasons records why associations failed.
type reasons struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *reasons) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[reason]++
}

func (r *reasons) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// startDTLS runs a coaps edge whose one resource, /whoami, answers the
// requester's PSK identity; "alice" and "bob" have PSKs.
func startDTLS(t *testing.T, dc coapedge.DTLSConfig, opts ...coapedge.Option) (*coapedge.Server, *reasons) {
	t.Helper()
	return startDTLSOn(t, "127.0.0.1:0", dc, opts...)
}

// startDTLSOn is startDTLS on addr.
func startDTLSOn(t *testing.T, addr string, dc coapedge.DTLSConfig, opts ...coapedge.Option) (*coapedge.Server, *reasons) {
	t.Helper()
	rs := &reasons{}
	dc.PSK = func(id string) ([]byte, error) {
		switch id {
		case "alice", "bob":
			return []byte("psk of " + id), nil
		}
		return nil, errNoPSK
	}
	dc.HandshakeFailed = rs.add
	srv, err := coapedge.ListenDTLS(addr, []coapedge.Resource{{
		Path: "/whoami", Method: codes.GET,
		Handle: func(_ context.Context, r *coapedge.Request) coapedge.Response {
			return coapedge.Response{Code: codes.Content, Format: message.TextPlain, Body: []byte(r.Identity)}
		},
	}}, dc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv, rs
}

// dialDTLS completes a handshake as identity with key (bounded:
// chtest.HandshakeBound).
func dialDTLS(t *testing.T, addr, identity, key string) (*client.Conn, error) {
	t.Helper()
	return dialSuite(t, addr, identity, key, piondtls.TLS_PSK_WITH_AES_128_CCM_8)
}

func dialSuite(t *testing.T, addr, identity, key string, suite piondtls.CipherSuiteID) (*client.Conn, error) {
	t.Helper()
	return chtest.DialDTLS(t, addr, identity, []byte(key), suite)
}

// handshake runs a DTLS handshake as identity with key, bounded by d, and
// returns how it ended (the association is closed at once).
func handshake(t *testing.T, addr, identity, key string, d time.Duration) error {
	t.Helper()
	conn, pc := chtest.DTLSClient(t, addr, identity, []byte(key), piondtls.TLS_PSK_WITH_AES_128_CCM_8)
	defer pc.Close()
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	return conn.HandshakeContext(ctx)
}

func whoami(t *testing.T, c *client.Conn) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "/whoami")
	if err != nil {
		return "", err
	}
	b, err := resp.ReadBody()
	return string(b), err
}

// TestDTLSIdentity: a handler sees the PSK identity its client proved, for
// each suite the edge offers.
func TestDTLSIdentity(t *testing.T) {
	srv, _ := startDTLS(t, coapedge.DTLSConfig{})
	for _, suite := range coapedge.CipherSuites {
		c, err := dialSuite(t, srv.Addr().String(), "bob", "psk of bob", suite)
		if err != nil {
			t.Fatalf("%v: %v", suite, err)
		}
		if who, err := whoami(t, c); err != nil || who != "bob" {
			t.Errorf("%v: /whoami = %q, %v", suite, who, err)
		}
		c.Close()
	}
}

// TestDTLSHandshakeFailures: an unknown identity and a member's identity
// with a wrong key fail the handshake the same way — the server says
// nothing, and each handshake ends at the client's own bound — so a
// handshake does not tell which IDs are members; only the metric reason
// differs, and neither is passed to the error hook (any client can fail
// handshakes at will). A member with its key still connects.
func TestDTLSHandshakeFailures(t *testing.T) {
	rec := &recorder{}
	srv, rs := startDTLS(t, coapedge.DTLSConfig{HandshakeTimeout: 2 * time.Second}, coapedge.WithErrors(rec.error))
	addr := srv.Addr().String()
	tries := []struct{ identity, key string }{{"mallory", "any key"}, {"alice", "not alice's key"}}
	errs := make([]error, len(tries))
	var wg sync.WaitGroup
	for i, try := range tries {
		wg.Go(func() { errs[i] = handshake(t, addr, try.identity, try.key, 5*time.Second) })
	}
	wg.Wait()
	for i, err := range errs {
		var alert interface{ IsFatalOrCloseNotify() bool }
		switch {
		case err == nil:
			t.Fatalf("%s: handshake completed", tries[i].identity)
		case errors.As(err, &alert):
			t.Errorf("%s: the server answered with an alert: %v", tries[i].identity, err)
		case !errors.Is(err, context.DeadlineExceeded):
			t.Errorf("%s: %v, want the client's own deadline", tries[i].identity, err)
		}
	}
	waitFor(t, func() bool {
		return rs.get(coapedge.HandshakeUnknownIdentity) == 1 && rs.get(coapedge.HandshakeBadPSK) == 1
	}, "unknown identity and bad PSK counted once each")
	c, err := dialDTLS(t, addr, "alice", "psk of alice")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if who, err := whoami(t, c); err != nil || who != "alice" {
		t.Fatalf("/whoami = %q, %v", who, err)
	}
	// go-coap reports a failed handshake right after it is counted: by the
	// time alice is served, it would have been.
	if _, errs := rec.seen(); len(errs) != 0 {
		t.Errorf("failed handshakes reported as errors: %v", errs)
	}
}

// TestDTLSCloseIdentity: CloseIdentity ends every association of one
// identity, and only those: no request of it is served after.
func TestDTLSCloseIdentity(t *testing.T) {
	srv, _ := startDTLS(t, coapedge.DTLSConfig{})
	alice, err := dialDTLS(t, srv.Addr().String(), "alice", "psk of alice")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := dialDTLS(t, srv.Addr().String(), "bob", "psk of bob")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	for _, c := range []*client.Conn{alice, bob} {
		if _, err := whoami(t, c); err != nil {
			t.Fatal(err)
		}
	}
	srv.CloseIdentity("alice")
	// The association closes at once, or, if the server was still ending
	// the request before (its answer written, its count not yet down), a
	// short grace later: a request in that time is refused, never served.
	if who, err := whoami(t, alice); err == nil && who != "unauthorized: session ended" {
		t.Fatalf("alice's association still answered %q after CloseIdentity", who)
	}
	if who, err := whoami(t, bob); err != nil || who != "bob" {
		t.Fatalf("bob's association: %q, %v", who, err)
	}
}

// TestDTLSCapacity: associations beyond the per-source bound, when every
// place is held by an established association, are refused before any
// handshake state is kept, and counted; closing one frees its place. (A
// handshake not yet complete gives its place instead:
// TestSpoofedHellosDoNotLockOutMembers.)
func TestDTLSCapacity(t *testing.T) {
	srv, rs := startDTLS(t, coapedge.DTLSConfig{MaxPerSource: 2})
	var open []*client.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range 2 {
		c, err := dialDTLS(t, srv.Addr().String(), "bob", "psk of bob")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		// Served: established at the server too (the client may finish
		// its handshake a moment before the server records it).
		if who, err := whoami(t, c); err != nil || who != "bob" {
			t.Fatalf("/whoami = %q, %v", who, err)
		}
	}
	if c, err := dialDTLS(t, srv.Addr().String(), "bob", "psk of bob"); err == nil {
		c.Close()
		t.Fatal("a third association from one source completed")
	}
	if rs.get(coapedge.HandshakeCapacity) == 0 {
		t.Fatal("the refused association was not counted")
	}
	open[0].Close()
	waitFor(t, func() bool {
		c, err := dialDTLS(t, srv.Addr().String(), "bob", "psk of bob")
		if err != nil {
			return false
		}
		open = append(open, c)
		return true
	}, "a place freed by a closed association")
}

// TestDTLSPerSourceIsPerSlash64: the per-source bound of coaps associations
// counts an IPv6 /64 as one source, as the rate limit does: one host cannot
// hold MaxPerSource associations from each address of its /64.
func TestDTLSPerSourceIsPerSlash64(t *testing.T) {
	admit := coapedge.DTLSAdmitter(2)
	addr := func(ip string, port int) net.Addr { return &net.UDPAddr{IP: net.ParseIP(ip), Port: port} }
	for i, a := range []string{"2001:db8::1", "2001:db8::2"} {
		if !admit(addr(a, 5684)) {
			t.Fatalf("association %d of the /64 refused", i+1)
		}
	}
	if admit(addr("2001:db8::ffff:3", 5684)) {
		t.Fatal("a third association from the same /64 (another address) admitted")
	}
	if !admit(addr("2001:db8:0:1::1", 5684)) {
		t.Fatal("an association from another /64 refused")
	}
	for i, a := range []string{"192.0.2.1", "::ffff:192.0.2.1"} { // an IPv4 address is a source of its own
		if !admit(addr(a, 5684+i)) {
			t.Fatalf("association %d of 192.0.2.1 refused", i+1)
		}
	}
	if admit(addr("192.0.2.1", 9999)) {
		t.Fatal("a third association from 192.0.2.1 admitted")
	}
}

// TestDTLSCapacityIPv6: the per-source bound over a real IPv6 socket (::1,
// the one IPv6 address a test can send from).
func TestDTLSCapacityIPv6(t *testing.T) {
	if ln, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	srv, rs := startDTLSOn(t, "[::1]:0", coapedge.DTLSConfig{MaxPerSource: 2})
	for range 2 {
		c, err := dialDTLS(t, srv.Addr().String(), "bob", "psk of bob")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if who, err := whoami(t, c); err != nil || who != "bob" {
			t.Fatalf("/whoami over ::1 = %q, %v", who, err)
		}
	}
	// Refused silently: the client waits out its own bound (3 s), and each
	// ClientHello it retransmits is refused and counted again.
	if err := handshake(t, srv.Addr().String(), "bob", "psk of bob", 3*time.Second); err == nil {
		t.Fatal("a third association from ::1 completed")
	}
	if rs.get(coapedge.HandshakeCapacity) == 0 {
		t.Fatal("the refused association was not counted")
	}
}

// waitFor polls cond (bounded: 150 × 100 ms).
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for range 150 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
