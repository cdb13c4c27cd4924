package bftledger

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/internal/echo"
	"github.com/iotguard/iotguard/ledger"
)

// stateHashDomain separates the state hash from other SHA-256 uses.
const stateHashDomain = "iotguard-bft-state-v1"

// head is the newest ledger block and its time (unix milliseconds).
type head struct {
	Ref  ledger.BlockRef `cbor:"1,keyasint"`
	Time int64           `cbor:"2,keyasint"`
}

// state is the committed state as the executor reads it. The app reads it
// from bbolt, Verify from memory.
type state interface {
	// device returns the committed record of id and whether there is one.
	device(id string) (ledger.Device, bool, error)
	// enrollment returns the committed enrollment of id and whether there is one.
	enrollment(id string) (ledger.Enrollment, bool, error)
	// seen reports whether a block has carried the transaction with digest d.
	seen(d [32]byte) (bool, error)
}

// stateHash commits to the whole state after a block: the ledger head (which
// chains every accepted event) and the lattice hash of every record, seen
// digest and registered cluster. Each transaction result of a block carries
// it (see execResults).
func stateHash(h head, lt *ltHash) [32]byte {
	sum := lt.sum()
	b := make([]byte, 0, len(stateHashDomain)+64)
	b = append(b, stateHashDomain...)
	b = append(b, h.Ref.Hash[:]...)
	b = append(b, sum[:]...)
	return sha256.Sum256(b)
}

// checkedTx is a transaction that decoded and whose signature verified.
type checkedTx struct {
	tx     *Tx
	digest [32]byte
}

// checkTx decodes raw and verifies its signature under the registered key of
// the cluster it names: the checks that do not depend on state.
func checkTx(reg *registry, chainID string, raw []byte) (checkedTx, error) {
	t, err := DecodeTx(raw)
	if err != nil {
		return checkedTx{}, err
	}
	r, ok := reg.clusters[t.Cluster]
	if !ok {
		return checkedTx{}, fmt.Errorf("%w: %q", ErrUnregistered, t.Cluster)
	}
	if err := verifyTx(t, chainID, r.verifier); err != nil {
		return checkedTx{}, err
	}
	d, err := t.Digest(chainID)
	if err != nil {
		return checkedTx{}, err
	}
	return checkedTx{tx: t, digest: d}, nil
}

// MaxBlockTxs is the most transactions one CometBFT block may carry. Their
// accepted events fill consecutive ledger blocks of at most
// ledger.MaxBatchLimit events each.
const MaxBlockTxs = 16 * ledger.MaxBatchLimit

// txResult is the outcome of one transaction of a block.
type txResult struct {
	digest  [32]byte // zero unless signed
	signed  bool     // the transaction decoded and its signature verified
	cluster string   // signed: the cluster that signed it
	err     error    // nil: applied
	height  uint64   // applied: the ledger block holding the event
}

// executor applies the transactions of one block to a committed state,
// keeping every change in memory until the caller commits them. It is
// deterministic: the same state, registry, chain ID, previous head, time and
// transactions always give the same outcome, on every validator.
type executor struct {
	st      state
	reg     *registry
	chainID string
	prev    head
	timeMS  int64 // consensus time of the block

	dirty    map[string]ledger.Device     // records changed by accepted events
	enrDirty map[string]ledger.Enrollment // enrollments changed by accepted events
	newSeen  map[[32]byte]bool
	order    [][32]byte // newSeen in block order
	events   []ledger.Event
	results  []txResult
}

func newExecutor(st state, reg *registry, chainID string, prev head, timeMS int64) *executor {
	return &executor{st: st, reg: reg, chainID: chainID, prev: prev, timeMS: timeMS,
		dirty: map[string]ledger.Device{}, enrDirty: map[string]ledger.Enrollment{}, newSeen: map[[32]byte]bool{}}
}

// overlay is the index one transaction sees: committed records with the
// block's earlier changes on top. Records it puts for a join, and
// enrollments it puts, get the submitting cluster.
type overlay struct {
	e       *executor
	cluster string
	puts    map[string]ledger.Device
	enrPuts map[string]ledger.Enrollment
}

func (o *overlay) GetEnrollment(id string) (ledger.Enrollment, bool, error) {
	return layered(id, o.enrPuts, o.e.enrDirty, o.e.st.enrollment)
}

