package client

// iotguard patch (third_party/README.md, patch 7): the default response
// cache. v3.8.0 kept each answer as a map entry with a string key, an
// element, a boxed expiry time and a byte slice (four heap objects the
// garbage collector marks on every cycle), and expired them by scanning
// every entry every few seconds. A server answering thousands of requests
// a second holds ExchangeLifetime (247 s) of answers, so both the scan and
// each GC cycle grew with the request rate and stalled every request.

import (
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// answerCache keeps every answer for ExchangeLifetime in the order it was
// stored. All entries live equally long, so that order is also the order
// they expire in: CheckExpirations pops them from the front in O(expired).
// It holds no pointers but its three slices and map, whose contents the
// garbage collector does not scan.
type answerCache struct {
	mu       sync.Mutex
	lifetime time.Duration
	// index maps a key to its entry's number; entry n is entries[n-first].
	index   map[uint64]uint64
	entries []answerEntry
	first   uint64 // the number of entries[0]
	head    int    // entries[:head] have expired and left index
	// bytes holds the entries' answers back to back; byte o of the
	// logical stream is bytes[o-byteBase].
	bytes    []byte
	byteBase uint64
}

type answerEntry struct {
	key     uint64
	expires int64 // Unix nanoseconds
	offset  uint64
	size    uint32
}

// newAnswerCache returns an empty cache that keeps answers for lifetime.
func newAnswerCache(lifetime time.Duration) *answerCache {
	return &answerCache{lifetime: lifetime}
}

// Load fills msg with the unexpired answer stored under key, if any.
func (c *answerCache) Load(key uint64, msg *pool.Message) (bool, error) {
	raw := c.load(key, time.Now().UnixNano())
	if raw == nil {
		return false, nil
	}
	if _, err := msg.UnmarshalWithDecoder(coder.DefaultCoder, raw); err != nil {
		return false, err
	}
	return true, nil
}

// load returns a copy of the answer under key (msg keeps slices of what it
// decodes, and the cache moves its bytes when it compacts).
func (c *answerCache) load(key uint64, now int64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.index[key]
	if !ok {
		return nil
	}
	e := c.entries[n-c.first]
	if now > e.expires {
		return nil
	}
	start := e.offset - c.byteBase
	return append([]byte(nil), c.bytes[start:start+uint64(e.size)]...)
}

// Store keeps msg's encoding under key, unless an unexpired answer is
// already there (the first answer to a message ID is the one repeated).
func (c *answerCache) Store(key uint64, msg *pool.Message) error {
	raw, err := msg.MarshalWithEncoder(coder.DefaultCoder)
	if err != nil {
		return err
	}
	c.store(key, raw, time.Now().UnixNano())
	return nil
}

func (c *answerCache) store(key uint64, raw []byte, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.index[key]; ok && now <= c.entries[n-c.first].expires {
		return
	}
	if c.index == nil {
		c.index = make(map[uint64]uint64)
	}
	c.index[key] = c.first + uint64(len(c.entries))
	c.entries = append(c.entries, answerEntry{
		key:     key,
		expires: now + int64(c.lifetime),
		offset:  c.byteBase + uint64(len(c.bytes)),
		size:    uint32(len(raw)),
	})
	c.bytes = append(c.bytes, raw...)
}

// CheckExpirations drops the answers expired at now: the oldest ones.
func (c *answerCache) CheckExpirations(now time.Time) {
	c.expire(now.UnixNano())
}

func (c *answerCache) expire(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head < len(c.entries) && now > c.entries[c.head].expires {
		e := c.entries[c.head]
		if n, ok := c.index[e.key]; ok && n == c.first+uint64(c.head) {
			delete(c.index, e.key)
		}
		c.head++
	}
	c.compact()
}

// compact frees the expired front once it is at least half of the
// entries, so each entry and byte is moved O(1) times on average.
func (c *answerCache) compact() {
	switch {
	case c.head == len(c.entries):
		c.first += uint64(c.head)
		c.byteBase += uint64(len(c.bytes))
		c.entries, c.bytes, c.head = c.entries[:0], c.bytes[:0], 0
		if cap(c.entries) > minCompact {
			// A burst is over: give its memory back. index is empty (every
			// key it held was an entry's, all expired), and no larger than
			// the entries were.
			c.entries, c.bytes, c.index = nil, nil, nil
		}
	case c.head >= minCompact && c.head >= len(c.entries)/2:
		live := c.entries[c.head].offset - c.byteBase
		c.bytes = c.bytes[:copy(c.bytes, c.bytes[live:])]
		c.byteBase += live
		c.entries = c.entries[:copy(c.entries, c.entries[c.head:])]
		c.first += uint64(c.head)
		c.head = 0
	}
}

// minCompact is the expired front below which compact leaves the slices
// alone.
const minCompact = 256
