// Package replay owns the anti-replay sliding window used by the CH for each
// member and by devices for each M2M peer (docs/PROTOCOL.md §4.2, §5.2).
package replay

// Size is how many sequence numbers below the highest one a window remembers.
const Size = 64

// Window accepts each sequence number at most once and rejects numbers more
// than Size-1 below the highest accepted. The zero Window accepts any first
// number. It is not safe for concurrent use: the owner holds a lock.
type Window struct {
	started bool
	high    uint64 // highest accepted
	seen    uint64 // bit i set: high-i accepted
}

// Fresh reports whether seq would be accepted. Check it before the costly
// decryption, then call Mark only when the message authenticated.
func (w *Window) Fresh(seq uint64) bool {
	if !w.started || seq > w.high {
		return true
	}
	d := w.high - seq
	return d < Size && w.seen&(1<<d) == 0
}

// Restart makes seq the highest accepted number and every number below it
// spent. After a window was lost (a CH restart), the first sequence number
// proven fresh by an echo is the floor: anything the sender sent before it,
// even within Size of it, may be a replay (RFC 8613 Appendix B.1.2).
func (w *Window) Restart(seq uint64) { w.started, w.high, w.seen = true, seq, ^uint64(0) }

// Mark records seq as accepted. Callers must have checked Fresh(seq).
func (w *Window) Mark(seq uint64) {
	switch {
	case !w.started:
		w.started, w.high, w.seen = true, seq, 1
	case seq > w.high:
		shift := seq - w.high
		if shift >= Size {
			w.seen = 0
		} else {
			w.seen <<= shift
		}
		w.seen |= 1
		w.high = seq
	default:
		w.seen |= 1 << (w.high - seq)
	}
}
