// Package coapedge is IoT-Guard's one CoAP/UDP edge: the server the cluster
// head (coapsrv), the device listener (device) and the benchmark's echo
// baseline all run, so that each gets the same protections and the same
// costs. It owns what happens to a datagram before a resource sees it, and
// what may be sent back.
//
// A datagram is handled in stages, cheapest first, as miekg/dns does:
//
//  1. go-coap drops what does not parse as CoAP, never answering it (an
//     answer to garbage could be used to amplify); the edge drops what came
//     to a multicast or broadcast address (group.go).
//  2. A request from a source endpoint (address:port) without an association
//     is served without one — unless its resource is not Stateless — at
//     most MaxStateless at once, through the stages below; a duplicate of
//     one whose answer authenticated draws that answer again (stateless.go,
//     kept.go).
//     Any other datagram from such an endpoint gets an association only
//     within the association cap and the new-association rate, and only if
//     its source is within its rate limit; otherwise it is dropped before
//     go-coap spends anything on it (associations.go).
//  3. A message that is not a request — an ACK, a Reset, a response code —
//     is never handled as one: a Confirmable one is rejected with a Reset,
//     the others are dropped (messages.go).
//  4. The per-source rate limit (4.29 with Max-Age; sources.go).
//  5. The payload size: anything over the limit, and any block-wise request,
//     gets 4.13 with Size1 (every valid request fits one datagram, so no
//     blocks are ever buffered; RFC 7959 §2.9.3).
//  6. The path (4.04), the method (4.05), for a POST the Content-Format
//     (4.15), and the Accept option (4.06, RFC 7252 §5.10.4), from the
//     resource table.
//  7. For a resource whose answer is larger than its request, the source's
//     address: a request without a fresh Echo option gets 4.01 with one
//     (RFC 9175 §2.4; reflection.go), unless the resource is cheap to
//     answer and the request was padded to PaddedRequest bytes.
//  8. The resource's Handler, under a deadline, with its payload read at its
//     exact size. A panic in a handler is answered 5.00 and reported; the
//     server keeps serving.
//
// On the way out, an answer to a request that neither verified its address
// nor authenticated is at most three times the request's size (RFC 9175
// §2.4), whatever produced it. A Non-confirmable request is answered
// Non-confirmable, a Confirmable one with a piggybacked ACK: the edge never
// sends a Confirmable message, so it never retransmits.
//
// Every answered request is reported to the Observer (metrics) and, at debug
// level, to the request log; every datagram dropped unanswered by stages 1
// to 3 is counted by reason, and never passed to the error hook.
// /.well-known/core (RFC 6690) lists the table.
package coapedge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
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
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/internal/echo"
)

// Resource is one row of the path table.
type Resource struct {
	Path   string            // e.g. "/join"
	Method codes.Code        // the one method it takes
	Format message.MediaType // the Content-Format a POST must carry
	// Answers lists the Content-Formats the resource answers in; a request
	// whose Accept option names another gets 4.06. /.well-known/core lists
	// them as the resource's ct attribute.
	Answers []message.MediaType
	// Link holds the other attributes in /.well-known/core, e.g.
	// `rt="iotguard.join"`; a resource without one is not listed.
	Link string
	// Large marks a resource whose answer can be more than three times its
	// request: it is served only to a source whose address an Echo verified
	// (stage 7). Without it an answer that turns out too large for an
	// unverified source is still replaced by the Echo challenge, after the
	// handler did its work.
	Large bool
	// Padded marks a Large resource served at once to a request padded to
	// PaddedRequest bytes (or more), whose answer is then bound like any
	// other. Only for an answer that costs no more than a checked Echo:
	// made once and kept, never signed or looked up per request.
	Padded bool
	// Stateless marks a resource served without an association to a source
	// endpoint that has none (stateless.go): a duplicate of its request
	// draws the same answer again if the answer is Authenticated or Repeat,
	// and is otherwise served again, so a request whose answer is neither
	// must be idempotent (a safe GET, a refusal). Plain CoAP only.
	Stateless bool
	// NeverWaits marks a resource whose handler never waits on its context
	// (no ledger commit, no request of its own): the edge gives it the
	// request's context as it is. Every other handler's context ends at
	// the request timeout, which costs a timer per request.
	NeverWaits bool
	// Cost is how many tokens of its source's rate limit a request to the
	// resource takes (0 or 1: one, as every other request). A resource
	// whose requests cost the server far more than others' — a join's
	// signature checks and signature — takes more, so that what one source
	// can make the server do stays bounded in work, not in requests. It is
	// capped at the source's burst, so that the resource stays reachable
	// under a low limit. Requests to a resource of Cost more than one take
	// at most half of the MaxStateless served at once.
	Cost   int
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
	// Authenticated says the request proved who sent it (a signed join, a
	// member's protected request, an M2M message under a session key): it
	// cannot be spoofed or replayed, so its answer may exceed three times its
	// size. IMPORTANT: set it only for answers to such requests.
	Authenticated bool
	// Repeat says a duplicate of the request must get this answer again
	// (its request spent something, e.g. a sequence number), though the
	// answer stays within the reflection bound: it is kept for
	// retransmissions as an Authenticated answer is, by the stateless path
	// and, with KeepOnlyAuthenticated, by an association.
	Repeat bool
}

