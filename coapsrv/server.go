// Package coapsrv is the cluster head's CoAP resources (docs/PROTOCOL.md §2):
// /join, the protected /verify /session /leave, the public /cluster and
// /ledger/head, and the transparency log's /ledger/checkpoint, /ledger/proof
// and /ledger/consistency, served on the CoAP edge (internal/coapedge), which owns the
// checks every datagram passes first. coapsrv owns what the CH's resources
// mean in CoAP: their methods and content formats, the codes and diagnostics
// of every rejection, and the Echo option. Policy and crypto are the Core's.
package coapsrv

import (
	"context"
	"net"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// Core is what the server needs from the cluster's policy core
// (*cluster.Core implements it). Errors are cluster's rejections.
type Core interface {
	Join(ctx context.Context, payload []byte, addr string) (cluster.JoinResult, error)
	Verify(ctx context.Context, payload []byte, addr string) ([]byte, error)
	Session(ctx context.Context, payload []byte, addr string) ([]byte, error)
	Leave(ctx context.Context, payload []byte, addr string) ([]byte, error)
	VerifyPlain(ctx context.Context, identity string, body []byte) ([]byte, error)
	SessionPlain(ctx context.Context, identity string, body []byte) ([]byte, error)
	LeavePlain(ctx context.Context, identity string, body []byte) ([]byte, error)
	PSK(identity string) ([]byte, error)
	ClusterInfo() ([]byte, error)
	ClusterText() (string, error)
	Echo(addr string) []byte
	LedgerHead() ([]byte, error)
	LedgerHeadText() (string, error)
	Checkpoint() ([]byte, error)
	CheckpointText() (string, error)
	Proof(ctx context.Context, req cluster.ProofRequest) ([]byte, error)
	Consistency(ctx context.Context, from uint64) ([]byte, error)
}

// Observer sees every answered request (coapedge.Observer), every refused
// join, by reason (a low-cardinality word of the rejection table), and every
// refused or failed coaps association, by reason (coapedge.Handshake*).
type Observer interface {
	coapedge.Observer
	JoinRejected(reason string)
	HandshakeFailed(reason string)
}

// Config holds the server's options; see the With* functions.
type Config struct {
	// Errors receives per-request failures (internal errors, write errors)
	// wrapped with the peer address. The server keeps serving.
	Errors func(error)
	// RateLimit is the sustained requests per second allowed from one source
	// (an IPv4 address or an IPv6 /64), with bursts of 2×; 0 disables the
	// limit.
	RateLimit float64
	// MaxAssociations bounds the source endpoints held at once, and
	// AssociationRate the new ones per second (coapedge.Config); 0: no bound.
	MaxAssociations int
	AssociationRate float64
	// Echo makes and checks the Echo values of address verification; the CH
	// passes the issuer its joins use (keysvc.Service.Echoes), so that the
	// Echo of a 4.01 on GET /cluster also makes a join fresh (§3.1).
	Echo coapedge.Echoer
	// Observer, if set, sees every answered request.
	Observer Observer
	// Timeout bounds the handling of a request that waits: a join or a
	// leave, on its ledger commit. No other resource waits.
	Timeout time.Duration
}

// Option adjusts a Config.
type Option func(*Config)

// WithErrors installs the error hook.
func WithErrors(f func(error)) Option { return func(c *Config) { c.Errors = f } }

// WithRateLimit sets requests per second per source (0: off).
func WithRateLimit(perSecond float64) Option { return func(c *Config) { c.RateLimit = perSecond } }

// WithMaxAssociations bounds the associations held at once (0: no bound).
func WithMaxAssociations(n int) Option { return func(c *Config) { c.MaxAssociations = n } }

// WithAssociationRate bounds the new associations per second (0: no bound).
func WithAssociationRate(perSecond float64) Option {
	return func(c *Config) { c.AssociationRate = perSecond }
}

// WithEcho sets the issuer of the Echo values that verify addresses.
func WithEcho(e coapedge.Echoer) Option { return func(c *Config) { c.Echo = e } }

// WithObserver installs a request observer (metrics).
func WithObserver(o Observer) Option { return func(c *Config) { c.Observer = o } }

// Server is a running CoAP server.
type Server struct {
	cfg  Config
	core Core
	edge *coapedge.Server
}

// EdgeOptions returns the edge settings of the CH's server for cfg; the
// benchmark's echo baseline runs on the same ones.
func EdgeOptions(opts ...Option) []coapedge.Option { return edgeOptions(config(opts)) }

func config(opts []Option) Config {
	cfg := Config{
		Errors: func(error) {}, RateLimit: coapedge.DefaultRateLimit, Timeout: coapedge.DefaultTimeout,
		MaxAssociations: coapedge.DefaultMaxCoAPAssociations, AssociationRate: coapedge.DefaultCoAPAssociationRate,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func edgeOptions(cfg Config) []coapedge.Option {
	eo := []coapedge.Option{
		coapedge.WithRateLimit(cfg.RateLimit),
		coapedge.WithMaxAssociations(cfg.MaxAssociations),
		coapedge.WithAssociationRate(cfg.AssociationRate),
		coapedge.WithTimeout(cfg.Timeout),
		coapedge.WithErrors(cfg.Errors),
		coapedge.WithMaxPayload(wireMaxPayload),
		// Every answer to a request that did not authenticate is a refusal,
		// a challenge or a read: nothing changed, so a duplicate may be
		// served again, and no sender can make the CH keep answers.
		coapedge.WithKeepOnlyAuthenticated(),
	}
	if cfg.Echo != nil {
		eo = append(eo, coapedge.WithEcho(cfg.Echo))
	}
	if cfg.Observer != nil {
		eo = append(eo, coapedge.WithObserver(cfg.Observer))
	}
	return eo
}

// Listen binds addr (host:port, UDP) and starts serving core on it.
func Listen(addr string, core Core, opts ...Option) (*Server, error) {
	cfg := config(opts)
	s := &Server{cfg: cfg, core: core}
	edge, err := coapedge.Listen(addr, s.resources(), edgeOptions(cfg)...)
	if err != nil {
		return nil, err
	}
	s.edge = edge
	return s, nil
}

// Addr returns the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.edge.Addr() }

// Close stops serving and waits for the serve loop to end.
func (s *Server) Close() error { return s.edge.Close() }
