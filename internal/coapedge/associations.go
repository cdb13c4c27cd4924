package coapedge

import (
	"net"
	"sync/atomic"

	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	udpserver "github.com/plgd-dev/go-coap/v3/udp/server"
	"golang.org/x/time/rate"
)

// associations bounds go-coap's per-endpoint state (stage 2). go-coap keeps
// a connection for every source endpoint (address:port) it hears from — a
// connection object and a cache of its answers for EXCHANGE_LIFETIME, ~5 KiB
// before any answer (no goroutine of its own since go-coap patch 8) —
// until 16 s of inactivity, and it makes one before any of our checks runs.
// A spoofer who cycles through source ports or addresses would make one per
// datagram. So the edge decides before one is made (through our go-coap
// patch, third_party/README.md): none for a request it serves without one
// (stateless.go), and otherwise not beyond the cap, not faster than the
// rate, and not for a source over its rate limit.
type associations struct {
	max  int           // 0: no cap
	open *rate.Limiter // new associations; nil: no rate bound
	n    atomic.Int64  // held now
}

func newAssociations(limit int, perSecond float64) *associations {
	a := &associations{max: limit}
	if perSecond > 0 {
		a.open = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
	}
	return a
}

// acceptConn is the go-coap server option of our patch: AcceptConn is asked
// before a connection is made for a source endpoint that has none.
type acceptConn func(raddr *net.UDPAddr, cm *coapnet.ControlMessage, datagram []byte) bool

func (f acceptConn) UDPServerApply(cfg *udpserver.Config) { cfg.AcceptConn = f }

// admit decides whether raddr, which has no association, gets one for
// datagram: not if it came to a group address (group.go), nor if it is a
// request served without one (stateless.go), nor beyond the bounds, where it
// is dropped and counted. IMPORTANT: go-coap
// calls it on its read loop with its connection table locked: it must stay
// cheap and must not call into the server.
func (s *Server) admit(raddr *net.UDPAddr, cm *coapnet.ControlMessage, datagram []byte) bool {
	if s.toGroup(cm) {
		s.dropped(DropGroup)
		return false
	}
	if s.take(raddr, cm, datagram) {
		return false
	}
	a, now := s.associations, s.cfg.now()
	reason := ""
	switch {
	case a.max > 0 && a.n.Load() >= int64(a.max):
		reason = DropAssociationCap
	case !s.sources.ready(raddr, now):
		reason = DropSourceRate
	case a.open != nil && !a.open.AllowN(now, 1):
		reason = DropAssociationRate
	default:
		return true
	}
	s.dropped(reason)
	return false
}

// associated counts a new association until it closes (go-coap's OnNewConn,
// on its read loop right after admit, so the cap holds exactly).
func (s *Server) associated(cc *client.Conn) {
	s.observeAssociations(s.associations.n.Add(1))
	cc.AddOnClose(func() { s.observeAssociations(s.associations.n.Add(-1)) })
}

func (s *Server) observeAssociations(n int64) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.Associations(int(n))
	}
}

func (s *Server) dropped(reason string) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.Dropped(reason)
	}
}