// Diagnostic returns an error answer: code with a short UTF-8 text
// (Content-Format 0), as docs/PROTOCOL.md §2 says every error carries.
func Diagnostic(code codes.Code, text string, opts ...message.Option) Response {
	return Response{Code: code, Format: message.TextPlain, Body: []byte(text), Options: opts}
}

// Observer sees every answered request: the transport ("udp" or "dtls"),
// the resource (a path of the table or "other", never client input), the
// code as CoAP writes it ("2.05") and the handling time; every datagram a
// plain CoAP edge dropped unanswered, by reason (one of the Drop
// constants); and the number of its associations whenever it changes.
type Observer interface {
	Request(transport, resource, code string, d time.Duration)
	Dropped(reason string)
	Associations(n int)
}

// Reasons a datagram is dropped unanswered, as Observer.Dropped gets them.
const (
	DropAssociationCap  = "association_cap"  // a new source endpoint while MaxAssociations are held
	DropAssociationRate = "association_rate" // a new source endpoint beyond AssociationRate
	DropSourceRate      = "source_rate"      // a new source endpoint, or a ping, of a source over its rate limit
	DropNotRequest      = "not_a_request"    // an ACK, a Reset, a response: nothing to answer
	DropAssociationBusy = "association_busy" // its association already has a full queue of requests waiting
	DropStatelessBusy   = "stateless_busy"   // a request to serve without an association, MaxStateless being served
	DropCostlyBusy      = "costly_busy"      // a request to a costly resource (a join) to serve without an association, half of MaxStateless being such
	DropMalformed       = "malformed"        // not CoAP (go-coap could not parse it)
	DropBadOption       = "bad_option"       // a request with an unknown critical option: NON, or over its source's rate
	DropGroup           = "group"            // sent to a multicast or broadcast address (group.go)
)

// DropReasons lists every Drop constant (for metrics that export each).
var DropReasons = []string{DropAssociationCap, DropAssociationRate, DropSourceRate, DropNotRequest, DropAssociationBusy, DropStatelessBusy, DropCostlyBusy, DropMalformed, DropBadOption, DropGroup}

// Echoer makes and checks the Echo values (RFC 9175) that verify a source's
// address. The cluster head passes the echoes its joins use
// (cluster.Core.EdgeEchoes), so that the Echo which verified a device's
// address also makes its join fresh (docs/PROTOCOL.md §3.1).
type Echoer interface {
	Echo(addr string, now time.Time) []byte
	EchoFresh(echo []byte, addr string, now time.Time) bool
}

// The transports an Observer hears of.
const (
	TransportUDP  = "udp"
	TransportDTLS = "dtls"
)

