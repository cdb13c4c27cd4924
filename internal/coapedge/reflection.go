package coapedge

import (
	"errors"
	"net"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
)

// maxAmplification bounds an answer to a source whose address is not
// verified: at most three times the request (RFC 9175 §2.4). A spoofed
// request then reflects no more than the spoofer sent, times three.
const maxAmplification = 3

// verified reports whether r carries an Echo option made for source within
// its lifetime: the source received the datagram that carried it, so it is
// not a spoofed address (RFC 9175 §2.4). Over coaps every request is: the
// DTLS handshake's HelloVerifyRequest cookie verified the address.
func (s *Server) verified(r *mux.Message, source string) bool {
	if s.transport == TransportDTLS {
		return true
	}
	e, err := r.Options().GetBytes(message.Echo)
	return err == nil && s.cfg.Echo.EchoFresh(e, source, s.cfg.now())
}

// mustVerify reports whether r has to prove its source's address before
// res's handler runs: res is Large, r is not a padded request to a Padded
// res, and r carries no Echo made for source.
func (s *Server) mustVerify(res *Resource, r *mux.Message, source string) bool {
	if !res.Large || (res.Padded && requestSize(r.Message) >= PaddedRequest) {
		return false
	}
	return !s.verified(r, source)
}

// challenge asks source to prove its address: 4.01 with a fresh Echo, for
// the request to be sent again carrying it.
func (s *Server) challenge(source string) Response {
	return Diagnostic(codes.Unauthorized, "echo required",
		message.Option{ID: message.Echo, Value: s.cfg.Echo.Echo(source, s.cfg.now())})
}

// bound returns resp, or what replaces it, so that the answer to r is at most
// maxAmplification times r's size unless r authenticated (resp says so) or
// verified the address it came from. A success too large becomes the Echo
// challenge; an error too large, or a challenge, loses its diagnostic text,
// then its options. What remains then, a bare code with r's token, is never
// larger than r. (from is formatted only for an answer too large.)
func (s *Server) bound(r *mux.Message, from net.Addr, resp Response) Response {
	if resp.Authenticated {
		return resp
	}
	limit := maxAmplification * requestSize(r.Message)
	if answerSize(r, resp) <= limit {
		return resp
	}
	source := from.String()
	if s.verified(r, source) {
		return resp
	}
	if resp.Code>>5 == 2 {
		resp = s.challenge(source)
	}
	if answerSize(r, resp) > limit {
		resp.Body = nil
	}
	if answerSize(r, resp) > limit {
		resp.Options = nil
	}
	return resp
}

// requestSize is r's size as a datagram (RFC 7252 §3): header, token,
// options, payload marker and payload. go-coap decoded r from exactly these
// (a request received) or will encode them (one to send).
func requestSize(r *pool.Message) int {
	body, _ := r.BodySize()
	return datagramSize(len(r.Token()), r.Options(), int(body))
}

// answerSize is the size of resp as a datagram answering r, options as
// answer writes them (Content-Format only with a body).
func answerSize(r *mux.Message, resp Response) int {
	var opts message.Options
	for _, o := range resp.Options {
		opts = opts.Add(o)
	}
	if len(resp.Body) > 0 {
		var buf [4]byte
		opts, _, _ = opts.SetContentFormat(buf[:], resp.Format)
	}
	return datagramSize(len(r.Token()), opts, len(resp.Body))
}

func datagramSize(token int, opts message.Options, body int) int {
	n := 4 + token
	if size, err := opts.Marshal(nil); errors.Is(err, message.ErrTooSmall) {
		n += size
	}
	if body > 0 {
		n += 1 + body
	}
	return n
}
