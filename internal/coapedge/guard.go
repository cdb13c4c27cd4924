package coapedge

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
)

// guard is the middleware of stages 4 and 5, and the panic recovery around
// everything after it.
func (s *Server) guard() mux.MiddlewareFunc {
	return func(next mux.Handler) mux.Handler {
		return mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
			start := time.Now()
			defer func() { // a bug in a handler must not take the server down
				if p := recover(); p != nil {
					s.cfg.Errors(fmt.Errorf("%v: handler panic: %v", w.Conn().RemoteAddr(), p))
					s.answer(w, r, s.known(r), start, Diagnostic(codes.InternalServerError, "internal error"))
				}
			}()
			if !s.sources.allow(w.Conn().RemoteAddr(), s.cfg.now()) {
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
			next.ServeCOAP(w, r)
		})
	}
}

// known returns r's path if it is one of the table's, else "other": metric
// labels stay bounded whatever paths clients send.
func (s *Server) known(r *mux.Message) string {
	p, _ := r.Path()
	if len(p) == 0 || p[0] != '/' {
		p = "/" + p
	}
	for _, res := range s.resources {
		if res.Path == p {
			return p
		}
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
