package coapedge

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// DTLSConfig is what a coaps edge needs beyond the options of a plain one
// (docs/PROTOCOL.md §4.5: DTLS 1.2, PSK cipher suites, PSK identity = device
// ID).
type DTLSConfig struct {
	// PSK returns the pre-shared key of a PSK identity, or an error for an
	// identity that may not connect (whose handshake then fails as a wrong
	// key's does, refusedPSKs).
	PSK func(identity string) ([]byte, error)
	// MaxAssociations bounds the DTLS associations held at once, handshakes
	// included; DefaultMaxAssociations when 0.
	MaxAssociations int
	// MaxPerSource bounds them per source — an IPv4 address or an IPv6 /64,
	// as for the rate limit (sourceKey); DefaultMaxPerSource when 0.
	MaxPerSource int
	// HandshakeTimeout bounds a handshake; DefaultHandshakeTimeout when 0.
	HandshakeTimeout time.Duration
	// IdleTimeout closes an association that sent nothing for that long;
	// DefaultIdleTimeout when 0.
	IdleTimeout time.Duration
	// HandshakeFailed, if set, hears why each refused or failed association
	// failed: one of the Handshake* reasons.
	HandshakeFailed func(reason string)
}

// Defaults of a DTLSConfig.
const (
	DefaultMaxAssociations  = 1024
	DefaultMaxPerSource     = 4
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 2 * time.Minute
)

// Why a DTLS association failed, as DTLSConfig.HandshakeFailed hears it.
const (
	HandshakeUnknownIdentity = "unknown_identity" // the PSK identity may not connect
	HandshakeBadPSK          = "bad_psk"          // a known identity, but the client's key was not its PSK
	HandshakeTimeout         = "timeout"          // not finished within HandshakeTimeout
	HandshakeCapacity        = "capacity"         // refused, or its place given to a newer handshake: too many associations, from this source or in all
	HandshakeOther           = "other"            // anything else (malformed records, a client that gave up)
)

// CipherSuites are the ones a coaps edge offers: what libcoap and small
// devices speak (RFC 9202's PSK profile, RFC 7925 for CCM_8).
var CipherSuites = []piondtls.CipherSuiteID{
	piondtls.TLS_PSK_WITH_AES_128_CCM_8,
	piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
}

// ListenDTLS binds addr (UDP host:port) and serves resources over DTLS 1.2
// with PSKs (coaps). A client's address is verified by a HelloVerifyRequest
// cookie before the server keeps any handshake state beyond a bounded
// association (no amplification), and only an identity with a PSK completes
// a handshake. Handlers see the PSK identity in Request.Identity.
func ListenDTLS(addr string, resources []Resource, dc DTLSConfig, opts ...Option) (*Server, error) {
	if dc.PSK == nil {
		return nil, errors.New("failed to configure coaps: no PSK source")
	}
	dc = dc.withDefaults()
	s := newServer(TransportDTLS, resources, opts)
	g := newDTLSGuard(dc)
	s.dtls = g
	refused := newRefusedPSKs()
	ln, err := coapnet.NewDTLSListener("udp", addr, coapnet.NewDTLSServerOptions(
		piondtls.WithPSK(func(identity []byte) ([]byte, error) {
			k, err := dc.PSK(string(identity))
			if err != nil {
				// Not an error: that would end the handshake at once with
				// an alert, while a member's ID with a wrong key is found
				// out only when its Finished does not open (refusedPSKs).
				return refused.psk(identity), nil
			}
			return k, nil
		}),
		piondtls.WithPSKIdentityHint([]byte("iotguard")),
		piondtls.WithCipherSuites(CipherSuites...),
		// A HelloVerifyRequest cookie proves the client's address before
		// the handshake goes on (pion's default; said here on purpose).
		piondtls.WithInsecureSkipVerifyHello(false),
		piondtls.WithExtendedMasterSecret(piondtls.RequestExtendedMasterSecret),
	))
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s (coaps): %w", addr, err)
	}
	srv := dtls.NewServer(
		options.WithMux(mux.HandlerFunc(s.guarded)),
		options.WithErrors(s.transportErrors),
		options.WithMaxMessageSize(maxDatagram),
		options.WithBlockwise(false, blockwise.SZX1024, time.Second),
		options.WithDTLSHandshakeTimeout(dc.HandshakeTimeout),
		options.WithInactivityMonitor(dc.IdleTimeout, func(cc *udpclient.Conn) { _ = cc.Close() }),
	)
	s.addr, s.stop = ln.Addr(), srv.Stop
	go func() { s.done <- srv.Serve(&guardedListener{DTLSListener: ln, g: g}) }()
	return s, nil
}

