// Package coapedge is IoT-Guard's one CoAP/UDP edge: the server the cluster
// head (coapsrv), the device listener (device) and the benchmark's echo
// baseline all run, so that each gets the same protections and the same
// costs. It owns what happens to a datagram before a resource sees it.
//
// A datagram is handled in stages, cheapest first, as miekg/dns does:
//
//  1. go-coap drops what does not parse as CoAP, never answering it (an
//     answer to garbage could be used to amplify).
//  2. The per-source rate limit (4.29 with Max-Age).
//  3. The payload size: anything over the limit, and any block-wise request,
//     gets 4.13 with Size1 (every valid request fits one datagram, so no
//     blocks are ever buffered; RFC 7959 §2.9.3).
//  4. The path (4.04), the method (4.05) and, for a POST, the Content-Format
//     (4.15), from the resource table.
//  5. The resource's Handler, under a deadline, with its payload read at its
//     exact size. A panic in a handler is answered 5.00 and reported; the
//     server keeps serving.
//
// Every answered request is reported to the Observer (metrics) and, at debug
// level, to the request log. /.well-known/core (RFC 6690) lists the table.
package coapedge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/iotguard/iotguard/internal/coapbody"
)

// Resource is one row of the path table.
type Resource struct {
	Path   string            // e.g. "/join"
	Method codes.Code        // the one method it takes
	Format message.MediaType // the Content-Format a POST must carry
	Link   string            // attributes in /.well-known/core, e.g. `rt="iotguard.join";ct=18`
	Handle Handler
}

// Handler serves a request whose source, size, method and Content-Format
// the edge has checked, and returns the answer.
type Handler func(ctx context.Context, r *Request) Response

// Request is what a Handler sees of a request.
type Request struct {
	Path   string // the resource's path
	Source string // the sender's address, host:port
	// Identity is the PSK identity a coaps client authenticated with in its
	// DTLS handshake; "" over plain CoAP.
	Identity string
	Body     []byte   // the payload; nil when empty
	Query    []string // the Uri-Query options, e.g. "height=7"

	accept    message.MediaType
	hasAccept bool
}

// Accept returns the request's Accept option and whether it has one.
func (r *Request) Accept() (message.MediaType, bool) { return r.accept, r.hasAccept }

// Response is a Handler's answer.
type Response struct {
	Code    codes.Code
	Format  message.MediaType
	Body    []byte
	Options []message.Option
}

// Diagnostic returns an error answer: code with a short UTF-8 text
// (Content-Format 0), as docs/PROTOCOL.md §2 says every error carries.
func Diagnostic(code codes.Code, text string, opts ...message.Option) Response {
	return Response{Code: code, Format: message.TextPlain, Body: []byte(text), Options: opts}
}

// Observer sees every answered request: the transport ("udp" or "dtls"),
// the resource (a path of the table or "other", never client input), the
// code as CoAP writes it ("2.05") and the handling time.
type Observer interface {
	Request(transport, resource, code string, d time.Duration)
}

// The transports an Observer hears of.
const (
	TransportUDP  = "udp"
	TransportDTLS = "dtls"
)

// Config holds the edge's settings; see the With* options.
type Config struct {
	// RateLimit is the sustained requests per second allowed from one source
	// IP address, with bursts of 2×; 0 disables the limit.
	RateLimit float64
	// MaxPayload is the largest request payload served; larger ones get 4.13.
	MaxPayload int
	// Timeout bounds the handling of one request.
	Timeout time.Duration
	// Errors receives per-request failures (handler panics, write errors,
	// transport errors) wrapped with the peer address. The server keeps
	// serving.
	Errors func(error)
	// Observer, if set, sees every answered request.
	Observer Observer
	// Log, if set, gets a debug record of every answered request.
	Log *slog.Logger
}

// Option adjusts a Config.
type Option func(*Config)

// WithRateLimit sets requests per second per source IP (0: off).
func WithRateLimit(perSecond float64) Option { return func(c *Config) { c.RateLimit = perSecond } }

// WithMaxPayload sets the largest payload served.
func WithMaxPayload(n int) Option { return func(c *Config) { c.MaxPayload = n } }

// WithTimeout bounds the handling of one request.
func WithTimeout(d time.Duration) Option { return func(c *Config) { c.Timeout = d } }

// WithErrors installs the error hook.
func WithErrors(f func(error)) Option { return func(c *Config) { c.Errors = f } }

// WithObserver installs a request observer (metrics).
func WithObserver(o Observer) Option { return func(c *Config) { c.Observer = o } }

// WithLog installs the request log (debug level).
func WithLog(l *slog.Logger) Option { return func(c *Config) { c.Log = l } }

// Defaults the options adjust.
const (
	DefaultRateLimit  = 1000
	DefaultMaxPayload = 1024
	DefaultTimeout    = 10 * time.Second
)

// maxDatagram bounds what go-coap reads. It is far larger than any valid
// request on purpose: a datagram go-coap refuses to read is dropped silently,
// and its sender waits and retransmits, while one it reads gets our 4.13.
const maxDatagram = 64 * 1024