// Config holds the edge's settings; see the With* options.
type Config struct {
	// RateLimit is the sustained requests per second allowed from one source
	// (an IPv4 address or an IPv6 /64), with bursts of 2×; 0 disables the
	// limit.
	RateLimit float64
	// MaxAssociations bounds how many source endpoints (address:port) hold
	// an association at once: go-coap's connection and a cache of answers
	// each, kept until 16 s of inactivity; 0: no bound. Plain CoAP only (a
	// coaps edge has DTLSConfig.MaxAssociations).
	MaxAssociations int
	// AssociationRate bounds the new associations per second, all sources
	// together, in bursts of one second's worth; 0: no bound. Plain CoAP
	// only.
	AssociationRate float64
	// Echo makes and checks the values of address verification; nil: an
	// issuer of the edge's own.
	Echo Echoer
	// MaxPayload is the largest request payload served; larger ones get 4.13.
	MaxPayload int
	// Timeout bounds the handling of one request, unless its resource
	// NeverWaits.
	Timeout time.Duration
	// Errors receives per-request failures (handler panics, write errors,
	// transport errors) wrapped with the peer address. The server keeps
	// serving. What a client causes at will — a datagram that is not CoAP,
	// a full queue, a failed coaps handshake — is counted instead
	// (Observer.Dropped, DTLSConfig.HandshakeFailed); yet a client may still
	// cause some of these errors, so a hook that logs should bound its lines.
	Errors func(error)
	// Observer, if set, sees every answered request.
	Observer Observer
	// Log, if set, gets a debug record of every answered request.
	Log *slog.Logger
	// KeepOnlyAuthenticated keeps, of an association's answers, only those
	// to requests that authenticated (Response.Authenticated or Repeat) for
	// EXCHANGE_LIFETIME (247 s), to repeat to a duplicate; a duplicate of
	// any other request is handled again. IMPORTANT: only for resources
	// whose answers to requests that did not authenticate change nothing
	// (refusals, challenges, reads), as the CH's do. go-coap keeps every
	// answer otherwise: ~170 B for 247 s per datagram any sender — spoofed,
	// over its rate limit — chose to send. Plain CoAP only: over coaps
	// every request comes over an association whose handshake authenticated
	// its client.
	KeepOnlyAuthenticated bool

	now          func() time.Time // the clock of limits and echoes (tests freeze it)
	maxSources   int              // how many sources the rate limiter remembers
	maxStateless int              // requests served without an association at once
	maxKept      int              // answers the stateless path keeps for duplicates
}

// Option adjusts a Config.
type Option func(*Config)

// WithRateLimit sets requests per second per source (0: off).
func WithRateLimit(perSecond float64) Option { return func(c *Config) { c.RateLimit = perSecond } }

// WithMaxAssociations bounds the associations held at once (0: no bound).
func WithMaxAssociations(n int) Option { return func(c *Config) { c.MaxAssociations = n } }

// WithAssociationRate bounds the new associations per second (0: no bound).
func WithAssociationRate(perSecond float64) Option {
	return func(c *Config) { c.AssociationRate = perSecond }
}

// WithEcho sets the issuer of the Echo values that verify addresses.
func WithEcho(e Echoer) Option { return func(c *Config) { c.Echo = e } }

// WithMaxPayload sets the largest payload served.
func WithMaxPayload(n int) Option { return func(c *Config) { c.MaxPayload = n } }

// WithTimeout bounds the handling of one request (Config.Timeout).
func WithTimeout(d time.Duration) Option { return func(c *Config) { c.Timeout = d } }

// WithErrors installs the error hook.
func WithErrors(f func(error)) Option { return func(c *Config) { c.Errors = f } }

// WithObserver installs a request observer (metrics).
func WithObserver(o Observer) Option { return func(c *Config) { c.Observer = o } }

// WithLog installs the request log (debug level).
func WithLog(l *slog.Logger) Option { return func(c *Config) { c.Log = l } }

// WithKeepOnlyAuthenticated sets Config.KeepOnlyAuthenticated.
func WithKeepOnlyAuthenticated() Option { return func(c *Config) { c.KeepOnlyAuthenticated = true } }

// Defaults the options adjust.
const (
	DefaultRateLimit  = 1000
	DefaultMaxPayload = 1024
	DefaultTimeout    = 10 * time.Second
	// DefaultMaxCoAPAssociations holds a plain CoAP association's cost
	// (~5 KiB: the connection and its cache, before answers) under ~50 MiB.
	// (A coaps edge has DTLSConfig.MaxAssociations.)
	DefaultMaxCoAPAssociations = 10_000
	// DefaultCoAPAssociationRate: 16 s of it (an association's idle life) is
	// more than the cap, so under a flood of new source endpoints the cap
	// is what binds.
	DefaultCoAPAssociationRate = 1000
)