func (o *overlay) PutEnrollment(e ledger.Enrollment) {
	if e.Cluster == "" {
		e.Cluster = o.cluster
	}
	o.enrPuts[e.ID] = e
}

func (o *overlay) Get(id string) (ledger.Device, bool, error) {
	return layered(id, o.puts, o.e.dirty, o.e.st.device)
}

// layered reads id's record as the transaction sees it: its own puts, then
// the block's earlier changes, then the committed state.
func layered[T any](id string, puts, dirty map[string]T, committed func(string) (T, bool, error)) (T, bool, error) {
	if v, ok := puts[id]; ok {
		return v, true, nil
	}
	if v, ok := dirty[id]; ok {
		return v, true, nil
	}
	v, ok, err := committed(id)
	if err != nil {
		var zero T
		return zero, false, &stateError{err}
	}
	return v, ok, nil
}

func (o *overlay) Put(d ledger.Device) {
	if d.Cluster == "" {
		d.Cluster = o.cluster
	}
	o.puts[d.ID] = d
}

// exec applies one raw transaction and records its result. It returns an
// error only when the state cannot be read: the block cannot be executed, and
// the validator must stop rather than record a refusal the others would not.
func (e *executor) exec(raw []byte) error {
	r, err := e.try(raw)
	var se *stateError
	if errors.As(err, &se) {
		return se.err
	}
	r.err = err
	e.results = append(e.results, r)
	return nil
}

// stateError marks a failure to read the committed state, as opposed to a
// refused transaction.
type stateError struct{ err error }

func (s *stateError) Error() string { return s.err.Error() }

func (e *executor) try(raw []byte) (txResult, error) {
	c, err := checkTx(e.reg, e.chainID, raw)
	if err != nil {
		return txResult{}, err
	}
	r := txResult{digest: c.digest, signed: true, cluster: c.tx.Cluster}
	seen, err := e.st.seen(c.digest)
	if err != nil {
		return r, &stateError{err}
	}
	if seen || e.newSeen[c.digest] {
		return r, fmt.Errorf("%w: %x", ErrReplay, c.digest[:8])
	}
	// From here on the transaction is spent, whatever its outcome: a refused
	// event must not become valid when replayed later.
	e.newSeen[c.digest] = true
	e.order = append(e.order, c.digest)

	ev := c.tx.Event
	if skew := e.timeMS - ev.Time; skew > e.reg.maxSkew || -skew > e.reg.maxSkew {
		return r, fmt.Errorf("%w: %s event of device %q is %d ms from block time", ErrStale, ev.Type, ev.Device, skew)
	}
	if ev.Type == ledger.EventJoin {
		// Every validator checks the device's own signature: a CH cannot
		// write a join the device did not sign, nor one for another cluster.
		req, err := ledger.VerifyJoinEvidence(ev)
		if err == nil && req.Cluster != c.tx.Cluster {
			err = fmt.Errorf("%w: join of device %q names cluster %q, submitted by %q", ledger.ErrInvalidEvent, ev.Device, req.Cluster, c.tx.Cluster)
		}
		if err == nil {
			err = joinFreshness(ev, req.Echo, e.prev.Ref.Height)
		}
		if err != nil {
			return r, fmt.Errorf("failed to append %s event: %w", ev.Type, err)
		}
	}
	if ev.Type == ledger.EventRotate {
		// The genesis registry fixes each cluster's CH key and a rotation
		// would not change whose signatures validators accept: the shared
		// ledger refuses it (clusterhead refuses rotate-key here too).
		return r, fmt.Errorf("failed to append %s event: %w: key rotation on the shared ledger (the genesis registry fixes each cluster's CH key)", ev.Type, ledger.ErrInvalidEvent)
	}
	if (ev.Type == ledger.EventSessionBatch || ev.Type == ledger.EventGrantsPruned) && ev.Device != c.tx.Cluster {
		// A batch commits to the grants of the CH that submits it, in its
		// own grant log, and a prune allows deleting records of that log:
		// each names that CH's cluster, never another's.
		return r, fmt.Errorf("failed to append %s event: %s of cluster %q submitted by %q: %w", ev.Type, ev.Type, ev.Device, c.tx.Cluster, ledger.ErrOtherCluster)
	}
	o := &overlay{e: e, cluster: c.tx.Cluster, puts: map[string]ledger.Device{}, enrPuts: map[string]ledger.Enrollment{}}
	if err := authorize(o, c.tx.Cluster, ev, e.timeMS); err != nil {
		return r, fmt.Errorf("failed to append %s event: %w", ev.Type, err)
	}
	r.height = e.prev.Ref.Height + 1 + uint64(len(e.events)/ledger.MaxBatchLimit)
	if err := ledger.Apply(o, ev, ledger.BlockRef{Height: r.height}); err != nil {
		return r, fmt.Errorf("failed to append %s event: %w", ev.Type, err)
	}
	for id, d := range o.puts {
		e.dirty[id] = d
	}
	for id, en := range o.enrPuts {
		e.enrDirty[id] = en
	}
	e.events = append(e.events, ev)
	return r, nil
}

