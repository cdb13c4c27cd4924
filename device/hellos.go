package device

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// maxHellos bounds the hellos a listener remembers (~100 B each).
const maxHellos = 1024

// helloCache remembers the hellos a listener forwarded to its CH, by their
// proof's tag, until the proof is stale, so that a replayed hello is refused
// here and never forwarded twice (PROTOCOL.md §5.1). A hello is claimed
// before it is forwarded, so a copy arriving meanwhile is refused too, and
// released when the CH did not accept its proof: the cache keeps only
// proofs the CH accepted and the few in flight, so datagrams that prove
// nothing cannot fill it. A forged hello does not block the genuine one: its
// tag differs.
//
// Bounded: past maxHellos the least recent claim is forgotten. The CH, which
// remembers every proof it accepted until it is stale, still refuses a
// replay that gets past this cache; nothing is acted on twice.
type helloCache struct {
	mu   sync.Mutex
	seen *simplelru.LRU[[wire.TagSize]byte, int64] // tag → last fresh second
}

func newHelloCache(size int) *helloCache {
	seen, err := simplelru.NewLRU[[wire.TagSize]byte, int64](size, nil)
	if err != nil {
		panic(err) // only for a size ≤ 0; ours is a constant
	}
	return &helloCache{seen: seen}
}

// claim reports whether p is new at now, and remembers it until it is stale.
func (c *helloCache) claim(p *wire.TalkProof, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	tag := [wire.TagSize]byte(p.Tag)
	if exp, ok := c.seen.Peek(tag); ok && now.Unix() <= exp {
		return false
	}
	c.seen.Add(tag, protect.TalkProofExpiry(p.Time))
	return true
}

// release forgets p's claim.
func (c *helloCache) release(p *wire.TalkProof) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen.Remove([wire.TagSize]byte(p.Tag))
}
