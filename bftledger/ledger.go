package bftledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/mempool"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/types"

	"github.com/iotguard/iotguard/ledger"
)

// DefaultCommitTimeout bounds how long Append waits for its block when
// Options.CommitTimeout is zero.
const DefaultCommitTimeout = 30 * time.Second

// Options configure Open.
type Options struct {
	// Home is the CometBFT home directory: config/ (config.toml,
	// genesis.json, node and validator keys) and data/.
	Home string

	// Config, if set, is used instead of Home/config/config.toml; its root
	// must be Home.
	Config *cfg.Config

	// Cluster is the cluster whose events Append submits, and Signer its CH
	// key; the cluster must be registered in genesis with that key. Without
	// them the node only keeps the ledger (a validator without a CH) and
	// Append returns ledger.ErrReadOnly.
	Cluster string
	Signer  Signer

	// Logger receives CometBFT's log; nil discards it.
	Logger cmtlog.Logger

	// OnCommit, if set, is called after each committed ledger block with its
	// height and number of events (metrics). It must be cheap.
	OnCommit func(height uint64, events int)

	// CommitTimeout bounds Append's wait for its block (ErrUncertain after
	// it); zero means DefaultCommitTimeout.
	CommitTimeout time.Duration

	// rewrite makes this validator a byzantine proposer (tests only).
	rewrite func(txs [][]byte) [][]byte
}

