package coapsrv

import (
	"context"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// ListenDTLS binds addr (UDP host:port) and serves the CH's resources over
// coaps (docs/PROTOCOL.md §4.5): DTLS 1.2 with each member's PSK, identity =
// device ID. /verify, /session and /leave take the plaintext CBOR request
// (Content-Format 60) from the member the handshake authenticated — never
// from a field of the request — and answer plaintext CBOR; what is sealed
// for a peer (the M1 ticket) stays sealed. /cluster and /ledger/head are as
// over plain CoAP. The same core serves both transports.
func ListenDTLS(addr string, core Core, dc coapedge.DTLSConfig, opts ...Option) (*Server, error) {
	cfg := config(opts)
	s := &Server{cfg: cfg, core: core}
	dc.PSK = core.PSK
	if cfg.Observer != nil {
		dc.HandshakeFailed = cfg.Observer.HandshakeFailed
	}
	edge, err := coapedge.ListenDTLS(addr, s.coapsResources(), dc, edgeOptions(cfg)...)
	if err != nil {
		return nil, err
	}
	s.edge = edge
	return s, nil
}

// CloseIdentity closes the coaps sessions of a member whose keys died (a
// coaps server only; see cluster.Core.OnKeyRetired).
func (s *Server) CloseIdentity(id string) { s.edge.CloseIdentity(id) }

// coapsResources is the CH's path table over coaps.
func (s *Server) coapsResources() []coapedge.Resource {
	cbor := []message.MediaType{message.AppCBOR}
	return append([]coapedge.Resource{
		{Path: "/verify", Method: codes.POST, Format: message.AppCBOR, Answers: cbor, NeverWaits: true, Link: `rt="iotguard.verify"`, Handle: s.plain(s.core.VerifyPlain, codes.Content)},
		{Path: "/session", Method: codes.POST, Format: message.AppCBOR, Answers: cbor, NeverWaits: true, Link: `rt="iotguard.session"`, Handle: s.plain(s.core.SessionPlain, codes.Content)},
		{Path: "/leave", Method: codes.POST, Format: message.AppCBOR, Answers: cbor, Link: `rt="iotguard.leave"`, Handle: s.plain(s.core.LeavePlain, codes.Changed)},
	}, s.publicResources()...)
}

// plain serves a plaintext request of the DTLS-authenticated member.
func (s *Server) plain(serve func(context.Context, string, []byte) ([]byte, error), ok codes.Code) coapedge.Handler {
	return func(ctx context.Context, r *coapedge.Request) coapedge.Response {
		if r.Identity == "" { // an edge bug, never a client's doing
			fail, _ := s.fail(r, cluster.ErrUnauthorized)
			return fail
		}
		resp, err := serve(ctx, r.Identity, r.Body)
		if err != nil {
			fail, _ := s.fail(r, err)
			return fail
		}
		return coapedge.Response{Code: ok, Format: message.AppCBOR, Body: resp}
	}
}
