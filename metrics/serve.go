// Package metrics owns the cluster head's Prometheus metrics and the HTTP
// endpoint that exposes them. Labels are bounded sets (resources, codes,
// reasons, operations); never a device ID or key.
package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
)

// NewRegistry returns a registry with the Go runtime, process and build-info
// collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
	return r
}

// Server serves /metrics over HTTP, or HTTPS.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// serveConfig is what the ServeOptions set.
type serveConfig struct {
	mux       *http.ServeMux
	webConfig string
	log       *slog.Logger
}

// ServeOption adjusts what Serve exposes besides /metrics, and how.
type ServeOption func(*serveConfig)

// WithPprof also mounts net/http/pprof under /debug/pprof/ (index, cmdline,
// profile, symbol, trace and the runtime's named profiles), for profiling a
// cluster head in its own process.
//
// IMPORTANT: a profile reveals code paths, heap contents' shapes and command
// lines, and /debug/pprof/profile costs CPU for as long as it runs: bind the
// metrics address to loopback or a management network only, or require
// credentials (WithWebConfig). The handlers are mounted on this server's own
// mux, never on http.DefaultServeMux.
func WithPprof() ServeOption {
	return func(c *serveConfig) {
		c.mux.HandleFunc("/debug/pprof/", pprof.Index)
		c.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		c.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		c.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		c.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
}

// WithWebConfig serves under the Prometheus web configuration file at path
// (prometheus/exporter-toolkit, the --web.config.file of Prometheus's own
// exporters): TLS, client certificates, and basic authentication with
// bcrypt hashes of the passwords, for everything Serve exposes. The file is
// read again as requests and handshakes come, so that an operator may change
// users or certificates without a restart. "" serves plain HTTP, open to
// whoever reaches the address.
func WithWebConfig(path string) ServeOption { return func(c *serveConfig) { c.webConfig = path } }

// CheckWebConfig reports what is wrong with the web configuration file at
// path ("": none), as Serve would: a file that does not parse, users without
// bcrypt hashes, certificates that do not load.
func CheckWebConfig(path string) error {
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("invalid metrics web config %s: %w", path, err)
	}
	return nil
}

// WithLog sends what the web configuration's server logs (a file that no
// longer parses, TLS handshake errors) to l.
func WithLog(l *slog.Logger) ServeOption { return func(c *serveConfig) { c.log = l } }

// Serve exposes reg on addr's /metrics, and what opts add.
func Serve(addr string, reg *prometheus.Registry, opts ...ServeOption) (*Server, error) {
	c := serveConfig{mux: http.NewServeMux(), log: slog.New(slog.DiscardHandler)}
	c.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	for _, o := range opts {
		o(&c)
	}
	if err := CheckWebConfig(c.webConfig); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen for metrics on %s: %w", addr, err)
	}
	s := &Server{ln: ln, srv: &http.Server{Handler: c.mux, ReadHeaderTimeout: 5 * time.Second}}
	// One request per connection: kept alive, an idle connection had no
	// timeout, and whoever reaches the address could hold as many as the
	// CH has file descriptors. A scrape every few seconds costs one
	// handshake more.
	s.srv.SetKeepAlivesEnabled(false)
	systemd := false
	flags := &web.FlagConfig{WebListenAddresses: &[]string{addr}, WebSystemdSocket: &systemd, WebConfigFile: &c.webConfig}
	go func() {
		if err := web.Serve(ln, s.srv, flags, c.log); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("metrics server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops serving.
func (s *Server) Close() error { return s.srv.Close() }