// Ledger is a ledger.Ledger replicated by CometBFT: an in-process CometBFT
// node with the IoT-Guard application. Reads answer from this node's
// committed state. It is safe for concurrent use.
type Ledger struct {
	app     *App
	node    *node.Node
	genesis *types.GenesisDoc
	cluster string
	signer  Signer
	timeout time.Duration

	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ ledger.Ledger = (*Ledger)(nil)

// Open starts a CometBFT node on opts.Home with the IoT-Guard application
// and returns its ledger. The node replays the blocks its application has
// not yet applied before Open returns, then joins the network in the
// background; Append waits until the network commits. Close stops the node.
func Open(opts Options) (*Ledger, error) {
	conf := opts.Config
	if conf == nil {
		var err error
		if conf, err = LoadConfig(opts.Home); err != nil {
			return nil, err
		}
	}
	gen, err := types.GenesisDocFromFile(conf.GenesisFile())
	if err != nil {
		return nil, fmt.Errorf("failed to read genesis of %s: %w", conf.RootDir, err)
	}
	if (opts.Cluster == "") != (opts.Signer == nil) {
		return nil, fmt.Errorf("failed to open ledger in %s: Cluster and Signer go together", conf.RootDir)
	}
	if opts.Signer != nil {
		if err := checkRegistered(gen, opts.Cluster, opts.Signer.COSEKey()); err != nil {
			return nil, err
		}
	}
	logger := opts.Logger
	if logger == nil {
		logger = cmtlog.NewNopLogger()
	}
	app, err := NewApp(filepath.Join(conf.DBDir(), StoreFile), opts.OnCommit)
	if err != nil {
		return nil, err
	}
	app.rewrite = opts.rewrite
	nodeKey, err := p2p.LoadOrGenNodeKey(conf.NodeKeyFile())
	if err != nil {
		app.Close()
		return nil, fmt.Errorf("failed to load node key of %s: %w", conf.RootDir, err)
	}
	pv := privval.LoadOrGenFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	n, err := node.NewNode(conf, pv, nodeKey, proxy.NewLocalClientCreator(app),
		func() (*types.GenesisDoc, error) { return gen, nil },
		dbProvider, node.DefaultMetricsProvider(conf.Instrumentation), logger)
	if err != nil {
		app.Close()
		return nil, fmt.Errorf("failed to create CometBFT node in %s: %w", conf.RootDir, err)
	}
	if err := n.Start(); err != nil {
		app.Close()
		return nil, fmt.Errorf("failed to start CometBFT node in %s: %w", conf.RootDir, err)
	}
	timeout := opts.CommitTimeout
	if timeout == 0 {
		timeout = DefaultCommitTimeout
	}
	return &Ledger{app: app, node: n, genesis: gen, cluster: opts.Cluster, signer: opts.Signer, timeout: timeout,
		closing: make(chan struct{})}, nil
}

// checkRegistered refuses to start a CH whose cluster the genesis registry
// does not hold with the CH's key: none of its transactions would apply.
func checkRegistered(gen *types.GenesisDoc, cluster string, key []byte) error {
	s, err := ParseAppState(gen.AppState)
	if err != nil {
		return err
	}
	for _, c := range s.Clusters {
		if c.ID == cluster {
			if !bytes.Equal(c.Key, key) {
				return fmt.Errorf("%w: cluster %q is registered in genesis of %s with another CH key", ErrUnregistered, cluster, gen.ChainID)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: cluster %q is not in genesis of %s", ErrUnregistered, cluster, gen.ChainID)
}

// Node returns the CometBFT node.
func (l *Ledger) Node() *node.Node { return l.node }

// ChainID returns the chain ID of the network.
func (l *Ledger) ChainID() string { return l.genesis.ChainID }

func (l *Ledger) isClosed() bool {
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}

// Append signs ev as a transaction of the ledger's cluster, submits it to
// the node's mempool and waits until a block carrying it is committed on
// this node, returning the ledger block holding ev or the state machine's
// refusal (errors wrap the ledger sentinels, or ErrOtherCluster, ErrStale…).
//
// The wait ends at ctx's end, after Options.CommitTimeout or when the node
// stops, with ErrUncertain: the transaction may still be committed. (If ctx
// has ended before submission, nothing is submitted and Append returns ctx's
// error: a sure failure.) A transaction that
// the mempool drops on recheck (the state changed under it) is reported
// refused; it stays signed, so a validator that kept it could still include
// it within the genesis max_event_skew_ms, where the state machine judges it
// again.
func (l *Ledger) Append(ctx context.Context, ev ledger.Event) (ledger.BlockRef, error) {
	fail := func(err error) (ledger.BlockRef, error) {
		return ledger.BlockRef{}, fmt.Errorf("failed to append %s event of device %q: %w", ev.Type, ev.Device, err)
	}
	if l.isClosed() {
		return fail(ledger.ErrClosed)
	}
	if l.signer == nil {
		return fail(ledger.ErrReadOnly)
	}
	t := &Tx{Cluster: l.cluster, Nonce: make([]byte, NonceLen), Event: ev}
	if _, err := rand.Read(t.Nonce); err != nil {
		return fail(err)
	}
	msg, err := t.SignedBytes(l.genesis.ChainID)
	if err != nil {
		return fail(err)
	}
	if t.Sig, err = l.signer.Sign(msg); err != nil {
		return fail(fmt.Errorf("failed to sign transaction: %w", err))
	}
	raw, err := t.Encode()
	if err != nil {
		return fail(err)
	}
	digest, err := t.Digest(l.genesis.ChainID)
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil { // nothing submitted: a sure failure
		return fail(err)
	}
	done := l.app.wait(digest)
	defer l.app.unwait(digest)
	if err := l.node.Mempool().CheckTx(raw, nil, mempool.TxInfo{}); errors.As(err, new(mempool.ErrMempoolIsFull)) {
		return fail(fmt.Errorf("failed to submit transaction: %w: %w", ledger.ErrBusy, err))
	} else if err != nil {
		return fail(fmt.Errorf("failed to submit transaction: %w", err))
	}
	timer := time.NewTimer(l.timeout)
	defer timer.Stop()
	select {
	case o := <-done:
		if o.err != nil {
			return ledger.BlockRef{}, o.err
		}
		return o.ref, nil
	case <-ctx.Done():
		return fail(fmt.Errorf("%w: %w", ErrUncertain, ctx.Err()))
	case <-timer.C:
		return fail(fmt.Errorf("%w: no block within %v", ErrUncertain, l.timeout))
	case <-l.closing:
		return fail(fmt.Errorf("%w: %w", ErrUncertain, ErrNodeStopped))
	case <-l.node.Quit():
		return fail(fmt.Errorf("%w: %w", ErrUncertain, ErrNodeStopped))
	}
}

// Lookup returns the committed record of id, or an error wrapping
// ledger.ErrUnknownDevice. Records of every cluster are visible; Cluster
// says whose a device is.
func (l *Ledger) Lookup(id string) (ledger.Device, error) {
	if l.isClosed() {
		return ledger.Device{}, fmt.Errorf("failed to look up device %q: %w", id, ledger.ErrClosed)
	}
	d, ok, err := l.app.st.device(id)
	switch {
	case err != nil:
		return ledger.Device{}, fmt.Errorf("failed to look up device %q: %w", id, err)
	case !ok:
		return ledger.Device{}, fmt.Errorf("failed to look up device %q: %w", id, ledger.ErrUnknownDevice)
	}
	return d, nil
}

// Head returns the newest committed ledger block and its time.
func (l *Ledger) Head() (ledger.BlockRef, int64, error) {
	if l.isClosed() {
		return ledger.BlockRef{}, 0, ledger.ErrClosed
	}
	c, _, err := l.app.snapshot()
	if err != nil {
		return ledger.BlockRef{}, 0, fmt.Errorf("failed to read ledger head: %w", err)
	}
	return c.head.Ref, c.head.Time, nil
}

// State returns the CometBFT height this node's application has committed
// and the state hash after it.
func (l *Ledger) State() (height int64, stateHash [32]byte, err error) {
	c, _, err := l.app.snapshot()
	if err != nil {
		return 0, [32]byte{}, err
	}
	return c.height, c.stateHash, nil
}

// Blocks calls fn for every ledger block from height from upwards. fn runs
// outside any transaction.
func (l *Ledger) Blocks(from uint64, fn func(ledger.Block) error) error {
	if l.isClosed() {
		return ledger.ErrClosed
	}
	return l.app.st.blocks(from, fn)
}

// Devices calls fn for every record, of every cluster, in ID order.
func (l *Ledger) Devices(fn func(ledger.Device) error) error {
	if l.isClosed() {
		return ledger.ErrClosed
	}
	return l.app.st.devices(fn)
}

// Enrollment returns the committed enrollment of id, or an error wrapping
// ledger.ErrNotEnrolled. Enrollments of every cluster are visible; Cluster
// says whose an enrollment is.
func (l *Ledger) Enrollment(id string) (ledger.Enrollment, error) {
	if l.isClosed() {
		return ledger.Enrollment{}, fmt.Errorf("failed to look up enrollment of %q: %w", id, ledger.ErrClosed)
	}
	e, ok, err := l.app.st.enrollment(id)
	switch {
	case err != nil:
		return ledger.Enrollment{}, fmt.Errorf("failed to look up enrollment of %q: %w", id, err)
	case !ok:
		return ledger.Enrollment{}, fmt.Errorf("failed to look up enrollment of %q: %w", id, ledger.ErrNotEnrolled)
	}
	return e, nil
}

// Enrollments calls fn for every enrollment, of every cluster, in ID order.
func (l *Ledger) Enrollments(fn func(ledger.Enrollment) error) error {
	if l.isClosed() {
		return ledger.ErrClosed
	}
	return l.app.st.enrollments(fn)
}

// Close stops the node and closes the application state. Later calls return
// the first call's result.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		var errs []error
		if l.node.IsRunning() {
			if err := l.node.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("failed to stop CometBFT node: %w", err))
			}
			l.node.Wait()
		}
		if err := l.app.Close(); err != nil {
			errs = append(errs, fmt.Errorf("failed to close application state: %w", err))
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}
