package coapedge

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
)

// guarded serves every request the edge reads: behind the guard — a
// handler's panic answered 5.00, a source over its rate 4.29 (a request
// taking its resource's Cost), a payload over the limit 4.13 — it routes
// the request to the resource of its path.
func (s *Server) guarded(w mux.ResponseWriter, r *mux.Message) {
	start := time.Now()
	defer func() { // a bug in a handler must not take the server down
		if p := recover(); p != nil {
			s.cfg.Errors(fmt.Errorf("%v: handler panic: %v", w.Conn().RemoteAddr(), p))
			s.answer(w, r, s.known(r), start, Diagnostic(codes.InternalServerError, "internal error"))
		}
	}()
	res, ok := s.resource(r)
	cost := 1
	if ok {
		cost = res.Cost
	}
	if !s.sources.allowN(w.Conn().RemoteAddr(), s.cfg.now(), cost) {
		s.answer(w, r, s.known(r), start, Diagnostic(codes.TooManyRequests, "rate limited", message.Option{ID: message.MaxAge, Value: []byte{1}}))
		return
	}
	size1, _ := r.GetOptionUint32(message.Size1)
	if n, err := r.BodySize(); (err == nil && n > int64(s.cfg.MaxPayload)) || size1 > uint32(s.cfg.MaxPayload) || r.HasOption(message.Block1) {
		var opt [4]byte
		binary.BigEndian.PutUint32(opt[:], uint32(s.cfg.MaxPayload))
		s.answer(w, r, s.known(r), start, Diagnostic(codes.RequestEntityTooLarge, "too large",
			message.Option{ID: message.Size1, Value: bytesTrimmed(opt[:])}))
		return
	}
	if !ok {
		s.answer(w, r, "other", start, Diagnostic(codes.NotFound, "no such resource"))
		return
	}
	s.serve(res, w, r, start)
}

// resource returns the resource whose path is r's. Paths are matched
// exactly, as the table's are fixed strings.
func (s *Server) resource(r *mux.Message) (*Resource, bool) {
	p, err := r.Path()
	res, ok := s.byPath[p]
	return res, ok && err == nil
}

// known returns r's path if it is one of the table's, else "other": metric
// labels stay bounded whatever paths clients send.
func (s *Server) known(r *mux.Message) string {
	if res, ok := s.resource(r); ok {
		return res.Path
	}
	return "other"
}

// bytesTrimmed drops the leading zero bytes of a big-endian uint option value
// (RFC 7252 §3.2: uint options are sent in as few bytes as possible).
func bytesTrimmed(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}
