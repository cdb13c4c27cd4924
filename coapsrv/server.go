// Package coapsrv serves the cluster head's CoAP resources over UDP
// (docs/PROTOCOL.md §2): /join, the protected /verify /session /leave, the
// public /cluster and /ledger/head, and /.well-known/core. It owns what is
// CoAP: methods, content formats, codes, size limits, per-source rate limits
// and the Echo option. Policy and crypto are the Core's.
//
// A datagram is handled in stages, cheapest first: go-coap drops what does
// not parse as CoAP (never answering it: no amplification); then the rate
// limit, method, Content-Format and size; only then does the Core decode and
// verify.
package coapsrv

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpserver "github.com/plgd-dev/go-coap/v3/udp/server"
)

// Core is what the server needs from the cluster's policy core
// (*cluster.Core implements it). Errors are cluster's sentinels.
type Core interface {
	Join(ctx context.Context, payload []byte, addr string) (cluster.JoinResult, error)
	Protected(ctx context.Context, path string, payload []byte, addr string) ([]byte, error)
	ClusterInfo() ([]byte, error)
	ClusterText() (string, error)
	Echo(addr string) []byte
	LedgerHead() ([]byte, error)
	LedgerHeadText() (string, error)
}

// Observer sees every answered request: the resource (a fixed path, never
// client input), the response code and the handling time.
type Observer interface {
	Request(resource string, code string, d time.Duration)
}

// Config holds the server's options; see the With* functions.
type Config struct {
	// Errors receives per-request failures (internal errors, write errors)
	// wrapped with the peer address. The server keeps serving.
	Errors func(error)
	// RateLimit is the sustained requests per second allowed from one source
	// IP address, with bursts of 2×; 0 disables the limit.
	RateLimit float64
	// Observer, if set, sees every answered request.
	Observer Observer
	// Timeout bounds the handling of one request (ledger commit included).
	Timeout time.Duration
}

// DefaultConfig returns the defaults the With* options adjust.
func DefaultConfig() Config {
	return Config{Errors: func(error) {}, RateLimit: 1000, Timeout: 10 * time.Second}
}

// Option adjusts a Config.
type Option func(*Config)

// WithErrors installs the error hook.
func WithErrors(f func(error)) Option { return func(c *Config) { c.Errors = f } }

// WithRateLimit sets requests per second per source IP (0: off).
func WithRateLimit(perSecond float64) Option { return func(c *Config) { c.RateLimit = perSecond } }

// WithObserver installs a request observer (metrics).
func WithObserver(o Observer) Option { return func(c *Config) { c.Observer = o } }

// Server is a running CoAP server.
type Server struct {
	cfg  Config
	core Core
	srv  *udpserver.Server
	conn *coapnet.UDPConn
	done chan error
}

// Listen binds addr (host:port, UDP) and starts serving core on it.
func Listen(addr string, core Core, opts ...Option) (*Server, error) {
	cfg := DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	conn, err := coapnet.NewListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	s := &Server{cfg: cfg, core: core, conn: conn, done: make(chan error, 1)}
	router := mux.NewRouter()
	router.Use(s.limits())
	s.routes(router)
	s.srv = udp.NewServer(
		options.WithMux(router),
		options.WithErrors(func(err error) { cfg.Errors(fmt.Errorf("coap: %w", err)) }),
		options.WithMaxMessageSize(maxDatagram),
		options.WithBlockwise(false, blockwise.SZX1024, time.Second),
	)
	go func() { s.done <- s.srv.Serve(conn) }()
	return s, nil
}

// Addr returns the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Close stops serving and waits for the serve loop to end.
func (s *Server) Close() error {
	s.srv.Stop()
	err := <-s.done
	if err != nil && !isClosed(err) {
		return fmt.Errorf("failed to serve: %w", err)
	}
	return nil
}
