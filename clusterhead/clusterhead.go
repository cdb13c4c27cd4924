// Package clusterhead assembles a running cluster head from its parts: the
// key service and ledger in a data directory, the policy core, the CoAP
// server and the operator's control socket. The CLI, the demo, the tests and
// the benchmarks all start a CH through it.
package clusterhead

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/coapsrv"
	"github.com/iotguard/iotguard/internal/boundlog"
	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/internal/secretfile"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/metrics"
)

// LedgerFile is the ledger's file name inside the data directory.
const LedgerFile = "ledger.db"

// Config describes a cluster head.
type Config struct {
	Listen string // UDP host:port for CoAP
	// DTLSListen is the UDP host:port for coaps (DTLS with member PSKs,
	// docs/PROTOCOL.md §4.5); "" off.
	DTLSListen string
	// DTLS bounds the coaps listener's associations and timeouts (zero
	// fields: coapedge's defaults).
	DTLS      coapedge.DTLSConfig
	DataDir   string
	Cluster   cluster.Config
	RateLimit float64 // requests/s per source (IPv4 address, IPv6 /64); 0 off
	// MaxAssociations bounds the source endpoints (address:port) the CoAP
	// edge holds an association for at once, AssociationRate the new ones
	// per second (iotguard serve: coapedge's defaults); 0 off.
	MaxAssociations int
	AssociationRate float64
	Logger          *slog.Logger
	Metrics         string // HTTP address for /metrics; "" off
	// MetricsWebConfig is a Prometheus web configuration file (TLS, basic
	// authentication) for the Metrics address; "" serves plain HTTP to
	// whoever reaches it.
	MetricsWebConfig string
	// Pprof mounts net/http/pprof under /debug/pprof/ on the Metrics
	// address (and nowhere else); it needs Metrics.
	Pprof   bool
	NoAdmin bool // no control socket (tests that run many CHs)
	// RequestTimeout bounds the handling of a CoAP request that waits: a
	// join's or a leave's wait for its ledger commit (then 5.03 "outcome not
	// known yet");
	// zero means coapedge.DefaultTimeout (10 s).
	RequestTimeout time.Duration

	// Ledger opens the CH's ledger; nil means the bbolt ledger in DataDir.
	// A replicated backend (bftledger, a module of its own) plugs in here.
	Ledger LedgerOpener
}

// LedgerOpener opens the ledger of a CH whose keys are keys. onCommit is nil
// when metrics are off; otherwise the ledger calls it after each committed
// block with its height and number of events.
type LedgerOpener func(keys *keysvc.Service, onCommit func(height uint64, events int)) (ledger.Ledger, error)

