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
//
// IMPORTANT: "enrolled with another key" answers exactly as "not enrolled"
// (only its metric reason differs), so that a join does not tell an
// outsider which IDs are enrolled (cluster/admission.go).
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
	{cluster.ErrBadTalkProof, codes.Unauthorized, "bad talk proof", ""},
	{cluster.ErrOutsideRadius, codes.Forbidden, "outside radius", "radius"},
	{cluster.ErrPeerNotMember, codes.Forbidden, "peer not a member", ""},
	{cluster.ErrNotMember, codes.Forbidden, "not a member", ""},
	{cluster.ErrUnknownCluster, codes.NotFound, "unknown cluster", "cluster"},
	{cluster.ErrOtherCluster, codes.Conflict, "member of another cluster", "other-cluster"}, // before ErrConflict, which it also matches
	{cluster.ErrConflict, codes.Conflict, "id bound to another key", "conflict"},
	{cluster.ErrRevoked, codes.Conflict, "id revoked", "revoked"},
	{cluster.ErrStale, codes.Unauthorized, "stale join", "stale"},
	{cluster.ErrJoinRate, codes.ServiceUnavailable, "busy", "join_rate"}, // before ErrBusy, which it also matches
	{cluster.ErrBusy, codes.ServiceUnavailable, "busy", ""},
	{cluster.ErrUnknownDevice, codes.NotFound, "unknown device", ""},
	{cluster.ErrNotInLog, codes.NotFound, "not in the log", ""},
	{cluster.ErrNoLog, codes.NotFound, "no transparency log", ""},
	{cluster.ErrNotEnrolled, codes.Forbidden, "not enrolled", "not_enrolled"},
	{cluster.ErrEnrolledOtherKey, codes.Forbidden, "not enrolled", "enrolled_other_key"},
	{cluster.ErrEnrollmentExpired, codes.Forbidden, "enrollment expired", "enrollment_expired"},
	{cluster.ErrEnrollmentRemoved, codes.Forbidden, "enrollment removed", "enrollment_removed"},
	{cluster.ErrOutsideEnrolledPosition, codes.Forbidden, "outside enrolled position", "enrolled_position"},
	{cluster.ErrCredentialMalformed, codes.BadRequest, "malformed credential", "credential_malformed"},
	{cluster.ErrCredentialUntrusted, codes.Unauthorized, "untrusted fleet key", "credential_untrusted"},
	{cluster.ErrCredentialNotYetValid, codes.Unauthorized, "credential not yet valid", "credential_not_yet_valid"},
	{cluster.ErrCredentialExpired, codes.Unauthorized, "credential expired", "credential_expired"},
	{cluster.ErrCredentialOtherID, codes.Unauthorized, "credential for another id", "credential_id"},
	{cluster.ErrCredentialOtherKey, codes.Unauthorized, "credential for another key", "credential_key"},
	{cluster.ErrCredentialSignature, codes.Unauthorized, "bad credential signature", "credential_signature"},
	// Not a rejection: the ledger has not decided yet (a shared ledger
	// without a quorum). The event may still be committed; the device
	// resends the same join after Max-Age (docs/PROTOCOL.md §3.3).
	{cluster.ErrUncertain, codes.ServiceUnavailable, "outcome not known yet", "uncertain"},
}

// maxAge is the Max-Age option, in seconds, of the answers above that ask
// the client to come back later.
var maxAge = map[error]byte{cluster.ErrUncertain: UncertainMaxAge, cluster.ErrJoinRate: JoinRateMaxAge}

// UncertainMaxAge is the Max-Age of a 5.03 "outcome not known yet": how
// long a device waits before it resends the same join.
const UncertainMaxAge = 2

// JoinRateMaxAge is the Max-Age of a 5.03 "busy" to a join beyond the join
// rate: the time the rate's bucket takes to fill again from empty. A device
// resends the same join after it, as after "outcome not known yet".
const JoinRateMaxAge = 1

// fail returns the answer to a request the Core refused, and the rejection
// reason for the metrics: a rejection gets its code, an echo challenge 4.01
// with the Echo option (a challenge with a Reason: that rejection's answer
// with the Echo option), anything else 5.00 (reported to the error hook,
// never shown to the client). The refusal of a protected request that
// opened (*cluster.Sealed) carries its diagnostic sealed for the member
// (docs/PROTOCOL.md §4.1), the code and options unchanged.
func (s *Server) fail(r *coapedge.Request, err error) (coapedge.Response, string) {
	resp, reason := s.refusal(r, err)
	var sealed *cluster.Sealed
	if errors.As(err, &sealed) {
		body, serr := sealed.Seal(string(resp.Body))
		if serr != nil {
			s.cfg.Errors(fmt.Errorf("%v %s: failed to seal refusal: %w", r.Source, r.Path, serr))
			return coapedge.Diagnostic(codes.InternalServerError, "internal error"), reason
		}
		// Repeat: the request opened under the member's key and may have
		// spent its sequence number, so a duplicate must get this answer
		// again, not a replay refusal. Not Authenticated: a refusal before
		// the replay window (not a member) is drawn by a captured request
		// as often as it is sent again, so it stays within the bound.
		resp.Format, resp.Body, resp.Repeat = message.AppCoseEncrypt0, body, true
	}
	return resp, reason
}

// refusal is fail's answer in text.
func (s *Server) refusal(r *coapedge.Request, err error) (coapedge.Response, string) {
	var opts []message.Option
	var echo *cluster.EchoRequired
	if errors.As(err, &echo) {
		opts = append(opts, message.Option{ID: message.Echo, Value: echo.Echo})
		if echo.Reason == nil {
			return coapedge.Diagnostic(codes.Unauthorized, echo.Error(), opts...), ""
		}
	}
	for _, rej := range rejections {
		if errors.Is(err, rej.err) {
			text := rej.text
			var ref *cluster.Refusal
			if errors.As(err, &ref) {
				text += ": " + ref.Detail
			}
			if age, ok := maxAge[rej.err]; ok {
				opts = append(opts, message.Option{ID: message.MaxAge, Value: []byte{age}})
			}
			return coapedge.Diagnostic(rej.code, text, opts...), rej.reason
		}
	}
	s.cfg.Errors(fmt.Errorf("%v %s: %w", r.Source, r.Path, err))
	return coapedge.Diagnostic(codes.InternalServerError, "internal error"), ""
}
