package coapedge

import (
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/udp/client"
)

// requestsOnly is go-coap's request monitor (stage 3): it lets requests and
// the CoAP ping through and drops every other message, uncounted by the
// rate limit but counted as DropNotRequest: ACKs and Resets — IMPORTANT: the
// edge never sends a Confirmable message, so it never waits for one — and
// responses with no request behind them. A Confirmable one is rejected with
// a Reset (RFC 7252 §4.2), 4 bytes, within the source's rate limit. go-coap
// would otherwise route them as requests and answer them: an ACK 2.05 drew
// a CON 4.04, and two edges could be made to answer each other for ever.
func (s *Server) requestsOnly(cc *client.Conn, m *pool.Message) (drop bool, err error) {
	typ, code := m.Type(), m.Code()
	switch {
	case (typ == message.Confirmable || typ == message.NonConfirmable) && code >= codes.GET && code < 32:
		return false, nil // a request: class 0, a method code (unknown ones get 4.05)
	case m.IsPing(false):
		return false, nil // go-coap answers it with a Reset
	}
	s.dropped(DropNotRequest)
	if typ == message.Confirmable && s.sources.allow(cc.RemoteAddr(), s.cfg.now()) {
		s.reject(cc, m)
	}
	return true, nil
}

// reject sends the Reset that rejects the Confirmable message m.
func (s *Server) reject(cc *client.Conn, m *pool.Message) {
	rst := cc.AcquireMessage(cc.Context())
	defer cc.ReleaseMessage(rst)
	rst.SetType(message.Reset)
	rst.SetCode(codes.Empty)
	rst.SetMessageID(m.MessageID())
	if cm := m.ControlMessage(); cm != nil { // from the address m came to
		rst.SetControlMessage(&coapnet.ControlMessage{IfIndex: cm.GetIfIndex(), Src: cm.Dst})
	}
	if err := cc.Session().WriteMessage(rst); err != nil {
		s.cfg.Errors(fmt.Errorf("%v: failed to reject a message: %w", cc.RemoteAddr(), err))
	}
}
