package chtest

import (
	"context"
	"net"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp/client"
)

// HandshakeBound bounds a test's DTLS handshake. A PSK handshake on
// loopback takes milliseconds; a refused one gets no answer (the server
// tells nothing), so this is what each refusal costs a test.
const HandshakeBound = 5 * time.Second

// DTLSClient returns a DTLS client to addr as identity with psk over the
// cipher suite, its handshake not started, on a socket of its own (pc). The
// caller closes both.
func DTLSClient(t testing.TB, addr, identity string, psk []byte, suite piondtls.CipherSuiteID) (conn *piondtls.Conn, pc net.PacketConn) {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc, err = net.ListenUDP("udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err = piondtls.ClientWithOptions(pc, raddr,
		piondtls.WithPSK(func([]byte) ([]byte, error) { return psk, nil }),
		piondtls.WithPSKIdentityHint([]byte(identity)),
		piondtls.WithCipherSuites(suite),
	)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	return conn, pc
}

// DialDTLS opens a coaps association to addr as identity with psk over the
// cipher suite, and completes the handshake before it returns (go-coap's
// own Dial defers it to the first request), bounded by HandshakeBound. The
// association is closed when the test ends.
func DialDTLS(t testing.TB, addr, identity string, psk []byte, suite piondtls.CipherSuiteID) (*client.Conn, error) {
	t.Helper()
	conn, pc := DTLSClient(t, addr, identity, psk, suite)
	ctx, cancel := context.WithTimeout(context.Background(), HandshakeBound)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		conn.Close()
		pc.Close()
		return nil, err
	}
	c := dtls.Client(conn, options.WithCloseSocket())
	t.Cleanup(func() { c.Close() })
	return c, nil
}
