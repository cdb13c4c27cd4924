package coapedge

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// dropCounter counts the edge's drops by reason.
type dropCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *dropCounter) Request(string, string, string, time.Duration) {}
func (d *dropCounter) Associations(int)                              {}
func (d *dropCounter) Dropped(reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n[reason]++
}

// TestGroupDatagramsDropped: a request that came to a multicast address
// (All-CoAP-Nodes, IPv4 and IPv6, RFC 7252 §12.8) or the IPv4 limited
// broadcast is dropped before anything is made for it — no association, no
// request served without one, no answer — and counted; the same request to
// the server's unicast address is served. A datagram to a group reaches
// every server of the link listening on the wildcard address, so one
// spoofed request drew an answer from each (RFC 7252 §11.3). go-coap's read
// loop hands admit the datagram and its control message as here; the test
// calls it directly, as sending to a group would leave the loopback
// interface.
func TestGroupDatagramsDropped(t *testing.T) {
	var served atomic.Int64
	drops := &dropCounter{n: map[string]int{}}
	s, err := Listen("127.0.0.1:0", []Resource{{Path: "/cluster", Method: codes.GET, Stateless: true, NeverWaits: true,
		Handle: func(context.Context, *Request) Response {
			served.Add(1)
			return Response{Code: codes.Content}
		}}}, WithObserver(drops))
	if err != nil {
		t.Fatal(err)
	}
	victim, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	req := message.Message{Type: message.NonConfirmable, Code: codes.GET, MessageID: 7, Options: message.Options{}}
	req.Options, _, _ = req.Options.SetPath(make([]byte, 32), "/cluster")
	b := make([]byte, 64)
	n, err := coder.DefaultCoder.Encode(req, b)
	if err != nil {
		t.Fatal(err)
	}
	raddr := victim.LocalAddr().(*net.UDPAddr)
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	groups := []net.IP{net.ParseIP("224.0.1.187"), net.ParseIP("ff02::fd"), net.IPv4bcast}
	for _, dst := range groups {
		if s.admit(raddr, &coapnet.ControlMessage{Dst: dst, IfIndex: 1}, b[:n]) {
			t.Errorf("to %v: an association was made", dst)
		}
	}
	closed = true
	if err := s.Close(); err != nil { // waits for every request served without an association
		t.Fatal(err)
	}
	if got := served.Load(); got != 0 {
		t.Errorf("%d requests to a group address served", got)
	}
	drops.mu.Lock()
	defer drops.mu.Unlock()
	if drops.n[DropGroup] != len(groups) {
		t.Errorf("dropped %v, want %d as %q", drops.n, len(groups), DropGroup)
	}
	for _, dst := range []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.0.2.255"), net.ParseIP("2001:db8::1")} {
		if toGroup(&coapnet.ControlMessage{Dst: dst}) {
			t.Errorf("%v taken for a group address", dst)
		}
	}
}