// Server is a running edge.
type Server struct {
	cfg       Config
	transport string
	resources []Resource
	addr      net.Addr
	stop      func()     // stops the serve loop
	done      chan error // the serve loop's result
	dtls      *dtlsGuard // coaps only
}

// newServer returns a Server for resources with opts applied; the caller
// starts its serve loop.
func newServer(transport string, resources []Resource, opts []Option) *Server {
	cfg := Config{RateLimit: DefaultRateLimit, MaxPayload: DefaultMaxPayload, Timeout: DefaultTimeout, Errors: func(error) {}}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{cfg: cfg, transport: transport, done: make(chan error, 1)}
	s.resources = append(resources, Resource{Path: "/.well-known/core", Method: codes.GET, Handle: s.wellKnownCore})
	return s
}

// router routes the resource table behind the guard.
func (s *Server) router() *mux.Router {
	router := mux.NewRouter()
	router.Use(s.guard())
	for _, res := range s.resources {
		router.Handle(res.Path, mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) { s.serve(res, w, r) }))
	}
	router.DefaultHandle(mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		s.answer(w, r, "other", time.Now(), Diagnostic(codes.NotFound, "no such resource"))
	}))
	return router
}

// transportErrors is the go-coap error hook: transport errors go to the
// edge's error hook.
func (s *Server) transportErrors(err error) { s.cfg.Errors(fmt.Errorf("coap: %w", err)) }

// Listen binds addr (UDP host:port) and serves resources on it.
func Listen(addr string, resources []Resource, opts ...Option) (*Server, error) {
	s := newServer(TransportUDP, resources, opts)
	conn, err := coapnet.NewListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	srv := udp.NewServer(
		options.WithMux(s.router()),
		options.WithErrors(s.transportErrors),
		options.WithMaxMessageSize(maxDatagram),
		options.WithBlockwise(false, blockwise.SZX1024, time.Second),
	)
	s.addr, s.stop = conn.LocalAddr(), srv.Stop
	go func() { s.done <- srv.Serve(conn) }()
	return s, nil
}

// Addr returns the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.addr }

// Close stops serving and waits for the serve loop to end.
func (s *Server) Close() error {
	s.stop()
	err := <-s.done
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("failed to serve: %w", err)
	}
	return nil
}

// serve runs stage 4 and 5 for res.
func (s *Server) serve(res Resource, w mux.ResponseWriter, r *mux.Message) {
	start := time.Now()
	if r.Code() != res.Method {
		s.answer(w, r, res.Path, start, Diagnostic(codes.MethodNotAllowed, "method not allowed"))
		return
	}
	req := &Request{Path: res.Path, Source: w.Conn().RemoteAddr().String()}
	if a, ok := w.Conn().NetConn().(*association); ok {
		if !a.begin() {
			s.answer(w, r, res.Path, start, Diagnostic(codes.Unauthorized, "unauthorized: session ended"))
			return
		}
		// The association ends, if it must, after this answer is written.
		defer func() {
			if !responsewriter.AfterWrite(r.Context(), a.end) {
				a.end()
			}
		}()
		req.Identity = a.who()
	}
	if a, err := r.Accept(); err == nil {
		req.accept, req.hasAccept = a, true
	}
	if q, err := r.Queries(); err == nil {
		req.Query = q
	}
	if res.Method == codes.POST {
		if cf, err := r.ContentFormat(); err != nil || cf != res.Format {
			s.answer(w, r, res.Path, start, Diagnostic(codes.UnsupportedMediaType, "unsupported content-format: want "+res.Format.String()))
			return
		}
		var err error
		if req.Body, err = coapbody.Read(r.Message); err != nil {
			s.answer(w, r, res.Path, start, Diagnostic(codes.BadRequest, "malformed: unreadable body"))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	s.answer(w, r, res.Path, start, res.Handle(ctx, req))
}

// answer writes resp and reports it.
func (s *Server) answer(w mux.ResponseWriter, r *mux.Message, resource string, start time.Time, resp Response) {
	if err := w.SetResponse(resp.Code, resp.Format, bytes.NewReader(resp.Body), resp.Options...); err != nil {
		s.cfg.Errors(fmt.Errorf("%v: failed to set response: %w", w.Conn().RemoteAddr(), err))
	}
	d := time.Since(start)
	code := CodeString(resp.Code)
	if s.cfg.Observer != nil {
		s.cfg.Observer.Request(s.transport, resource, code, d)
	}
	if s.cfg.Log != nil {
		s.cfg.Log.Debug("coap request", "transport", s.transport, "resource", resource, "code", code, "from", w.Conn().RemoteAddr().String(), "duration", d)
	}
}

// wellKnownCore lists the resources in CoRE Link Format (RFC 6690); go-coap
// does not serve it by itself.
func (s *Server) wellKnownCore(context.Context, *Request) Response {
	var links []string
	for _, res := range s.resources {
		if res.Link != "" {
			links = append(links, "<"+res.Path+">;"+res.Link)
		}
	}
	return Response{Code: codes.Content, Format: message.AppLinkFormat, Body: []byte(strings.Join(links, ","))}
}

// CodeString renders a code as CoAP writes it, e.g. "4.03".
func CodeString(c codes.Code) string { return fmt.Sprintf("%d.%02d", c>>5, c&0x1f) }
