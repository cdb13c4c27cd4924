package coapedge

import (
	"bytes"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	netclient "github.com/plgd-dev/go-coap/v3/net/client"
	"github.com/plgd-dev/go-coap/v3/udp/client"
)

// requestsOnly is go-coap's request monitor (stage 3): it lets requests and
// the CoAP ping (within its source's rate limit) through and drops every
// other message, uncounted by the
// rate limit but counted as DropNotRequest: ACKs and Resets — IMPORTANT: the
// edge never sends a Confirmable message, so it never waits for one — and
// responses with no request behind them. A Confirmable one is rejected with
// a Reset (RFC 7252 §4.2), 4 bytes, within the source's rate limit. go-coap
// would otherwise route them as requests and answer them: an ACK 2.05 drew
// a CON 4.04, and two edges could be made to answer each other for ever.
func (s *Server) requestsOnly(cc *client.Conn, m *pool.Message) (drop bool, err error) {
	typ, code := m.Type(), m.Code()
	if s.toGroup(m.ControlMessage()) { // an association's endpoint, sending to a group
		s.dropped(DropGroup)
		return true, nil
	}
	switch {
	case (typ == message.Confirmable || typ == message.NonConfirmable) && code >= codes.GET && code < 32:
		if unknownCritical(m) {
			s.badOption(cc, m)
			return true, nil
		}
		return false, nil // a request: class 0, a method code (unknown ones get 4.05)
	case m.IsPing(false):
		if s.sources.allow(cc.RemoteAddr(), s.cfg.now()) {
			return false, nil // go-coap answers it with a Reset
		}
		s.dropped(DropSourceRate)
		return true, nil
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
	if cm := replyFrom(m.ControlMessage()); cm != nil {
		rst.SetControlMessage(cm)
	}
	if err := cc.Session().WriteMessage(rst); err != nil {
		s.cfg.Errors(fmt.Errorf("%v: failed to reject a message: %w", cc.RemoteAddr(), err))
	}
}

// replyFrom returns the control message that sends an answer from the
// address and interface a request came to, as its control message cm says
// (nil: the socket told nothing, and the kernel chooses).
func replyFrom(cm *coapnet.ControlMessage) *coapnet.ControlMessage {
	if cm == nil {
		return nil
	}
	return &coapnet.ControlMessage{IfIndex: cm.GetIfIndex(), Src: cm.Dst}
}

// unknownCritical reports whether m has an option of class critical (odd
// number) that CoAP does not define or with a value of a length its
// definition does not allow; Q-Block options count as unknown, as the edge
// does no block-wise transfer (RFC 9177 §4).
func unknownCritical(m *pool.Message) bool {
	return len(netclient.GetUnknownCriticalOptionsWithQBlock(m.Options(), false)) > 0
}

// badOption rejects a request with an unknown critical option (RFC 7252
// §5.4.1): a Confirmable one gets 4.02 within its source's rate limit and
// the reflection bound, a Non-confirmable one nothing (§4.3). Counted as
// dropped when unanswered. IMPORTANT: go-coap answered such a request
// itself, before any check of the edge, with a diagnostic naming every
// such option — up to 6 bytes of answer per byte of request, to any source
// and past the rate limit —; it now leaves it to the request monitor
// (third_party/README.md, patch 10).
func (s *Server) badOption(cc *client.Conn, m *pool.Message) {
	start := time.Now()
	if m.Type() != message.Confirmable || !s.sources.allow(cc.RemoteAddr(), s.cfg.now()) {
		s.dropped(DropBadOption)
		return
	}
	resp := s.bound(&mux.Message{Message: m}, cc.RemoteAddr(), Diagnostic(codes.BadOption, "bad option"))
	ack := cc.AcquireMessage(cc.Context())
	defer cc.ReleaseMessage(ack)
	ack.SetType(message.Acknowledgement)
	ack.SetCode(resp.Code)
	ack.SetMessageID(m.MessageID())
	ack.SetToken(m.Token())
	if len(resp.Body) > 0 {
		ack.SetContentFormat(resp.Format)
		ack.SetBody(bytes.NewReader(resp.Body))
	}
	if cm := replyFrom(m.ControlMessage()); cm != nil {
		ack.SetControlMessage(cm)
	}
	if err := cc.Session().WriteMessage(ack); err != nil {
		s.cfg.Errors(fmt.Errorf("%v: failed to answer a bad option: %w", cc.RemoteAddr(), err))
		return
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.Request(s.transport, "other", CodeString(resp.Code), time.Since(start))
	}
}
