package chtest

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/iotguard/iotguard/internal/coapedge"
)

// Socket is a raw UDP socket on 127.0.0.1 with a source port of its own: to
// the server it is a new source endpoint, whose address no Echo verified yet.
// Tests use it to send exact bytes, as an attacker would.
type Socket struct {
	t    testing.TB
	conn *net.UDPConn
	mid  uint16
}

// NewSocket opens a socket from laddr ("" for 127.0.0.1 on any port) to the
// UDP address addr.
func NewSocket(t testing.TB, addr, laddr string) *Socket {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var local *net.UDPAddr
	if laddr != "" {
		if local, err = net.ResolveUDPAddr("udp", laddr); err != nil {
			t.Fatal(err)
		}
	}
	c, err := net.DialUDP("udp", local, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Socket{t: t, conn: c, mid: 0x1000}
}

// Addr returns the socket's own address.
func (s *Socket) Addr() string { return s.conn.LocalAddr().String() }

// Send writes one datagram.
func (s *Socket) Send(b []byte) {
	s.t.Helper()
	if _, err := s.conn.Write(b); err != nil {
		s.t.Fatal(err)
	}
}

// Receive returns the next datagram that arrives, decoded, and its size. It
// fails the test if nothing arrives within Timeout (a hang guard, not a
// measurement) or if what arrives is not CoAP.
func (s *Socket) Receive() (message.Message, int) {
	s.t.Helper()
	buf := make([]byte, 2048)
	if err := s.conn.SetReadDeadline(time.Now().Add(Timeout)); err != nil {
		s.t.Fatal(err)
	}
	n, err := s.conn.Read(buf)
	if err != nil {
		s.t.Fatalf("no datagram: %v", err)
	}
	m := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
		s.t.Fatalf("the server sent a datagram that is not CoAP: %v: %x", err, buf[:n])
	}
	m.Payload = append([]byte(nil), m.Payload...)
	return m, n
}

// Exchange sends m, with a message ID of its own unless it has one, and
// returns the first datagram that comes back and the sizes of both.
//
// IMPORTANT: a server drops a datagram whose message ID is that of a
// request still in flight from the same source (RFC 7252 §4.5), and go-coap
// counts a request in flight until a moment after its answer is sent; so a
// test that repeats a message ID on purpose sends another request between.
func (s *Socket) Exchange(m message.Message) (answer message.Message, sent, received int) {
	s.t.Helper()
	if m.MessageID < 0 {
		s.mid++
		m.MessageID = int32(s.mid)
	}
	b := Datagram(s.t, m)
	s.Send(b)
	answer, received = s.Receive()
	return answer, len(b), received
}

// ExchangeLossy is Exchange for a path that may drop datagrams (a server
// whose receive buffer a flood fills): m is sent again, with a new message ID
// and token, until an answer to one of its copies arrives, at most tries
// times, each given wait. It returns that answer.
func (s *Socket) ExchangeLossy(m message.Message, tries int, wait time.Duration) message.Message {
	s.t.Helper()
	ours := map[string]bool{}
	buf := make([]byte, 2048)
	for try := 0; try < tries; try++ {
		s.mid++
		m.MessageID, m.Token = int32(s.mid), []byte{0xee, byte(s.mid >> 8), byte(s.mid)}
		ours[string(m.Token)] = true
		s.Send(Datagram(s.t, m))
		for deadline := time.Now().Add(wait); ; {
			if err := s.conn.SetReadDeadline(deadline); err != nil {
				s.t.Fatal(err)
			}
			n, err := s.conn.Read(buf)
			if err != nil {
				break // lost: send again
			}
			a := message.Message{Options: make(message.Options, 0, 16)}
			if _, err := coder.DefaultCoder.Decode(buf[:n], &a); err == nil && ours[string(a.Token)] {
				a.Payload = append([]byte(nil), a.Payload...)
				return a
			}
		}
	}
	s.t.Fatalf("no answer to %d copies of %s", tries, Describe(m))
	return message.Message{}
}

// Silent checks that the server answers nothing to what this socket sent
// before: it sends a probe (GET /.well-known/core, NON, message ID mid, token
// 9b) and requires the first datagram back to be the probe's answer. The server
// handles one source's datagrams in order, so an answer to anything sent
// earlier would have come first — except a request from a source without an
// association, served on its own (coapedge, stateless.go): Silent cannot
// tell that one was never answered. So it checks what an association
// handles: a message that is not a request, or a request with an unknown
// critical option, after which the probe comes on that association.
func (s *Socket) Silent(mid uint16) {
	s.t.Helper()
	probe := message.Message{Type: message.NonConfirmable, Code: codes.GET, MessageID: int32(mid), Token: []byte{0x9b}}
	probe.Options, _, _ = probe.Options.SetPath(make([]byte, 64), "/.well-known/core")
	s.Send(Datagram(s.t, probe))
	m, _ := s.Receive()
	if string(m.Token) != "\x9b" {
		s.t.Fatalf("the server answered an earlier datagram: %s", Describe(m))
	}
}

// Datagram encodes m as a CoAP over UDP datagram (RFC 7252 §3).
func Datagram(t testing.TB, m message.Message) []byte {
	t.Helper()
	if m.Options == nil {
		m.Options = message.Options{}
	}
	n, err := coder.DefaultCoder.Size(m)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := coder.DefaultCoder.Encode(m, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Request returns a request message: typ, code, no token, the Uri-Path
// options of path, then opts; no message ID yet (Socket.Exchange gives it
// one).
func Request(typ message.Type, code codes.Code, path string, opts ...message.Option) message.Message {
	m := message.Message{Type: typ, Code: code, MessageID: -1, Options: make(message.Options, 0, 8)}
	m.Options, _, _ = m.Options.SetPath(make([]byte, 64), path)
	for _, o := range opts {
		m.Options = m.Options.Add(o)
	}
	return m
}

// Padded returns m with a Padding option that makes it size bytes as a
// datagram, or one more when the option's header grows at 13 bytes of
// value; a device pads GET /cluster to coapedge.PaddedRequest.
func Padded(t testing.TB, m message.Message, size int) message.Message {
	t.Helper()
	sized := m
	sized.MessageID = 1 // a number to size it with; m's own is kept
	for n := 0; ; n++ {
		sized.Options = append(slices.Clone(m.Options), message.Option{ID: coapedge.OptionPadding, Value: make([]byte, n)})
		if len(Datagram(t, sized)) >= size {
			m.Options = sized.Options
			return m
		}
	}
}

// Describe renders a message for failure output: type, code, options and
// the start of the payload.
func Describe(m message.Message) string {
	p := m.Payload
	if len(p) > 24 {
		p = p[:24]
	}
	return fmt.Sprintf("%v %d.%02d mid %#x token %x options %v payload %q", m.Type, m.Code>>5, m.Code&0x1f, m.MessageID, m.Token, m.Options, p)
}