// maxDatagram bounds what go-coap reads. It is far larger than any valid
// request on purpose: a datagram go-coap refuses to read is dropped silently,
// and its sender waits and retransmits, while one it reads gets our 4.13.
const maxDatagram = 64 * 1024

// Server is a running edge.
type Server struct {
	cfg          Config
	transport    string
	resources    []Resource
	sources      *sources
	associations *associations        // plain CoAP only
	stateless    *stateless           // plain CoAP only
	byPath       map[string]*Resource // the table by path
	addr         net.Addr
	stop         func()     // stops the serve loop
	done         chan error // the serve loop's result
	dtls         *dtlsGuard // coaps only
	broadcasts   broadcasts // the host's directed broadcast addresses (group.go)
}

// newServer returns a Server for resources with opts applied; the caller
// starts its serve loop.
func newServer(transport string, resources []Resource, opts []Option) *Server {
	cfg := Config{
		RateLimit: DefaultRateLimit, MaxPayload: DefaultMaxPayload, Timeout: DefaultTimeout,
		MaxAssociations: DefaultMaxCoAPAssociations, AssociationRate: DefaultCoAPAssociationRate,
		Errors: func(error) {}, now: time.Now, maxSources: maxSources, maxStateless: MaxStateless, maxKept: MaxKeptAnswers,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Echo == nil {
		cfg.Echo = ownEchoes{echo.New()}
	}
	s := &Server{cfg: cfg, transport: transport, done: make(chan error, 1), sources: newSources(cfg.RateLimit, cfg.maxSources)}
	s.resources = append(resources, Resource{Path: "/.well-known/core", Method: codes.GET,
		Answers: []message.MediaType{message.AppLinkFormat}, Large: true, Stateless: true, NeverWaits: true, Handle: s.wellKnownCore})
	s.byPath = make(map[string]*Resource, len(s.resources))
	for i := range s.resources {
		s.byPath[s.resources[i].Path] = &s.resources[i]
	}
	return s
}

// transportErrors is the go-coap error hook: transport errors go to the
// edge's error hook, but what a client causes with each datagram or
// handshake of its choosing is counted, and logged at debug only, never
// passed on: one line each would let anyone fill the log. That is a datagram
// dropped because its association's queue was full (third_party/README.md,
// patch 6: its source chose to send faster than its requests are served), a
// datagram that is not CoAP, and a failed coaps handshake (counted by
// DTLSConfig.HandshakeFailed).
func (s *Server) transportErrors(err error) {
	var malformed *udpclient.MalformedMessageError
	switch {
	case errors.Is(err, udpclient.ErrReceivedQueueFull):
		s.dropped(DropAssociationBusy)
	case errors.As(err, &malformed):
		s.dropped(DropMalformed)
	case errors.Is(err, errHandshake): // already counted by DTLSConfig.HandshakeFailed
	default:
		s.cfg.Errors(fmt.Errorf("coap: %w", err))
		return
	}
	if s.cfg.Log != nil {
		s.cfg.Log.Debug("coap datagram dropped", "transport", s.transport, "err", err)
	}
}

// Listen binds addr (UDP host:port) and serves resources on it.
func Listen(addr string, resources []Resource, opts ...Option) (*Server, error) {
	s := newServer(TransportUDP, resources, opts)
	s.associations = newAssociations(s.cfg.MaxAssociations, s.cfg.AssociationRate)
	conn, err := coapnet.NewListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	s.stateless = newStateless(s.resources, conn, s.cfg.maxStateless, s.cfg.maxKept)
	srv := udp.NewServer(
		options.WithMux(mux.HandlerFunc(s.guarded)),
		options.WithErrors(s.transportErrors),
		options.WithMaxMessageSize(maxDatagram),
		options.WithBlockwise(false, blockwise.SZX1024, time.Second),
		acceptConn(s.admit),
		options.WithOnNewConn(s.associated),
		options.WithRequestMonitor(s.requestsOnly),
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
	if s.stateless != nil { // the read loop has ended: no request is taken any more
		s.stateless.close()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("failed to serve: %w", err)
	}
	return nil
}

// serve runs stages 6 (past the path) to 8 for res; start is when the edge
// took the request.
func (s *Server) serve(res *Resource, w mux.ResponseWriter, r *mux.Message, start time.Time) {
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
	if r.HasOption(message.URIQuery) { // Queries allocates, with or without one
		if q, err := r.Queries(); err == nil {
			req.Query = q
		}
	}
	if res.Method == codes.POST {
		if cf, err := r.ContentFormat(); err != nil || cf != res.Format {
			// The number, not the name: a short diagnostic fits three times
			// a short request (reflection.go).
			s.answer(w, r, res.Path, start, Diagnostic(codes.UnsupportedMediaType, fmt.Sprintf("unsupported content-format: want %d", res.Format)))
			return
		}
		var err error
		if req.Body, err = r.ReadBody(); err != nil {
			s.answer(w, r, res.Path, start, Diagnostic(codes.BadRequest, "malformed: unreadable body"))
			return
		}
	}
	if req.hasAccept && !slices.Contains(res.Answers, req.accept) {
		s.answer(w, r, res.Path, start, Diagnostic(codes.NotAcceptable, "not acceptable"))
		return
	}
	if s.mustVerify(res, r, req.Source) {
		s.answer(w, r, res.Path, start, s.challenge(req.Source))
		return
	}
	ctx := r.Context()
	if !res.NeverWaits {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	s.answer(w, r, res.Path, start, res.Handle(ctx, req))
}

// answer writes resp, within the reflection bound, and reports it.
func (s *Server) answer(w mux.ResponseWriter, r *mux.Message, resource string, start time.Time, resp Response) {
	resp = s.bound(r, w.Conn().RemoteAddr(), resp)
	var body io.ReadSeeker // no body, no Content-Format
	if len(resp.Body) > 0 {
		body = bytes.NewReader(resp.Body)
	}
	if err := w.SetResponse(resp.Code, resp.Format, body, resp.Options...); err != nil {
		s.cfg.Errors(fmt.Errorf("%v: failed to set response: %w", w.Conn().RemoteAddr(), err))
	}
	keep := resp.Authenticated || resp.Repeat
	if sw, ok := w.(*statelessWriter); ok {
		sw.keep = keep
	} else if s.cfg.KeepOnlyAuthenticated && s.transport == TransportUDP && !keep {
		udpclient.ForgetAnswer(w.Message())
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
		if res.Link == "" {
			continue
		}
		link := "<" + res.Path + ">;" + res.Link
		switch ct := res.Answers; len(ct) {
		case 0:
		case 1:
			link += fmt.Sprintf(";ct=%d", ct[0])
		default:
			var list []string
			for _, f := range ct {
				list = append(list, strconv.Itoa(int(f)))
			}
			link += `;ct="` + strings.Join(list, " ") + `"`
		}
		links = append(links, link)
	}
	return Response{Code: codes.Content, Format: message.AppLinkFormat, Body: []byte(strings.Join(links, ","))}
}

// CodeString renders a code as CoAP writes it, e.g. "4.03".
func CodeString(c codes.Code) string {
	if int(c) < len(codeStrings) {
		return codeStrings[c]
	}
	return fmt.Sprintf("%d.%02d", c>>5, c&0x1f)
}

// codeStrings holds every one-byte code rendered, so that reporting an
// answer does not format one per request.
var codeStrings = func() (s [256]string) {
	for c := range s {
		s[c] = fmt.Sprintf("%d.%02d", c>>5, c&0x1f)
	}
	return s
}()

// ownEchoes are the echoes of an edge that shares them with nothing (a
// device's listener): an Issuer of its own, with no ledger height to stamp.
type ownEchoes struct{ i *echo.Issuer }

func (o ownEchoes) Echo(addr string, now time.Time) []byte { return o.i.Echo(addr, now, 0) }

func (o ownEchoes) EchoFresh(e []byte, addr string, now time.Time) bool {
	_, fresh := o.i.EchoFresh(e, addr, now)
	return fresh
}
