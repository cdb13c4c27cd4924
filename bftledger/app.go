package bftledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/iotguard/iotguard/ledger"
)

// AppVersion is the application protocol version reported to CometBFT.
// Version 2: blocks open with a proposal time, the state hash is in the
// transaction results and the app hash is constant. Chains of version 1
// cannot be replayed by it. Version 3: a join that repeats the device nonce
// of an expired membership is a new join, where version 2 refused it as a
// duplicate (ledger.applyJoin). Version 2 chains replay unchanged, but
// validators of the two versions would decide such a transaction apart:
// upgrade all validators together (CometBFT keeps an existing chain's app
// version, so it does not catch a mixed network). Version 4: a join must
// record the height of the echo its device signed, not above the ledger's
// head, at a time within the echo's lifetime (joinFreshness); an honest CH's
// joins always did, so older chains replay unchanged, but version 3 applied
// a join whose CH claimed another freshness.
const AppVersion = 4

// Result codes of CheckTx and FinalizeBlock, one per error a transaction can
// be refused with; CodeOK (0) means applied.
const (
	CodeOK            uint32 = abci.CodeTypeOK
	CodeMalformed     uint32 = 1
	CodeUnregistered  uint32 = 2
	CodeBadSignature  uint32 = 3
	CodeReplay        uint32 = 4
	CodeStale         uint32 = 5
	CodeOtherCluster  uint32 = 6
	CodeInvalidEvent  uint32 = 10
	CodeUnknownDevice uint32 = 11
	CodeConflict      uint32 = 12
	CodeRevoked       uint32 = 13
	CodeDuplicate     uint32 = 14
	CodeNotMember     uint32 = 15
	CodeStaleJoin     uint32 = 16
	CodeEnrolled      uint32 = 17
	CodeNotEnrolled   uint32 = 18
	CodeUnenrolled    uint32 = 19 // the enrollment was removed
	CodeTooMany       uint32 = 20 // CheckTx only: the cluster's share of the mempool is full
	CodeInternal      uint32 = 99
)

// code maps a refusal to its result code. Order matters: ErrOtherCluster
// also matches a ledger sentinel.
func code(err error) uint32 {
	for _, c := range []struct {
		err  error
		code uint32
	}{
		{ErrMalformedTx, CodeMalformed}, {ErrUnregistered, CodeUnregistered}, {ErrBadSignature, CodeBadSignature},
		{ErrReplay, CodeReplay}, {ErrStale, CodeStale}, {ErrOtherCluster, CodeOtherCluster},
		{ledger.ErrInvalidEvent, CodeInvalidEvent}, {ledger.ErrUnknownDevice, CodeUnknownDevice},
		{ledger.ErrConflict, CodeConflict}, {ledger.ErrRevoked, CodeRevoked},
		{ledger.ErrDuplicate, CodeDuplicate}, {ledger.ErrNotMember, CodeNotMember},
		{ledger.ErrStale, CodeStaleJoin},
		{ledger.ErrEnrolled, CodeEnrolled}, {ledger.ErrNotEnrolled, CodeNotEnrolled},
		{ledger.ErrEnrollmentRemoved, CodeUnenrolled}, {ErrTooManyPending, CodeTooMany},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// outcomeOf is what a waiting Append learns about its transaction.
type outcomeOf struct {
	ref ledger.BlockRef
	err error
}

// App is the ABCI application: the replicated membership state machine over
// a bbolt file. CometBFT calls it through a local client, which serialises
// the ABCI methods; the read methods (lookup, head, …) may run concurrently
// with them.
type App struct {
	abci.BaseApplication

	st       *store
	onCommit func(height uint64, events int)

	mu      sync.RWMutex // guards cur and reg
	cur     *committed   // nil before InitChain
	reg     *registry
	pending *outcome // between FinalizeBlock and Commit; ABCI methods only
	// inPool counts, by cluster, the transactions CheckTx admitted to the
	// mempool since the last Commit; after a Commit the mempool checks its
	// transactions again (recheck), which counts them anew. ABCI methods
	// only.
	inPool map[string]int

	wmu     sync.Mutex
	waiters map[[32]byte]chan outcomeOf

	// rewrite, if set, replaces the transactions this validator proposes:
	// fault injection for tests (a byzantine proposer). Never set otherwise.
	rewrite           func(txs [][]byte) [][]byte
	rejectedProposals atomic.Int64
}

// NewApp opens (or creates) the application state at path. CometBFT drives
// it in process (Open does that) or through an ABCI server. onCommit, if set,
// is called after each committed ledger block. Close releases the file.
func NewApp(path string, onCommit func(height uint64, events int)) (*App, error) {
	st, err := openStore(path, false)
	if err != nil {
		return nil, err
	}
	a := &App{st: st, onCommit: onCommit, waiters: map[[32]byte]chan outcomeOf{}, inPool: map[string]int{}}
	c, err := st.load()
	switch {
	case errors.Is(err, errNotInitialized):
	case err != nil:
		st.close()
		return nil, err
	default:
		if err := a.setCommitted(c); err != nil {
			st.close()
			return nil, err
		}
	}
	return a, nil
}

func (a *App) setCommitted(c *committed) error {
	s, err := ParseAppState(c.appState)
	if err != nil {
		return err
	}
	reg, err := s.registry()
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.cur, a.reg = c, reg
	a.mu.Unlock()
	return nil
}

// snapshot returns the committed meta and registry, or errNotInitialized.
func (a *App) snapshot() (*committed, *registry, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.cur == nil {
		return nil, nil, errNotInitialized
	}
	return a.cur, a.reg, nil
}

// Info reports the last committed CometBFT height and app hash, so that
// CometBFT replays only the blocks after them.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	c, _, err := a.snapshot()
	if errors.Is(err, errNotInitialized) || (err == nil && c.height == 0) {
		return &abci.ResponseInfo{Data: "iotguard", AppVersion: AppVersion}, nil
	}
	return &abci.ResponseInfo{Data: "iotguard", AppVersion: AppVersion, LastBlockHeight: c.height, LastBlockAppHash: c.appHash[:]}, nil
}

// InitChain reads the cluster registry from the genesis app_state and writes
// the genesis state, replacing any earlier one (CometBFT calls InitChain
// again if no block was committed before a restart). The genesis state's
// hash is the chain's app hash, for good (see execResults).
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	s, err := ParseAppState(req.AppStateBytes)
	if err != nil {
		return nil, err
	}
	reg, err := s.registry()
	if err != nil {
		return nil, err
	}
	g, err := genesis(req.ChainId, reg, req.Time.UnixMilli())
	if err != nil {
		return nil, err
	}
	if err := a.st.initChain(req.ChainId, req.AppStateBytes, g); err != nil {
		return nil, fmt.Errorf("failed to initialise chain %s: %w", req.ChainId, err)
	}
	a.mu.Lock()
	a.cur = &committed{chainID: req.ChainId, appState: req.AppStateBytes, appHash: g.stateHash, height: 0, stateHash: g.stateHash, lt: g.lt, head: g.head}
	a.reg = reg
	a.mu.Unlock()
	return &abci.ResponseInitChain{AppHash: g.stateHash[:]}, nil
}

