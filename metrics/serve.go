// Package metrics owns the cluster head's Prometheus metrics and the HTTP
// endpoint that exposes them. Labels are bounded sets (resources, codes,
// reasons, operations); never a device ID or key.
package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with the Go runtime, process and build-info
// collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
	return r
}

// Server serves /metrics over HTTP.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// ServeOption adjusts what Serve exposes besides /metrics.
type ServeOption func(*http.ServeMux)

// WithPprof also mounts net/http/pprof under /debug/pprof/ (index, cmdline,
// profile, symbol, trace and the runtime's named profiles), for profiling a
// cluster head in its own process.
//
// IMPORTANT: a profile reveals code paths, heap contents' shapes and command
// lines, and /debug/pprof/profile costs CPU for as long as it runs: bind the
// metrics address to loopback or a management network only. The handlers are
// mounted on this server's own mux, never on http.DefaultServeMux.
func WithPprof() ServeOption {
	return func(mux *http.ServeMux) {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
}

// Serve exposes reg on http://addr/metrics, and what opts add.
func Serve(addr string, reg *prometheus.Registry, opts ...ServeOption) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	for _, o := range opts {
		o(mux)
	}
	s := &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	// One request per connection: kept alive, an idle connection had no
	// timeout, and whoever reaches the address could hold as many as the
	// CH has file descriptors. A scrape every few seconds costs one
	// handshake more.
	s.srv.SetKeepAlivesEnabled(false)
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener was closed under us; Close reports nothing more
		}
	}()
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops serving.
func (s *Server) Close() error { return s.srv.Close() }
