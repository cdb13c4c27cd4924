package coapsrv

import (
	"context"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/wire"
)

// wireMaxPayload is the largest request payload a CH accepts (§2).
const wireMaxPayload = wire.MaxPayload

// JoinCost is how many requests of its source's rate limit a join takes. A
// join costs the CH ~350 µs of CPU (an ES256 verify, two with a credential,
// a signature, an ECDH, its share of a block), a /verify ~23 µs
// (docs/PERFORMANCE.md): so a source makes the CH do about as much work with
// joins as with any other requests. At the default 1,000 requests a second,
// 62 joins a second, after a burst of 125.
const JoinCost = 16

// resources is the CH's path table over CoAP (docs/PROTOCOL.md §2). Every
// resource is Stateless: served without an association to an endpoint that
// has none, so that no member needs a place in the association cap. A
// duplicate of a join or a protected request draws its authenticated or
// sealed answer again, as the replay window would refuse a protected one
// served again; a duplicate of a public GET or of a refusal in the clear is
// served again, which changes nothing. Only a join and a leave wait, on the
// ledger: every other resource NeverWaits.
func (s *Server) resources() []coapedge.Resource {
	signed := []message.MediaType{message.AppCoseSign1}
	sealed := []message.MediaType{message.AppCoseEncrypt0}
	return append([]coapedge.Resource{
		{Path: "/join", Method: codes.POST, Format: message.AppCoseSign1, Answers: signed, Stateless: true, Cost: JoinCost, Link: `rt="iotguard.join"`, Handle: s.join},
		{Path: "/verify", Method: codes.POST, Format: message.AppCoseEncrypt0, Answers: sealed, Stateless: true, NeverWaits: true, Link: `rt="iotguard.verify"`, Handle: s.protected(s.core.Verify, codes.Content)},
		{Path: "/session", Method: codes.POST, Format: message.AppCoseEncrypt0, Answers: sealed, Stateless: true, NeverWaits: true, Link: `rt="iotguard.session"`, Handle: s.protected(s.core.Session, codes.Content)},
		{Path: "/leave", Method: codes.POST, Format: message.AppCoseEncrypt0, Answers: sealed, Stateless: true, Link: `rt="iotguard.leave"`, Handle: s.protected(s.core.Leave, codes.Changed)},
	}, s.publicResources()...)
}

// publicResources are the read-only resources anyone may GET, over CoAP and
// coaps alike. Their answers are 3-20 times their request: over CoAP the
// edge serves them only to a source whose address an Echo verified (§6) or,
// for /cluster, signed once and kept, to a request padded to three times
// less than its answer (§2); over coaps the DTLS handshake verified it.
func (s *Server) publicResources() []coapedge.Resource {
	public := []message.MediaType{message.AppCoseSign1, message.TextPlain}
	cbor := []message.MediaType{message.AppCBOR}
	return []coapedge.Resource{
		{Path: "/cluster", Method: codes.GET, Answers: public, Large: true, Padded: true, Stateless: true, NeverWaits: true, Link: `rt="iotguard.cluster"`, Handle: s.public(s.core.ClusterInfo, s.core.ClusterText, true)},
		{Path: "/ledger/head", Method: codes.GET, Answers: public, Large: true, Stateless: true, NeverWaits: true, Link: `rt="iotguard.head"`, Handle: s.public(s.core.LedgerHead, s.core.LedgerHeadText, false)},
		{Path: "/ledger/checkpoint", Method: codes.GET, Answers: public, Large: true, Stateless: true, NeverWaits: true, Link: `rt="iotguard.checkpoint"`, Handle: s.public(s.core.Checkpoint, s.core.CheckpointText, false)},
		{Path: "/ledger/proof", Method: codes.GET, Answers: cbor, Large: true, Stateless: true, NeverWaits: true, Link: `rt="iotguard.proof"`, Handle: s.proof},
		{Path: "/ledger/consistency", Method: codes.GET, Answers: cbor, Large: true, Stateless: true, NeverWaits: true, Link: `rt="iotguard.consistency"`, Handle: s.consistency},
	}
}

func (s *Server) join(ctx context.Context, r *coapedge.Request) coapedge.Response {
	res, err := s.core.Join(ctx, r.Body, r.Source)
	if err != nil {
		resp, reason := s.fail(r, err)
		if reason != "" && s.cfg.Observer != nil {
			s.cfg.Observer.JoinRejected(reason)
		}
		return resp
	}
	code := codes.Created
	if !res.Created {
		code = codes.Changed
	}
	// Authenticated: signed by the device over an echo made for its address.
	return coapedge.Response{Code: code, Format: message.AppCoseSign1, Body: res.Response, Authenticated: true}
}

// protected serves a protected resource through serve, answering ok.
func (s *Server) protected(serve func(context.Context, []byte, string) ([]byte, error), ok codes.Code) coapedge.Handler {
	return func(ctx context.Context, r *coapedge.Request) coapedge.Response {
		resp, err := serve(ctx, r.Body, r.Source)
		if err != nil {
			fail, _ := s.fail(r, err)
			return fail
		}
		// Authenticated: sealed under the member's key, its sequence number fresh.
		return coapedge.Response{Code: ok, Format: message.AppCoseEncrypt0, Body: resp, Authenticated: true}
	}
}

// public serves a read-only resource: the signed form (COSE_Sign1), or the
// text form when the client asks for text/plain. With echo, the signed form
// carries an Echo option for the client's next join (§3.1).
func (s *Server) public(signed func() ([]byte, error), text func() (string, error), echo bool) coapedge.Handler {
	return func(_ context.Context, r *coapedge.Request) coapedge.Response {
		if a, ok := r.Accept(); ok && a == message.TextPlain {
			t, err := text()
			if err != nil {
				resp, _ := s.fail(r, err)
				return resp
			}
			return coapedge.Response{Code: codes.Content, Format: message.TextPlain, Body: []byte(t)}
		}
		b, err := signed()
		if err != nil {
			resp, _ := s.fail(r, err)
			return resp
		}
		resp := coapedge.Response{Code: codes.Content, Format: message.AppCoseSign1, Body: b}
		if echo {
			resp.Options = []message.Option{{ID: message.Echo, Value: s.core.Echo(r.Source)}}
		}
		return resp
	}
}
