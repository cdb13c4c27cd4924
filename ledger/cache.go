package ledger

import (
	"fmt"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// recordCacheSize bounds the decoded index records kept in memory (a few
// hundred bytes each). Busy members stay in it; the index itself stays on disk.
const recordCacheSize = 16384

// recordCache holds decoded index records, so a Lookup of a busy member costs
// a map access instead of a read transaction and a CBOR decode.
//
// Invariant: an entry is the committed record of its ID. Only the committer
// changes records; it refreshes the entries of every record it changed after
// the bbolt transaction commits and before it answers any Append, under mu,
// and bumps gen. A reader that missed fills the entry only if gen did not move
// while it read, so a record read before a commit never overwrites the
// committed one.
type recordCache struct {
	mu      sync.Mutex
	gen     uint64
	records *lru.Cache[string, Device]
}

func newRecordCache() *recordCache {
	c, err := lru.New[string, Device](recordCacheSize)
	if err != nil {
		panic(fmt.Sprintf("record cache: %v", err)) // only for a size below 1
	}
	return &recordCache{records: c}
}

// get returns the cached record of id and the generation to pass to fill
// after a miss.
func (c *recordCache) get(id string) (Device, bool, uint64) {
	if d, ok := c.records.Get(id); ok {
		return d, true, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return Device{}, false, c.gen
}

// fill caches d, read from the store at generation gen, unless a commit
// happened since.
func (c *recordCache) fill(d Device, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.records.Add(d.ID, d)
	}
}

// DropCache empties the cache of decoded index records, so that the next
// lookups time the index itself (benchmarks of its O(log n) cost).
func (l *Bolt) DropCache() { l.cache.committed(nil) }

// committed replaces the entries of the records a commit changed; nil (an
// import) empties the cache.
func (c *recordCache) committed(changed map[string]Device) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if changed == nil {
		c.records.Purge()
		return
	}
	for id, d := range changed {
		c.records.Add(id, d)
	}
}
