package coapsrv

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/iotguard/iotguard/cluster"
)

// rejections maps each of the Core's sentinels to its CoAP code
// (docs/PROTOCOL.md §2.1). The diagnostic payload is the error's text, which
// the Core keeps short and free of secrets.
var rejections = []struct {
	err  error
	code codes.Code
}{
	{cluster.ErrMalformed, codes.BadRequest},
	{cluster.ErrBadSignature, codes.Unauthorized},
	{cluster.ErrUnauthorized, codes.Unauthorized},
	{cluster.ErrReplay, codes.Unauthorized},
	{cluster.ErrOutsideRadius, codes.Forbidden},
	{cluster.ErrNotMember, codes.Forbidden},
	{cluster.ErrPeerNotMember, codes.Forbidden},
	{cluster.ErrUnknownCluster, codes.NotFound},
	{cluster.ErrConflict, codes.Conflict},
	{cluster.ErrRevoked, codes.Conflict},
}

// fail writes a diagnostic response for err: a Core rejection becomes its
// code, an echo challenge 4.01 with the Echo option, anything else 5.00
// (reported to the error hook, never shown to the client).
func (s *Server) fail(w mux.ResponseWriter, resource string, err error) codes.Code {
	var echo *cluster.EchoRequired
	if errors.As(err, &echo) {
		_ = w.SetResponse(codes.Unauthorized, message.TextPlain, bytes.NewReader([]byte(echo.Error())),
			message.Option{ID: message.Echo, Value: echo.Echo})
		return codes.Unauthorized
	}
	for _, r := range rejections {
		if errors.Is(err, r.err) {
			s.diagnostic(w, r.code, err.Error())
			return r.code
		}
	}
	s.cfg.Errors(fmt.Errorf("%v %s: %w", w.Conn().RemoteAddr(), resource, err))
	s.diagnostic(w, codes.InternalServerError, "internal error")
	return codes.InternalServerError
}

func (s *Server) diagnostic(w mux.ResponseWriter, code codes.Code, text string, opts ...message.Option) {
	if err := w.SetResponse(code, message.TextPlain, bytes.NewReader([]byte(text)), opts...); err != nil {
		s.cfg.Errors(fmt.Errorf("%v: failed to set response: %w", w.Conn().RemoteAddr(), err))
	}
}