// CloseIdentity closes every DTLS association of identity at once: its PSK
// died (it left, was revoked, or joined again). A coaps server only.
func (s *Server) CloseIdentity(identity string) {
	if s.dtls != nil {
		s.dtls.closeIdentity(identity)
	}
}

func (dc DTLSConfig) withDefaults() DTLSConfig {
	if dc.MaxAssociations <= 0 {
		dc.MaxAssociations = DefaultMaxAssociations
	}
	if dc.MaxPerSource <= 0 {
		dc.MaxPerSource = DefaultMaxPerSource
	}
	if dc.HandshakeTimeout <= 0 {
		dc.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if dc.IdleTimeout <= 0 {
		dc.IdleTimeout = DefaultIdleTimeout
	}
	if dc.HandshakeFailed == nil {
		dc.HandshakeFailed = func(string) {}
	}
	return dc
}

// dtlsGuard bounds the associations of a coaps edge and knows whose they
// are. bySource is keyed by sourceKey, the rate limiter's source, so that a
// host cannot hold MaxPerSource associations from each address of its /64.
// Invariant: every association counted in total and bySource is open
// until released (exactly once: by its Close, or by admit when it evicts
// it), byIdentity holds exactly the open associations whose handshake
// completed, and pending exactly the others, oldest first.
//
// pion's listener makes an association for a source's first ClientHello,
// before the HelloVerifyRequest's cookie has proved the source's address,
// so a spoofer can make as many as it sends datagrams. It must not keep
// others out by holding their places for a handshake timeout: a newcomer
// over a bound takes the place of the oldest pending association (of its
// source, or of all), as a SYN cache does. An established association —
// a client that proved its address and its PSK — is never pushed out.
type dtlsGuard struct {
	cfg DTLSConfig

	mu         sync.Mutex
	total      int
	bySource   map[string]int
	byIdentity map[string]map[*association]struct{}
	pending    []*association // admitted, handshake not completed, oldest first
	// retiredAt is when each identity's PSK last died, kept for as long as
	// a handshake may take: a handshake that began before it may have run
	// under the dead PSK, and is retired when it completes.
	retiredAt map[string]time.Time
}

func newDTLSGuard(dc DTLSConfig) *dtlsGuard {
	return &dtlsGuard{cfg: dc, bySource: map[string]int{}, byIdentity: map[string]map[*association]struct{}{},
		retiredAt: map[string]time.Time{}}
}

// admit counts a, a new association, as pending, or refuses it over a
// bound. Over a bound a takes the place of the oldest pending association
// of its source (per-source bound) or of all (total bound), which admit
// releases and closes; with none pending, a is refused.
func (g *dtlsGuard) admit(a *association) bool {
	g.mu.Lock()
	var evicted []*association
	evict := func(of func(*association) bool) bool {
		for _, p := range g.pending {
			if of(p) {
				g.releaseLocked(p)
				evicted = append(evicted, p)
				return true
			}
		}
		return false
	}
	ok := (g.bySource[a.source] < g.cfg.MaxPerSource || evict(func(p *association) bool { return p.source == a.source })) &&
		(g.total < g.cfg.MaxAssociations || evict(func(*association) bool { return true }))
	if ok {
		g.total++
		g.bySource[a.source]++
		g.pending = append(g.pending, a)
	}
	g.mu.Unlock()
	for _, p := range evicted {
		p.evict()
	}
	return ok
}

// established records a completed handshake of a under its identity, and
// retires a at once if the identity's PSK died after a began: its handshake
// may have looked the PSK up before, and registered only after
// closeIdentity looked for it.
func (g *dtlsGuard) established(a *association) {
	g.mu.Lock()
	if a.released { // evicted as its handshake completed: it is closed
		g.mu.Unlock()
		return
	}
	id := a.who()
	set := g.byIdentity[id]
	if set == nil {
		set = map[*association]struct{}{}
		g.byIdentity[id] = set
	}
	set[a] = struct{}{}
	g.unpendLocked(a)
	t, retired := g.retiredAt[id]
	g.mu.Unlock()
	if retired && !t.Before(a.begun) {
		a.retire()
	}
}

// release forgets a closed association.
func (g *dtlsGuard) release(a *association) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releaseLocked(a)
}