// MaxPendingTxs is the most transactions of one cluster that CheckTx lets
// wait in this node's mempool at once: two blocks' worth. A registered CH
// that floods its validators with valid transactions (warning records, say)
// fills its own share; the mempool (5,000 by default) keeps room for the
// other clusters'.
const MaxPendingTxs = 2 * MaxBlockTxs

// CheckTx admits a transaction to the mempool if it would apply to the
// committed state now (the node's clock stands in for the block time) and
// its cluster has fewer than MaxPendingTxs waiting. A refusal of a
// transaction this node's Append waits for is reported to it.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	c, reg, err := a.snapshot()
	if err != nil {
		return &abci.ResponseCheckTx{Code: CodeInternal, Log: err.Error()}, nil
	}
	e := newExecutor(a.st, reg, c.chainID, c.head, time.Now().UnixMilli())
	if err := e.exec(req.Tx); err != nil {
		return &abci.ResponseCheckTx{Code: CodeInternal, Log: err.Error()}, nil
	}
	r := e.results[0]
	if r.err == nil && a.inPool[r.cluster] >= MaxPendingTxs {
		r.err = fmt.Errorf("%w: %d of cluster %q in this node's mempool", ErrTooManyPending, a.inPool[r.cluster], r.cluster)
	}
	if r.err == nil {
		a.inPool[r.cluster]++
		return &abci.ResponseCheckTx{Code: CodeOK}, nil
	}
	if r.signed {
		a.notify(r.digest, outcomeOf{err: r.err})
	}
	return &abci.ResponseCheckTx{Code: code(r.err), Log: r.err.Error()}, nil
}

// PrepareProposal proposes the mempool's transactions that decode and are
// signed by a registered cluster, in order, within the size limit and at most
// MaxBlockTxs of them, after a proposal-time transaction with this node's
// clock (see blocktime.go); no transaction, no proposal time.
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	c, reg, err := a.snapshot()
	if err != nil {
		return nil, err
	}
	stamp, err := encodeProposalTime(time.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	txs := make([][]byte, 1, 1+min(len(req.Txs), MaxBlockTxs))
	txs[0] = stamp
	size := int64(len(stamp))
	for _, tx := range req.Txs {
		if len(txs) == 1+MaxBlockTxs || size+int64(len(tx)) > req.MaxTxBytes {
			break
		}
		if _, err := checkTx(reg, c.chainID, tx); err != nil {
			continue
		}
		txs = append(txs, tx)
		size += int64(len(tx))
	}
	if len(txs) == 1 {
		txs = txs[:0]
	}
	if a.rewrite != nil {
		txs = a.rewrite(txs)
	}
	return &abci.ResponsePrepareProposal{Txs: txs}, nil
}