// joinFreshness refuses a join that does not record the freshness its
// device signed: FreshAt must be the height of signedEcho, the echo in the
// device's join request (a CH stamps each echo with its committed ledger height,
// internal/echo), not above the ledger's head before the block (prevHeight:
// no CH has committed a higher one), and the event's time (the CH's clock when
// it checked the echo) within the echo's lifetime after the echo's time.
// The state machine refuses a join signed before the device's record last
// changed by FreshAt alone (ledger.ErrStale); unchecked, a CH could replay a
// request a device once signed for its cluster, after the device had moved to
// another cluster and left it, claiming any freshness, and take the device back.
func joinFreshness(ev ledger.Event, signedEcho []byte, prevHeight uint64) error {
	echoSec, height, ok := echo.Stamp(signedEcho)
	switch {
	case !ok:
		return fmt.Errorf("%w: join of device %q: its request carries no echo", ledger.ErrInvalidEvent, ev.Device)
	case height != ev.FreshAt:
		return fmt.Errorf("%w: join of device %q records freshness at height %d, its device signed an echo of height %d", ledger.ErrInvalidEvent, ev.Device, ev.FreshAt, height)
	case ev.FreshAt > prevHeight:
		return fmt.Errorf("%w: join of device %q signed over an echo of height %d, above the ledger's head %d", ledger.ErrInvalidEvent, ev.Device, ev.FreshAt, prevHeight)
	case ev.Time < echoSec*1000 || ev.Time-echoSec*1000 >= (echo.Lifetime+time.Second).Milliseconds():
		return fmt.Errorf("%w: join of device %q at %d ms, not within the lifetime of its echo made at %d s", ledger.ErrInvalidEvent, ev.Device, ev.Time, echoSec)
	}
	return nil
}

// authorize refuses an event by which cluster writes about a device of
// another cluster (see ErrOtherCluster), and an enroll or unenroll of a
// device enrolled by, or recorded for, another cluster. Unknown devices are
// left to the state machine.
func authorize(o *overlay, cluster string, ev ledger.Event, nowMS int64) error {
	check := func(id string, join bool) error {
		d, ok, err := o.Get(id)
		if err != nil {
			return err
		}
		if !ok || d.Cluster == cluster {
			return nil
		}
		if !join {
			return fmt.Errorf("device %q is of cluster %q, not %q: %w: %w", id, d.Cluster, cluster, ErrOtherCluster, ledger.ErrNotMember)
		}
		if d.StatusAt(time.UnixMilli(nowMS)).Current() {
			return fmt.Errorf("device %q is a member of cluster %q: %w: %w", id, d.Cluster, ErrOtherCluster, ledger.ErrConflict)
		}
		return nil // left, revoked (the state machine refuses) or expired elsewhere: may join here
	}
	switch ev.Type {
	case ledger.EventJoin:
		return check(ev.Device, true)
	case ledger.EventEnroll, ledger.EventUnenroll:
		// A CH enrolls only for its own cluster: neither an enrollment nor
		// a device record of another cluster may change by its hand.
		en, ok, err := o.GetEnrollment(ev.Device)
		if err != nil {
			return err
		}
		if ok && en.Cluster != cluster {
			return fmt.Errorf("device %q is enrolled by cluster %q, not %q: %w", ev.Device, en.Cluster, cluster, ErrOtherCluster)
		}
		return check(ev.Device, false)
	case ledger.EventSessionBatch, ledger.EventGrantsPruned:
		return nil // names the submitting cluster (checked above), not a device
	case ledger.EventSession:
		if err := check(ev.Device, false); err != nil {
			return err
		}
		return check(ev.Peer, false)
	default:
		return check(ev.Device, false)
	}
}

