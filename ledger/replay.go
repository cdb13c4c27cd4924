package ledger

// Replay checks a chain read from elsewhere than a ledger file — an export —
// block by block, with the checks Verify applies to a stored chain: heights
// from 0 without gaps, deterministic encoding, cluster, previous-hash link,
// times, events hash, signature, every event through the state machine and
// every join's evidence and signed freshness. It also keeps what an export's
// grant records are checked against: the session-batch events of the
// cluster and the block of each device's first join.
type Replay struct {
	cluster     string
	v           Verifier
	kc          *keyChain // when v is a KeyChain: the chain of keys is followed
	idx         *memIndex
	next        uint64
	prev        [32]byte
	prevTime    int64
	*grantChain // what the chain's grant records are checked against
}

// NewReplay returns a Replay of cluster's chain whose signatures v checks.
// A v that is a KeyChain is followed through the chain's key rotations; any
// other v knows one key, and a rotation is a bad block.
func NewReplay(cluster string, v Verifier) *Replay {
	r := &Replay{cluster: cluster, v: v, idx: newMemIndex(), grantChain: newGrantChain(cluster)}
	if chain, ok := v.(KeyChain); ok && len(chain.Keys()) > 0 {
		r.kc, _ = newKeyChain(chain.Keys(), "the export") // a key that does not parse: nil, and its blocks fail under v
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
	r.add(ck.Height, ck.events)
	return ck.BlockRef, nil
}

// Time returns the time of the last block checked (unix milliseconds).
func (r *Replay) Time() int64 { return r.prevTime }

// Devices returns how many devices the chain so far has bound.
func (r *Replay) Devices() int { return len(r.idx.devices) }

// End checks, after the last block, that the chain's rotations reached the
// newest key of a KeyChain verifier, as Verify does at the head: without
// it, blocks under an older key would pass for a chain of the newest. A
// failure wraps ErrWrongKey.
func (r *Replay) End() error {
	if r.kc == nil {
		return nil
	}
	return r.kc.end()
}
