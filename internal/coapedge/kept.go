package coapedge

import (
	"bytes"
	"hash/maphash"
	"net"
	"sync"
	"time"
)

// ExchangeLifetime is how long a duplicate of a request may still arrive
// (RFC 7252 §4.8.2, EXCHANGE_LIFETIME with the default parameters): how long
// an answer is kept to repeat.
const ExchangeLifetime = 247 * time.Second

// MaxKeptAnswers bounds the answers the stateless path keeps at once:
// ~50 MiB of a CH's /session answers, all of EXCHANGE_LIFETIME at 530
// kept answers a second, and at 10,000 a second the last 13 s, which holds
// a CON's first three retransmissions (2–3, 6–9 and 14–21 s after it). A
// duplicate of an answer no longer kept is served again: a protected
// request is then refused by its replay window, a sealed 4.01 its device's
// request returns.
const MaxKeptAnswers = 1 << 17

// keptAnswers holds the answers of requests served without an association
// that a duplicate must draw again (Response.Authenticated or Repeat):
// what go-coap's cache does for an association, without one per source
// endpoint. A duplicate — a CON retransmitted because its answer was lost,
// a NON sent twice — is the same datagram from the same endpoint (RFC 7252
// §4.5), so an answer is kept under a keyed hash of its request's source
// endpoint and whole datagram: only that datagram, from there, draws it
// again. Whoever copies a member's request draws the same answer to the
// member's endpoint, nothing new; a datagram changed in any byte is a
// request of its own. The hash's key is drawn per process and never sent,
// so no sender can aim at another request's answer.
//
// Invariant: order holds the keys of byKey, oldest first, and at most max
// of them (a key kept twice at once, two copies of a request served side
// by side, is in order twice and leaves with the first); a new answer
// beyond max takes the place of the oldest. Only answers to requests that
// authenticated are kept, so only members' requests can push a member's
// answer out.
type keptAnswers struct {
	seed maphash.Seed
	max  int

	mu    sync.Mutex
	byKey map[uint64]kept
	order []uint64 // order[head:] are the keys, oldest first
	head  int
}

type kept struct {
	answer []byte // the answer's datagram, as sent
	at     int64  // when, in Unix nanoseconds
}

func newKeptAnswers(max int) *keptAnswers {
	return &keptAnswers{seed: maphash.MakeSeed(), max: max, byKey: map[uint64]kept{}}
}

// key returns the key of datagram, a request from raddr.
func (k *keptAnswers) key(raddr *net.UDPAddr, datagram []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(k.seed)
	from := raddr.AddrPort()
	ip := from.Addr().As16()
	h.Write(ip[:])
	h.Write([]byte{byte(from.Port() >> 8), byte(from.Port())})
	h.Write(datagram)
	return h.Sum64()
}

// get returns the answer kept for the request key, if it is still kept at now.
func (k *keptAnswers) get(key uint64, now time.Time) ([]byte, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.byKey[key]
	if !ok || now.UnixNano()-e.at >= int64(ExchangeLifetime) {
		return nil, false
	}
	return e.answer, true
}

// put keeps a copy of answer, the datagram answering the request key, from
// now, first forgetting the answers kept a lifetime ago and, at the bound,
// the oldest.
func (k *keptAnswers) put(key uint64, answer []byte, now time.Time) {
	at := now.UnixNano()
	k.mu.Lock()
	defer k.mu.Unlock()
	for ; k.head < len(k.order); k.head++ {
		oldest := k.order[k.head]
		if e, ok := k.byKey[oldest]; ok && len(k.order)-k.head < k.max && at-e.at < int64(ExchangeLifetime) {
			break
		}
		delete(k.byKey, oldest)
	}
	if k.head > len(k.order)/2 { // reuse the array: the queue moves down to its start
		k.order = k.order[:copy(k.order, k.order[k.head:])]
		k.head = 0
	}
	k.byKey[key] = kept{answer: bytes.Clone(answer), at: at}
	k.order = append(k.order, key)
}
