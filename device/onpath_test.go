package device_test

import (
	"net"
	"sync"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// onPath is an attacker on the path between a client and a server on
// 127.0.0.1: it relays every datagram both ways, each through relay, which
// may keep, change or drop it, and may answer the client itself (toClient).
type onPath struct {
	conn   net.PacketConn
	mu     sync.Mutex
	client net.Addr // the last client that sent something
}

// relayFunc sees each datagram b, from a client (toServer) or from the
// server, with m its CoAP decoding (nil if it is not CoAP), and returns what
// to pass on: b, other bytes, or nil to drop it.
type relayFunc func(p *onPath, toServer bool, b []byte, m *message.Message) []byte

func startOnPath(t *testing.T, target string, relay relayFunc) *onPath {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &onPath{conn: pc}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			toServer := from.String() != to.String()
			if toServer {
				p.mu.Lock()
				p.client = from
				p.mu.Unlock()
			}
			var m *message.Message
			msg := message.Message{Options: make(message.Options, 0, 16)}
			if _, err := coder.DefaultCoder.Decode(buf[:n], &msg); err == nil {
				m = &msg
			}
			out := relay(p, toServer, buf[:n], m)
			switch {
			case out == nil:
			case toServer:
				_, _ = pc.WriteTo(out, to)
			default:
				p.toClient(out)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return p
}

// toClient sends b to the last client.
func (p *onPath) toClient(b []byte) {
	p.mu.Lock()
	client := p.client
	p.mu.Unlock()
	if client != nil {
		_, _ = p.conn.WriteTo(b, client)
	}
}

func (p *onPath) addr() string { return p.conn.LocalAddr().String() }