// releaseLocked forgets a, once; g.mu must be held.
func (g *dtlsGuard) releaseLocked(a *association) {
	if a.released {
		return
	}
	a.released = true
	g.total--
	if g.bySource[a.source]--; g.bySource[a.source] == 0 {
		delete(g.bySource, a.source)
	}
	g.unpendLocked(a)
	id := a.who()
	if set := g.byIdentity[id]; set != nil {
		delete(set, a)
		if len(set) == 0 {
			delete(g.byIdentity, id)
		}
	}
}

// unpendLocked takes a off the pending list, if it is there; g.mu must be
// held. The list is at most MaxAssociations long.
func (g *dtlsGuard) unpendLocked(a *association) {
	if i := slices.Index(g.pending, a); i >= 0 {
		g.pending = slices.Delete(g.pending, i, i+1)
	}
}

func (g *dtlsGuard) closeIdentity(identity string) {
	g.mu.Lock()
	now := time.Now()
	for id, t := range g.retiredAt {
		if now.Sub(t) > 2*g.cfg.HandshakeTimeout { // no handshake that began before t is still running
			delete(g.retiredAt, id)
		}
	}
	g.retiredAt[identity] = now
	open := make([]*association, 0, len(g.byIdentity[identity]))
	for a := range g.byIdentity[identity] {
		open = append(open, a)
	}
	g.mu.Unlock()
	for _, a := range open {
		a.retire()
	}
}

// errHandshake marks a failed handshake, counted by reason
// (DTLSConfig.HandshakeFailed): transportErrors does not pass it on.
var errHandshake = errors.New("no coaps association")

// refusedPSKs are the keys the handshake of an identity that may not connect
// runs under, so that it ends exactly as a member's ID with a wrong key
// does: the server cannot open the client's Finished, drops it as DTLS drops
// any record it cannot decrypt, and the handshake runs out its timeout. An
// immediate alert instead would tell anyone which IDs are current members
// (docs/SECURITY.md, "A client over coaps"). Each is an HMAC of the
// identity under a random key the listener draws at start: no client can
// hold it, and an identity gets the same one each time, as a member gets
// its PSK.
type refusedPSKs struct{ key []byte }

func newRefusedPSKs() refusedPSKs {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails since Go 1.24
	return refusedPSKs{key: key}
}

// psk returns identity's refused key, as long as a member's PSK.
func (r refusedPSKs) psk(identity []byte) []byte {
	m := hmac.New(sha256.New, r.key)
	m.Write(identity)
	return m.Sum(nil)
}

// reason classifies a failed handshake of a. Neither a refused identity nor
// a wrong key for a member is told so (refusedPSKs): both handshakes fail
// after the server took the identity, which tells them apart here, for the
// metrics only.
func (g *dtlsGuard) reason(a *association, err error) string {
	if a.evicted.Load() {
		return HandshakeCapacity
	}
	if st, ok := a.conn.ConnectionState(); ok && len(st.IdentityHint) > 0 {
		if _, err := g.cfg.PSK(string(st.IdentityHint)); err != nil {
			return HandshakeUnknownIdentity
		}
		return HandshakeBadPSK
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return HandshakeTimeout
	}
	return HandshakeOther
}

