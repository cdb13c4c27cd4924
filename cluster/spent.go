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
// Invariants: at most max proofs are remembered, and at most perInitiator of
// one initiator, so that a member (or two in collusion: an initiator and a
// responder forwarding its proofs) cannot take every place; when either
// bound is reached by unexpired proofs, spend refuses (ErrBusy) rather than
// forget one that could then be replayed. Proofs are kept in buckets by
// expiry second; a fresh proof expires within two lifetimes of now, so few
// buckets are ever live.
type spentProofs struct {
	mu                sync.Mutex
	max, perInitiator int
	n                 int
	byInitiator       map[string]int                          // unexpired proofs of each initiator that has any
	byExpiry          map[int64]map[[wire.TagSize]byte]string // tag → initiator
}

func newSpentProofs(max, perInitiator int) *spentProofs {
	return &spentProofs{max: max, perInitiator: perInitiator, byInitiator: map[string]int{},
		byExpiry: map[int64]map[[wire.TagSize]byte]string{}}
}

// spend records initiator's proof with tag as spent until expires (unix s),
// once: a proof already remembered is ErrBadTalkProof "replay". Proofs that
// expired before now are forgotten first.
func (s *spentProofs) spend(initiator string, tag []byte, expires int64, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e, tags := range s.byExpiry {
		if e < now.Unix() {
			s.forget(tags)
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
	if s.byInitiator[initiator] >= s.perInitiator {
		return refuse(ErrBusy, "initiator's quota")
	}
	if bucket == nil {
		bucket = map[[wire.TagSize]byte]string{}
		s.byExpiry[expires] = bucket
	}
	bucket[key] = initiator
	s.byInitiator[initiator]++
	s.n++
	return nil
}

// forget drops an expired bucket's proofs from the counts.
func (s *spentProofs) forget(tags map[[wire.TagSize]byte]string) {
	s.n -= len(tags)
	for _, initiator := range tags {
		if s.byInitiator[initiator]--; s.byInitiator[initiator] == 0 {
			delete(s.byInitiator, initiator)
		}
	}
}
