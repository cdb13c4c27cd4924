package coapsrv

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/iotguard/iotguard/internal/coapbody"
	"github.com/iotguard/iotguard/protect"
)

// resource describes one CoAP resource: its method, the Content-Format it
// takes (POST) and its handler, which returns the code it answered with.
type resource struct {
	path   string
	method codes.Code
	cf     message.MediaType
	link   string // attributes for /.well-known/core
	handle func(ctx context.Context, w mux.ResponseWriter, r *mux.Message, body []byte) codes.Code
}

func (s *Server) resources() []resource {
	return []resource{
		{"/join", codes.POST, message.AppCoseSign1, `rt="iotguard.join";ct=18`, s.join},
		{"/verify", codes.POST, message.AppCoseEncrypt0, `rt="iotguard.verify";ct=16`, s.protected(protect.PathVerify)},
		{"/session", codes.POST, message.AppCoseEncrypt0, `rt="iotguard.session";ct=16`, s.protected(protect.PathSession)},
		{"/leave", codes.POST, message.AppCoseEncrypt0, `rt="iotguard.leave";ct=16`, s.protected(protect.PathLeave)},
		{"/cluster", codes.GET, 0, `rt="iotguard.cluster";ct="18 0"`, s.public("/cluster", s.core.ClusterInfo, s.core.ClusterText, true)},
		{"/ledger/head", codes.GET, 0, `rt="iotguard.head";ct="18 0"`, s.public("/ledger/head", s.core.LedgerHead, s.core.LedgerHeadText, false)},
		{"/.well-known/core", codes.GET, 0, `ct=40`, s.wellKnownCore},
	}
}

// routes registers every resource behind the method, Content-Format and
// observation wrapper.
func (s *Server) routes(router *mux.Router) {
	for _, res := range s.resources() {
		res := res
		router.Handle(res.path, mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
			start := time.Now()
			code := s.serve(res, w, r)
			s.observe(r, code, time.Since(start))
		}))
	}
	router.DefaultHandle(mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		s.diagnostic(w, codes.NotFound, "no such resource")
		s.observe(r, codes.NotFound, 0)
	}))
}

func (s *Server) serve(res resource, w mux.ResponseWriter, r *mux.Message) codes.Code {
	if r.Code() != res.method {
		s.diagnostic(w, codes.MethodNotAllowed, "method not allowed")
		return codes.MethodNotAllowed
	}
	var body []byte
	if res.method == codes.POST {
		if cf, err := r.ContentFormat(); err != nil || cf != res.cf {
			s.diagnostic(w, codes.UnsupportedMediaType, "unsupported content-format: want "+res.cf.String())
			return codes.UnsupportedMediaType
		}
		var err error
		if body, err = coapbody.Read(r.Message); err != nil {
			s.diagnostic(w, codes.BadRequest, "malformed: unreadable body")
			return codes.BadRequest
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	return res.handle(ctx, w, r, body)
}

func addr(w mux.ResponseWriter) string { return w.Conn().RemoteAddr().String() }

func (s *Server) join(ctx context.Context, w mux.ResponseWriter, _ *mux.Message, body []byte) codes.Code {
	res, err := s.core.Join(ctx, body, addr(w))
	if err != nil {
		return s.fail(w, "/join", err)
	}
	code := codes.Created
	if !res.Created {
		code = codes.Changed
	}
	s.reply(w, code, message.AppCoseSign1, res.Response)
	return code
}

func (s *Server) protected(path string) func(context.Context, mux.ResponseWriter, *mux.Message, []byte) codes.Code {
	code := codes.Content
	if path == protect.PathLeave {
		code = codes.Changed
	}
	return func(ctx context.Context, w mux.ResponseWriter, _ *mux.Message, body []byte) codes.Code {
		resp, err := s.core.Protected(ctx, path, body, addr(w))
		if err != nil {
			return s.fail(w, "/"+path, err)
		}
		s.reply(w, code, message.AppCoseEncrypt0, resp)
		return code
	}
}

// wantsText reports whether the client asked for text/plain (Accept: 0).
func wantsText(r *mux.Message) bool {
	a, err := r.Accept()
	return err == nil && a == message.TextPlain
}

// public serves a read-only resource: the signed form (COSE_Sign1), or the
// text form when the client asks for text/plain. With echo, the signed form
// carries an Echo option for the client's next join (§3.1).
func (s *Server) public(path string, signed func() ([]byte, error), text func() (string, error), echo bool) func(context.Context, mux.ResponseWriter, *mux.Message, []byte) codes.Code {
	return func(_ context.Context, w mux.ResponseWriter, r *mux.Message, _ []byte) codes.Code {
		cf, body, err := message.AppCoseSign1, []byte(nil), error(nil)
		var opts []message.Option
		if wantsText(r) {
			var t string
			t, err = text()
			cf, body = message.TextPlain, []byte(t)
		} else {
			body, err = signed()
			if echo {
				opts = append(opts, message.Option{ID: message.Echo, Value: s.core.Echo(addr(w))})
			}
		}
		if err != nil {
			return s.fail(w, path, err)
		}
		s.reply(w, codes.Content, cf, body, opts...)
		return codes.Content
	}
}

// wellKnownCore lists the resources in CoRE Link Format (RFC 6690); go-coap
// does not serve it by itself.
func (s *Server) wellKnownCore(_ context.Context, w mux.ResponseWriter, _ *mux.Message, _ []byte) codes.Code {
	var links []string
	for _, res := range s.resources() {
		if res.path != "/.well-known/core" {
			links = append(links, "<"+res.path+">;"+res.link)
		}
	}
	s.reply(w, codes.Content, message.AppLinkFormat, []byte(strings.Join(links, ",")))
	return codes.Content
}

func (s *Server) reply(w mux.ResponseWriter, code codes.Code, cf message.MediaType, payload []byte, opts ...message.Option) {
	if err := w.SetResponse(code, cf, bytes.NewReader(payload), opts...); err != nil {
		s.cfg.Errors(fmt.Errorf("%v: failed to set response: %w", w.Conn().RemoteAddr(), err))
	}
}

// knownPath returns p if it is one of our resources, else "other": metric
// labels stay bounded whatever paths clients send.
func (s *Server) knownPath(p string) string {
	for _, res := range s.resources() {
		if res.path == p {
			return p
		}
	}
	return "other"
}

func (s *Server) observe(r *mux.Message, code codes.Code, d time.Duration) {
	if s.cfg.Observer == nil {
		return
	}
	p, _ := r.Path()
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	s.cfg.Observer.Request(s.knownPath(p), fmt.Sprintf("%d.%02d", code>>5, code&0x1f), d)
}