// guardedListener admits new associations within the guard's bounds.
type guardedListener struct {
	*coapnet.DTLSListener
	g *dtlsGuard
}

// AcceptWithContext returns the next admitted association. One over a bound
// is closed at once and (nil, nil) returned, which go-coap's serve loop
// skips.
func (l *guardedListener) AcceptWithContext(ctx context.Context) (net.Conn, error) {
	c, err := l.DTLSListener.AcceptWithContext(ctx)
	if err != nil || c == nil {
		return c, err
	}
	dc, ok := c.(*piondtls.Conn)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("coaps: unexpected connection type %T", c)
	}
	a := &association{Conn: c, conn: dc, g: l.g, source: sourceKey(c.RemoteAddr()), begun: time.Now()}
	if !l.g.admit(a) {
		_ = c.Close()
		l.g.cfg.HandshakeFailed(HandshakeCapacity)
		return nil, nil
	}
	return a, nil
}

// association is one DTLS association of a coaps edge.
type association struct {
	net.Conn
	conn   *piondtls.Conn
	g      *dtlsGuard
	source string    // its sourceKey, as counted in g.bySource
	begun  time.Time // accepted, before its handshake looked up a PSK
	shook  sync.Once // the handshake's outcome is recorded once (go-coap asks again before each read)

	released bool        // its place is free again; guarded by g.mu
	evicted  atomic.Bool // it gave its place to a newcomer before its handshake completed

	mu       sync.Mutex
	identity string // the client's PSK identity, set once its handshake completed
	inflight int    // requests being served
	retired  bool   // its PSK died: serve no more, close once inflight is 0
}

// who returns the PSK identity the client proved, "" before its handshake.
func (a *association) who() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.identity
}

// begin counts a request being served, unless the association is retired.
func (a *association) begin() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.retired {
		return false
	}
	a.inflight++
	return true
}

// retireGrace is how long a retired association that just answered stays
// open, serving nothing: a DTLS client hands the answer to its CoAP layer
// concurrently with reading the next record, and a close_notify right
// behind the answer could end its request before the answer reaches it.
const retireGrace = 250 * time.Millisecond

// end counts a request served (its answer written), and closes a retired
// association with none left, after retireGrace.
func (a *association) end() {
	a.mu.Lock()
	a.inflight--
	done := a.retired && a.inflight == 0
	a.mu.Unlock()
	if done {
		time.AfterFunc(retireGrace, func() { _ = a.Close() })
	}
}

// retire ends the association: at once, or after the answers of the
// requests being served are written (a member's own /leave is answered on
// the association its leave retires).
func (a *association) retire() {
	a.mu.Lock()
	a.retired = true
	done := a.inflight == 0
	a.mu.Unlock()
	if done {
		_ = a.Close()
	}
}

// HandshakeContext runs the handshake (go-coap calls it, bounded by the
// handshake timeout, before serving the association) and records whose
// association it is, or why it failed.
func (a *association) HandshakeContext(ctx context.Context) error {
	err := a.conn.HandshakeContext(ctx)
	a.shook.Do(func() {
		if err != nil {
			a.g.cfg.HandshakeFailed(a.g.reason(a, err))
			return
		}
		st, _ := a.conn.ConnectionState()
		a.mu.Lock()
		a.identity = string(st.IdentityHint)
		a.mu.Unlock()
		a.g.established(a)
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errHandshake, err)
	}
	return nil
}

// Close closes the association and releases its place, once.
func (a *association) Close() error {
	err := a.Conn.Close()
	a.g.release(a)
	return err
}

// evict closes an association whose place admit gave to a newcomer: its
// handshake, still running, fails, counted as a refusal for capacity.
func (a *association) evict() {
	a.evicted.Store(true)
	_ = a.Conn.Close()
}