// outcome is what a block changed, ready to commit.
type outcome struct {
	height  int64           // CometBFT height
	results []txResult      // one per transaction, in order
	blocks  []*ledger.Block // the ledger blocks of the accepted events, in height order
	refs    map[uint64]ledger.BlockRef
	head    head
	devices map[string]ledger.Device // changed records, block hashes filled in
	// enrollments are the changed enrollments, block hashes filled in.
	enrollments map[string]ledger.Enrollment
	seen        [][32]byte
	lt          ltHash
	stateHash   [32]byte
}

// finish closes the block: it makes the ledger blocks of the accepted
// events (none if there are none), fills their hashes into the changed
// records and updates the state hash lt.
func (e *executor) finish(height int64, lt ltHash) (*outcome, error) {
	out := &outcome{height: height, results: e.results, head: e.prev, devices: e.dirty, enrollments: e.enrDirty,
		seen: e.order, lt: lt, refs: map[uint64]ledger.BlockRef{}}
	t := max(e.timeMS, e.prev.Time)
	for i := 0; i < len(e.events); i += ledger.MaxBatchLimit {
		events := e.events[i:min(i+ledger.MaxBatchLimit, len(e.events))]
		h := ledger.Header{Height: out.head.Ref.Height + 1, Prev: out.head.Ref.Hash, Time: t, Cluster: e.chainID}
		var err error
		if h.Events, err = ledger.HashEvents(events); err != nil {
			return nil, err
		}
		hash, err := h.Hash()
		if err != nil {
			return nil, err
		}
		out.blocks = append(out.blocks, &ledger.Block{Header: h, Events: events})
		out.head = head{Ref: ledger.BlockRef{Height: h.Height, Hash: hash}, Time: t}
		out.refs[h.Height] = out.head.Ref
	}
	for id, d := range e.dirty {
		if ref, ok := out.refs[d.Joined.Height]; ok {
			d.Joined.Hash = ref.Hash
		}
		d.Updated.Hash = out.refs[d.Updated.Height].Hash
		e.dirty[id] = d
	}
	for id, en := range e.enrDirty {
		if ref, ok := out.refs[en.Enrolled.Height]; ok {
			en.Enrolled.Hash = ref.Hash
		}
		en.Updated.Hash = out.refs[en.Updated.Height].Hash
		e.enrDirty[id] = en
		old, ok, err := e.st.enrollment(id)
		if err != nil {
			return nil, err
		}
		if err := out.lt.replace(enrollmentElem, id, old, ok, en); err != nil {
			return nil, err
		}
	}
	for id, d := range e.dirty {
		old, ok, err := e.st.device(id)
		if err != nil {
			return nil, err
		}
		if err := out.lt.replace(deviceElem, id, old, ok, d); err != nil {
			return nil, err
		}
	}
	for _, d := range e.order {
		out.lt.add(seenElem(d))
	}
	out.stateHash = stateHash(out.head, &out.lt)
	return out, nil
}

// genesis returns the state of a new chain: the empty genesis ledger block at
// the genesis time and the registry in the state hash.
func genesis(chainID string, reg *registry, timeMS int64) (*outcome, error) {
	h := ledger.Header{Height: 0, Time: timeMS, Cluster: chainID}
	var err error
	if h.Events, err = ledger.HashEvents(nil); err != nil {
		return nil, err
	}
	hash, err := h.Hash()
	if err != nil {
		return nil, err
	}
	out := &outcome{blocks: []*ledger.Block{{Header: h}}, head: head{Ref: ledger.BlockRef{Height: 0, Hash: hash}, Time: timeMS},
		devices: map[string]ledger.Device{}, enrollments: map[string]ledger.Enrollment{}}
	for id, r := range reg.clusters {
		out.lt.add(clusterElem(id, r.key))
	}
	out.stateHash = stateHash(out.head, &out.lt)
	return out, nil
}
