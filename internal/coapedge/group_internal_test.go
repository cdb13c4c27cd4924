package coapedge

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
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

// groupEdge runs an edge on addr serving GET /cluster, which served counts,
// with drops counting what it drops.
func groupEdge(t *testing.T, addr string) (s *Server, served *atomic.Int64, drops *dropCounter) {
	t.Helper()
	served, drops = &atomic.Int64{}, &dropCounter{n: map[string]int{}}
	s, err := Listen(addr, []Resource{{Path: "/cluster", Method: codes.GET, Stateless: true, NeverWaits: true,
		Handle: func(context.Context, *Request) Response {
			served.Add(1)
			return Response{Code: codes.Content}
		}}}, WithObserver(drops))
	if err != nil {
		t.Fatal(err)
	}
	return s, served, drops
}

// getCluster is the datagram of a NON GET /cluster with message ID mid,
// and mid's low byte as its token.
func getCluster(t *testing.T, mid int32) []byte {
	t.Helper()
	req := message.Message{Type: message.NonConfirmable, Code: codes.GET, MessageID: mid, Token: []byte{byte(mid)}, Options: message.Options{}}
	req.Options, _, _ = req.Options.SetPath(make([]byte, 32), "/cluster")
	b := make([]byte, 64)
	n, err := coder.DefaultCoder.Encode(req, b)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// TestGroupDatagramsDropped: a request that came to a multicast address
// (All-CoAP-Nodes, IPv4 and IPv6, RFC 7252 §12.8), the IPv4 limited
// broadcast, or the directed broadcast of one of the host's networks (lo's
// 127.255.255.255) is dropped before anything is made for it — no association, no
// request served without one, no answer — and counted; the same request to
// the server's unicast address is served. A datagram to a group reaches
// every server of the link listening on the wildcard address, so one
// spoofed request drew an answer from each (RFC 7252 §11.3). go-coap's read
// loop hands admit the datagram and its control message as here; the test
// calls it directly, as sending to a group would leave the loopback
// interface.
func TestGroupDatagramsDropped(t *testing.T) {
	s, served, drops := groupEdge(t, "127.0.0.1:0")
	victim, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	req := getCluster(t, 7)
	raddr := victim.LocalAddr().(*net.UDPAddr)
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	groups := []net.IP{net.ParseIP("224.0.1.187"), net.ParseIP("ff02::fd"), net.IPv4bcast}
	if loopbackSlash8(t) { // its directed broadcast
		groups = append(groups, net.ParseIP("127.255.255.255"))
	}
	for _, dst := range groups {
		if s.admit(raddr, &coapnet.ControlMessage{Dst: dst, IfIndex: 1}, req) {
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
	for _, dst := range []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.1.2.3"), net.ParseIP("198.51.100.255"), net.ParseIP("2001:db8::1")} {
		if s.toGroup(&coapnet.ControlMessage{Dst: dst}) {
			t.Errorf("%v taken for a group address", dst)
		}
	}
}

// loopbackSlash8 reports whether the loopback interface holds 127.0.0.1/8,
// as Linux gives it: its directed broadcast is then 127.255.255.255.
func loopbackSlash8(t *testing.T) bool {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Logf("no interface lo: %v", err)
		return false
	}
	addrs, err := lo.Addrs()
	if err != nil {
		t.Logf("lo's addresses: %v", err)
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.String() == "127.0.0.1/8" {
			return true
		}
	}
	t.Logf("lo holds no 127.0.0.1/8: %v", addrs)
	return false
}

// TestDirectedBroadcastDropped sends a real request to lo's directed
// broadcast (127.255.255.255, SO_BROADCAST) and then to the server's
// unicast address, from one socket on 127.0.0.1, to an edge listening on
// the wildcard address, as a CH does that is not bound to one address: the
// first is dropped as sent to a group, the second served. The edge reads
// datagrams in order, so once the second is answered the first was dropped
// or served. Before, the broadcast one was served: every CoAP server of a
// subnet answers such a request, to whatever source it names.
func TestDirectedBroadcastDropped(t *testing.T) {
	if !loopbackSlash8(t) {
		t.Skip("lo holds no 127.0.0.1/8")
	}
	s, served, drops := groupEdge(t, "0.0.0.0:0")
	defer s.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	port := s.Addr().(*net.UDPAddr).Port
	for i, dst := range []net.IP{net.IPv4(127, 255, 255, 255), net.IPv4(127, 0, 0, 1)} {
		if _, err := c.WriteToUDP(getCluster(t, int32(i)), &net.UDPAddr{IP: dst, Port: port}); err != nil {
			t.Fatalf("to %v: %v", dst, err)
		}
	}
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil { // a bound on the wait, not a timing
		t.Fatal(err)
	}
	buf := make([]byte, 128)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer to the unicast request: %v", err)
	}
	var a message.Message
	if _, err := coder.DefaultCoder.Decode(buf[:n], &a); err != nil || string(a.Token) != "\x01" {
		t.Fatalf("first answer: %v %+v, want the unicast request's (token 01)", err, a)
	}
	drops.mu.Lock()
	defer drops.mu.Unlock()
	if got := served.Load(); got != 1 || drops.n[DropGroup] != 1 {
		t.Errorf("served %d, dropped %v: want the unicast request served, the broadcast one dropped as %q", got, drops.n, DropGroup)
	}
}
