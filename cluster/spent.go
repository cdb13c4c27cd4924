package cluster

import (
	"sync"
	"time"

	"github.com/iotguard/iotguard/wire"
)

// spentProofs remembers the talk proofs this process accepted, each until
// the last second it is fresh (protect.TalkProofExpiry), so that none is
// accepted twice (docs/PROTOCOL.md §5.1). A proof is known by its tag,
// which the initiator's talk key makes unique to its initiator, responder,
// nonce and time.
//
// Invariants: at most max proofs are remembered; when that many are
// unexpired, spend refuses (ErrBusy) rather than forget one that could then
// be replayed. Proofs are kept in buckets by expiry second; a fresh proof
// expires within two lifetimes of now, so few buckets are ever live.
type spentProofs struct {
	mu       sync.Mutex
	max, n   int
	byExpiry map[int64]map[[wire.TagSize]byte]struct{}
}

func newSpentProofs(max int) *spentProofs {
	return &spentProofs{max: max, byExpiry: map[int64]map[[wire.TagSize]byte]struct{}{}}
}

// spend records the proof with tag as spent until expires (unix s), once: a
// proof already remembered is ErrBadTalkProof "replay". Proofs that expired
// before now are forgotten first.
func (s *spentProofs) spend(tag []byte, expires int64, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e, tags := range s.byExpiry {
		if e < now.Unix() {
			s.n -= len(tags)
			delete(s.byExpiry, e)
		}
	}
	key := [wire.TagSize]byte(tag)
	bucket := s.byExpiry[expires]
	if _, ok := bucket[key]; ok {
		return refuse(ErrBadTalkProof, "replay")
	}
	if s.n >= s.max {
		return ErrBusy
	}
	if bucket == nil {
		bucket = map[[wire.TagSize]byte]struct{}{}
		s.byExpiry[expires] = bucket
	}
	bucket[key] = struct{}{}
	s.n++
	return nil
}
