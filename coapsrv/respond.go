package coapsrv

import (
	"errors"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// rejections is the one table that maps each of the Core's rejections to its
// CoAP code and diagnostic (docs/PROTOCOL.md §2.1) and, for a join, to the
// reason counted in iotguard_join_rejections_total. The diagnostic is the
// table's text, followed by ": " and the detail of a *cluster.Refusal; the
// Core keeps details short and free of secrets.
var rejections = []struct {
	err    error
	code   codes.Code
	text   string
	reason string // join rejection metric label
}{
	{cluster.ErrMalformed, codes.BadRequest, "malformed", "malformed"},
	{cluster.ErrBadSignature, codes.Unauthorized, "bad signature", "signature"},
	{cluster.ErrUnauthorized, codes.Unauthorized, "unauthorized", ""},
	{cluster.ErrReplay, codes.Unauthorized, "replay", ""},
	{cluster.ErrOutsideRadius, codes.Forbidden, "outside radius", "radius"},
	{cluster.ErrPeerNotMember, codes.Forbidden, "peer not a member", ""},
	{cluster.ErrNotMember, codes.Forbidden, "not a member", ""},
	{cluster.ErrUnknownCluster, codes.NotFound, "unknown cluster", "cluster"},
	{cluster.ErrConflict, codes.Conflict, "id bound to another key", "conflict"},
	{cluster.ErrRevoked, codes.Conflict, "id revoked", "revoked"},
	{cluster.ErrUnknownDevice, codes.NotFound, "unknown device", ""},
	{cluster.ErrNotInLog, codes.NotFound, "not in the log", ""},
	{cluster.ErrNoLog, codes.NotFound, "no transparency log", ""},
}

// fail returns the answer to a request the Core refused, and the rejection
// reason for the metrics: a rejection gets its code, an echo challenge 4.01
// with the Echo option, anything else 5.00 (reported to the error hook,
// never shown to the client).
func (s *Server) fail(r *coapedge.Request, err error) (coapedge.Response, string) {
	var echo *cluster.EchoRequired
	if errors.As(err, &echo) {
		return coapedge.Diagnostic(codes.Unauthorized, echo.Error(), message.Option{ID: message.Echo, Value: echo.Echo}), ""
	}
	for _, rej := range rejections {
		if errors.Is(err, rej.err) {
			text := rej.text
			var ref *cluster.Refusal
			if errors.As(err, &ref) {
				text += ": " + ref.Detail
			}
			return coapedge.Diagnostic(rej.code, text), rej.reason
		}
	}
	s.cfg.Errors(fmt.Errorf("%v %s: %w", r.Source, r.Path, err))
	return coapedge.Diagnostic(codes.InternalServerError, "internal error"), ""
}