// ProcessProposal refuses a proposed block whose transactions do not open
// with a proposal time, whose proposal time is more than MaxProposalAhead
// ahead of this node's clock, with more than MaxBlockTxs transactions after
// it, or with any transaction that is malformed or not signed by its
// registered cluster: an honest proposer never makes one, so such a block is
// a proposer rewriting what cluster heads submitted or lying about the time.
// Transactions that the state refuses (a join that lost a race) are allowed:
// FinalizeBlock records their refusal.
func (a *App) ProcessProposal(_ context.Context, req *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	c, reg, err := a.snapshot()
	if err != nil {
		return nil, err
	}
	reject := func() (*abci.ResponseProcessProposal, error) {
		a.rejectedProposals.Add(1)
		return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_REJECT}, nil
	}
	txs := req.Txs
	if len(txs) > 0 {
		ms, ok := decodeProposalTime(txs[0])
		if !ok || time.UnixMilli(ms).After(time.Now().Add(MaxProposalAhead)) {
			return reject()
		}
		txs = txs[1:]
	}
	if len(txs) > MaxBlockTxs {
		return reject()
	}
	for _, tx := range txs {
		if _, err := checkTx(reg, c.chainID, tx); err != nil {
			return reject()
		}
	}
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

// FinalizeBlock applies a decided block at its decided time (decidedTime:
// the proposer's, bounded below by consensus) and returns one result per
// transaction, each carrying the new state hash, and the chain's constant
// app hash. Nothing is written until Commit.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	c, reg, err := a.snapshot()
	if err != nil {
		return nil, err
	}
	e := newExecutor(a.st, reg, c.chainID, c.head, decidedTime(req.Txs, req.Time.UnixMilli(), c.head.Time))
	if err := execBlock(e, req.Txs); err != nil {
		return nil, fmt.Errorf("failed to execute block %d: %w", req.Height, err)
	}
	out, err := e.finish(req.Height, c.lt)
	if err != nil {
		return nil, fmt.Errorf("failed to execute block %d: %w", req.Height, err)
	}
	a.pending = out
	return &abci.ResponseFinalizeBlock{TxResults: execResults(out), AppHash: c.appHash[:]}, nil
}

// execResults returns the CometBFT results of a block's transactions: each
// one's code (CodeOK, or its refusal's) and, as its data, the state hash
// after the block. CometBFT hashes the code and data of every result into the
// next block's header (LastResultsHash) and every validator checks that
// header against its own results: the validators that sign it agree on the
// state the block produced, and one whose state differs cannot follow — what
// an app hash would do. The app hash itself stays the genesis state's: a
// changing app hash makes CometBFT add an empty "proof" block after every
// block that changed it (consensus needProofBlock), a second consensus height
// per commit, whose proposer, if it is down, costs a round (see doc.go).
func execResults(out *outcome) []*abci.ExecTxResult {
	res := make([]*abci.ExecTxResult, len(out.results))
	for i, r := range out.results {
		res[i] = &abci.ExecTxResult{Code: CodeOK, Data: out.stateHash[:]}
		if r.err != nil {
			res[i].Code, res[i].Log = code(r.err), r.err.Error()
		}
	}
	return res
}

// Commit writes the finalized block's outcome in one bbolt transaction, then
// answers the Appends waiting for its transactions.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	out := a.pending
	if out == nil {
		return nil, errors.New("commit without a finalized block")
	}
	a.pending = nil
	if err := a.st.commit(out); err != nil {
		return nil, err
	}
	clear(a.inPool) // the recheck that follows counts what is left
	a.mu.Lock()
	prev := a.cur
	a.cur = &committed{chainID: prev.chainID, appState: prev.appState, appHash: prev.appHash, height: out.height, stateHash: out.stateHash, lt: out.lt, head: out.head}
	a.mu.Unlock()
	for _, r := range out.results {
		if !r.signed {
			continue
		}
		if r.err != nil {
			a.notify(r.digest, outcomeOf{err: r.err})
		} else {
			a.notify(r.digest, outcomeOf{ref: out.refs[r.height]})
		}
	}
	if a.onCommit != nil {
		for _, b := range out.blocks {
			a.onCommit(b.Header.Height, len(b.Events))
		}
	}
	return &abci.ResponseCommit{}, nil
}

// wait registers interest in the outcome of the transaction with digest d.
// The caller must call unwait.
func (a *App) wait(d [32]byte) <-chan outcomeOf {
	ch := make(chan outcomeOf, 1)
	a.wmu.Lock()
	a.waiters[d] = ch
	a.wmu.Unlock()
	return ch
}

func (a *App) unwait(d [32]byte) {
	a.wmu.Lock()
	delete(a.waiters, d)
	a.wmu.Unlock()
}

// notify hands o to the waiter of d, if any; it never blocks.
func (a *App) notify(d [32]byte, o outcomeOf) {
	a.wmu.Lock()
	ch := a.waiters[d]
	delete(a.waiters, d)
	a.wmu.Unlock()
	if ch != nil {
		ch <- o
	}
}

// Close releases the state file. CometBFT must be stopped first.
func (a *App) Close() error { return a.st.close() }