// CH is a running cluster head.
type CH struct {
	Keys    *keysvc.Service
	Ledger  ledger.Ledger
	Core    *cluster.Core
	CoAP    *coapsrv.Server
	CoAPS   *coapsrv.Server // nil unless Config.DTLSListen is set
	admin   *admin.Server
	metrics *metrics.Server
	Grants  *ledger.GrantLog // the audit records: session grants, warnings (closed after the ledger)
	dir     string
	started time.Time
	log     *slog.Logger // operator actions that leave no other record (a backup)

	// keyMu serializes what must see one CH key and one ledger: a backup
	// (keys and ledger copied together) and a key rotation.
	keyMu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// counter is a ledger that keeps its devices counted by status (the bbolt
// ledger, O(1)); the members of other ledgers are counted by walking their
// index, O(members) per scrape.
type counter interface{ Counts() (ledger.Counts, error) }

// height returns the ledger height, for the metrics.
func (c *CH) height() (uint64, error) {
	head, _, err := c.Ledger.Head()
	return head.Height, err
}

// members counts this cluster's devices by status, for the metrics.
func (c *CH) members() (map[membership.Status]int, error) {
	if l, ok := c.Ledger.(counter); ok {
		n, err := l.Counts()
		return n.ByStatus(), err
	}
	byStatus := ledger.Counts{}.ByStatus()
	err := c.Ledger.Devices(func(d ledger.Device) error {
		if d.Cluster == "" || d.Cluster == c.Core.Config().ID { // a shared ledger holds other clusters too
			byStatus[d.Status]++
		}
		return nil
	})
	return byStatus, err
}

// Start opens (or creates) the data directory and starts serving.
func Start(cfg Config) (*CH, error) {
	if cfg.Pprof && cfg.Metrics == "" {
		return nil, ErrPprofWithoutMetrics
	}
	if err := metrics.CheckWebConfig(cfg.MetricsWebConfig); err != nil { // before the data directory is touched
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create data directory %s: %w", cfg.DataDir, err)
	}
	// It holds the CH keys and the control socket: an existing directory
	// that group or others may enter is refused, as a key file is.
	if err := secretfile.CheckDir(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("refusing to start on data directory: %w", err)
	}
	// A new key only for a new data directory: a ledger restored without its
	// key must not be served under a fresh one (every member key would die
	// with no error, and the next blocks would be signed by a stranger).
	ledgerPath := filepath.Join(cfg.DataDir, LedgerFile)
	_, statErr := os.Stat(ledgerPath)
	hasLedger := cfg.Ledger == nil && statErr == nil
	openKeys := keysvc.Open
	if hasLedger {
		openKeys = keysvc.OpenExisting
		if err := recoverRotation(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	keys, err := openKeys(cfg.DataDir, cfg.Cluster.ID)
	if errors.Is(err, keysvc.ErrNoKey) {
		return nil, fmt.Errorf("refusing to start: %s holds a ledger but %s is missing; restore the key that signed the ledger (a new key would end every membership): %w",
			ledgerPath, filepath.Join(cfg.DataDir, keysvc.KeyFile), err)
	}
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			keys.Close() // the record of re-keys; ch.Close closes it once serving
		}
	}()
	var m *metrics.Metrics
	var onCommit func(height uint64, events int)
	reg := metrics.NewRegistry()
	// The ledger gauges read ch at scrape time, once serving; metrics off
	// means no observer at all on the hot path.
	ch := &CH{Keys: keys, dir: cfg.DataDir, started: time.Now(), log: log}
	if cfg.Metrics != "" {
		m = metrics.New(reg, metrics.LedgerState{Height: ch.height, Members: ch.members})
		keys.SetTimer(m.Crypto)
		onCommit = m.Committed
	}
	open := cfg.Ledger
	if open == nil {
		open = func(keys *keysvc.Service, onCommit func(uint64, int)) (ledger.Ledger, error) {
			l, err := ledger.Open(ledgerPath,
				ledger.Options{Cluster: cfg.Cluster.ID, Signer: keys, Verifier: keys, OnCommit: onCommit})
			if errors.Is(err, ledger.ErrWrongKey) {
				return nil, fmt.Errorf("refusing to start: %s was not signed by the key in %s; restore the key that signed the ledger: %w",
					ledgerPath, filepath.Join(cfg.DataDir, keysvc.KeyFile), err)
			}
			if err != nil {
				return nil, fmt.Errorf("failed to open ledger in %s: %w", cfg.DataDir, err)
			}
			return l, nil
		}
	}
	l, err := open(keys, onCommit)
	if err != nil {
		return nil, err
	}
	if cfg.Cluster.Logger == nil {
		cfg.Cluster.Logger = log
	}
	// Session grants are recorded in the grant log and committed to the
	// ledger in batches (ledger/grants.go); batches a crash left written but
	// not committed are committed first.
	grants, err := ledger.OpenGrantLog(filepath.Join(cfg.DataDir, ledger.GrantLogFile), false)
	if err != nil {
		l.Close()
		return nil, err
	}
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = ledger.RecoverGrants(rctx, l, grants, cfg.Cluster.ID)
	cancel()
	if err != nil {
		grants.Close()
		l.Close()
		return nil, err
	}
	cfg.Cluster.Grants = grants
	core, err := cluster.New(cfg.Cluster, keys, l)
	if err != nil {
		grants.Close()
		l.Close()
		return nil, err
	}
	ch.Grants = grants
	opts := []coapsrv.Option{
		coapsrv.WithRateLimit(cfg.RateLimit),
		coapsrv.WithMaxAssociations(cfg.MaxAssociations),
		coapsrv.WithAssociationRate(cfg.AssociationRate),
		coapsrv.WithEcho(core.EdgeEchoes()),
		coapsrv.WithErrors(edgeErrors(log)),
	}
	if m != nil {
		core.SetObserver(m)
		opts = append(opts, coapsrv.WithObserver(m))
	}
	if cfg.RequestTimeout != 0 {
		opts = append(opts, func(c *coapsrv.Config) { c.Timeout = cfg.RequestTimeout })
	}
	srv, err := coapsrv.Listen(cfg.Listen, core, opts...)
	if err != nil {
		core.Close()
		l.Close()
		grants.Close()
		return nil, err
	}
	ch.Ledger, ch.Core, ch.CoAP = l, core, srv
	if cfg.DTLSListen != "" {
		if ch.CoAPS, err = coapsrv.ListenDTLS(cfg.DTLSListen, core, cfg.DTLS, opts...); err != nil {
			ch.Close()
			return nil, err
		}
		core.OnKeyRetired(ch.CoAPS.CloseIdentity) // a member's DTLS sessions die with its keys
	}
	if m != nil {
		mopts := []metrics.ServeOption{metrics.WithWebConfig(cfg.MetricsWebConfig), metrics.WithLog(log)}
		if cfg.Pprof {
			mopts = append(mopts, metrics.WithPprof())
		}
		if ch.metrics, err = metrics.Serve(cfg.Metrics, reg, mopts...); err != nil {
			ch.Close()
			return nil, err
		}
	}
	if !cfg.NoAdmin {
		if ch.admin, err = admin.Listen(cfg.DataDir, ch); err != nil {
			ch.Close()
			return nil, err
		}
	}
	started = true
	return ch, nil
}

// Addr returns the CoAP address the CH listens on.
func (c *CH) Addr() string { return c.CoAP.Addr().String() }

// DTLSAddr returns the coaps address the CH listens on, or "" when off.
func (c *CH) DTLSAddr() string {
	if c.CoAPS == nil {
		return ""
	}
	return c.CoAPS.Addr().String()
}

// MetricsAddr returns the metrics HTTP address, or "" when off.
func (c *CH) MetricsAddr() string {
	if c.metrics == nil {
		return ""
	}
	return c.metrics.Addr().String()
}

// Close stops serving and closes the ledger after its last commit. Calling
// it again returns the first call's result.
func (c *CH) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *CH) close() error {
	var errs []error
	if c.admin != nil {
		errs = append(errs, c.admin.Close())
	}
	if c.metrics != nil {
		errs = append(errs, c.metrics.Close())
	}
	if c.CoAPS != nil {
		errs = append(errs, c.CoAPS.Close())
	}
	errs = append(errs, c.CoAP.Close())
	c.Core.Close() // the open batch of audit records (session grants, warnings)
	errs = append(errs, c.Ledger.Close(), c.Grants.Close(), c.Keys.Close())
	return errors.Join(errs...)
}

// Revoke records the operator's revocation of id and returns the height of
// its block (the control socket's revoke).
func (c *CH) Revoke(ctx context.Context, id, reason string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ref, err := c.Core.Revoke(ctx, id, reason)
	return ref.Height, err
}

// edgeErrors reports the CoAP edges' errors (a handler's panic, an answer
// that could not be written, a transport error) at Warn, within boundlog's
// bound: the edge counts what a client causes at will (malformed datagrams,
// full queues, failed handshakes), but a client may still cause some errors.
func edgeErrors(log *slog.Logger) func(error) {
	l := boundlog.New(log, slog.LevelWarn, time.Now)
	return func(err error) { l.Log("request failed", "err", err) }
}
