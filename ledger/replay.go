package ledger

// Replay checks a chain read from elsewhere than a ledger file — an export —
// block by block, with the checks Verify applies to a stored chain: heights
// from 0 without gaps, deterministic encoding, cluster, previous-hash link,
// times, events hash, signature, every event through the state machine and
// every join's evidence. It also keeps what an export's grant records are
// checked against: the session-batch events of the cluster and the block of
// each device's first join.
type Replay struct {
	cluster  string
	v        Verifier
	kc       *keyChain // when v is a KeyChain: the chain of keys is followed
	idx      *memIndex
	next     uint64
	prev     [32]byte
	prevTime int64
	joined   map[string]uint64 // device ID → height of its first join
	batches  []SessionBatchRef // the cluster's session-batch events, in chain order
}

// NewReplay returns a Replay of cluster's chain whose signatures v checks.
// A v that is a KeyChain is followed through the chain's key rotations; any
// other v knows one key, and a rotation is a bad block.
func NewReplay(cluster string, v Verifier) *Replay {
	r := &Replay{cluster: cluster, v: v, idx: newMemIndex(), joined: map[string]uint64{}}
	if chain, ok := v.(KeyChain); ok && len(chain.Keys()) > 0 {
		r.kc, _ = newKeyChain(chain.Keys()) // a key that does not parse: nil, and its blocks fail under v
	}
	return r
}

// Next checks raw, an encoded block, as the next block of the chain and
// returns its reference. A failure is a *BadBlockError; after one, the
// replay must not be continued.
func (r *Replay) Next(raw []byte) (BlockRef, error) {
	ck, err := checkBlock(raw, r.next, r.prev, r.prevTime, r.cluster, r.v, r.kc, r.idx)
	if err != nil {
		return BlockRef{}, &BadBlockError{Height: r.next, Reason: err.Error()}
	}
	r.next++
	r.prev, r.prevTime = ck.Hash, ck.time
	for _, ev := range ck.events {
		switch {
		case ev.Type == EventJoin:
			if _, ok := r.joined[ev.Device]; !ok {
				r.joined[ev.Device] = ck.Height
			}
		case ev.Type == EventSessionBatch && ev.Device == r.cluster:
			r.batches = append(r.batches, SessionBatchRef{Event: ev, Height: ck.Height})
		}
	}
	return ck.BlockRef, nil
}

// SessionBatches returns the session-batch events of the cluster in the
// blocks replayed so far, in chain order.
func (r *Replay) SessionBatches() []SessionBatchRef { return r.batches }

// JoinedBefore reports whether device id was bound by a join in a block
// below height. A bound ID stays in the index whatever follows (leave,
// revoke), so this is whether the chain knew id before that block.
func (r *Replay) JoinedBefore(id string, height uint64) bool {
	h, ok := r.joined[id]
	return ok && h < height
}

// Devices returns how many devices the chain so far has bound.
func (r *Replay) Devices() int { return len(r.idx.devices) }
