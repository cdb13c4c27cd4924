package ledger

// Replay checks a chain read from elsewhere than a ledger file — an export —
// block by block, with the checks Verify applies to a stored chain: heights
// from 0 without gaps, deterministic encoding, cluster, previous-hash link,
// times, events hash, signature, every event through the state machine and
// every join's evidence.
type Replay struct {
	cluster  string
	v        Verifier
	idx      memIndex
	next     uint64
	prev     [32]byte
	prevTime int64
}

// NewReplay returns a Replay of cluster's chain whose signatures v checks.
func NewReplay(cluster string, v Verifier) *Replay {
	return &Replay{cluster: cluster, v: v, idx: memIndex{}}
}

// Next checks raw, an encoded block, as the next block of the chain and
// returns its reference. A failure is a *BadBlockError; after one, the
// replay must not be continued.
func (r *Replay) Next(raw []byte) (BlockRef, error) {
	ck, err := checkBlock(raw, r.next, r.prev, r.prevTime, r.cluster, r.v, r.idx)
	if err != nil {
		return BlockRef{}, &BadBlockError{Height: r.next, Reason: err.Error()}
	}
	r.next++
	r.prev, r.prevTime = ck.Hash, ck.time
	return ck.BlockRef, nil
}

// Devices returns how many devices the chain so far has bound.
func (r *Replay) Devices() int { return len(r.idx) }
