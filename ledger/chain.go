package ledger

import (
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/wire"
)

// chainTx is one write transaction of the committer: blocks appended on top
// of the head, each holding events the state machine accepted, the index
// records they changed and the Merkle tree's nodes over them. Appends (one block per batch) and imports (many
// blocks) both write through it, so a block is made, linked, signed and
// indexed in exactly one way.
type chainTx struct {
	l      *Bolt
	tx     *bolt.Tx
	idx    *txIndex
	head   BlockRef       // the newest block: the ledger's head, then each block sealed
	time   int64          // the head's time; block times never go backwards
	tree   *compact.Range // the Merkle tree up to head
	blocks []sealed
}

// sealed is a block written by a chainTx.
type sealed struct {
	ref       BlockRef
	events    int
	rotatedTo []byte // the new key of a rotation block
}

// apply runs ev through the state machine as an event of the next block.
func (c *chainTx) apply(ev Event) error {
	return apply(c.idx, ev, BlockRef{Height: c.head.Height + 1})
}

// seal writes the next block with events, which apply has accepted, and
// points the index records they changed at it. The block's time is the
// ledger's clock, but never before the previous block's nor before any of
// its events' (Verify checks both): an event dated ahead of the clock — the
// clock stepped back between the event and its commit — dates its block, and
// so every later block and checkpoint, as far ahead, in sight of auditors.
func (c *chainTx) seal(events []Event) error {
	height := c.head.Height + 1
	c.time = max(c.l.now().UnixMilli(), c.time)
	for _, ev := range events {
		c.time = max(c.time, ev.Time)
	}
	ref, err := c.l.writeBlock(c.tx, Header{Height: height, Prev: c.head.Hash, Time: c.time, Cluster: c.l.cluster}, events)
	if err != nil {
		return err
	}
	if err := appendLeaf(c.tx, c.tree, ref.Hash); err != nil {
		return err
	}
	for id, d := range c.idx.dirty {
		if d.Updated.Height != height {
			continue // changed by an earlier block of this transaction
		}
		if d.Joined.Height == height {
			d.Joined.Hash = ref.Hash
		}
		d.Updated.Hash = ref.Hash
		c.idx.dirty[id] = d
	}
	for id, e := range c.idx.enrDirty {
		if e.Updated.Height != height {
			continue
		}
		if e.Enrolled.Height == height {
			e.Enrolled.Hash = ref.Hash
		}
		e.Updated.Hash = ref.Hash
		c.idx.enrDirty[id] = e
	}
	to, err := rotatedTo(events)
	if err != nil {
		return err
	}
	c.head = ref
	c.blocks = append(c.blocks, sealed{ref, len(events), to})
	return nil
}

// finish writes the changed index records and enrollments and the counts
// moved by them.
func (c *chainTx) finish(counts *Counts) error {
	if err := writeRecords(c.idx.b, "device", c.idx.dirty); err != nil {
		return err
	}
	if err := writeRecords(c.idx.enr, "enrollment", c.idx.enrDirty); err != nil {
		return err
	}
	*counts = c.idx.count(*counts)
	return storeCounts(c.tx, *counts)
}

// writeRecords writes the changed records of one kind (what) to b, in ID
// order: sequential inserts split fewer pages.
func writeRecords[R any](b *bolt.Bucket, what string, changed map[string]R) error {
	ids := make([]string, 0, len(changed))
	for id := range changed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		v, err := wire.Marshal(changed[id])
		if err != nil {
			return fmt.Errorf("failed to encode %s %q: %w", what, id, err)
		}
		if err := b.Put([]byte(id), v); err != nil {
			return fmt.Errorf("failed to write %s %q: %w", what, id, err)
		}
	}
	return nil
}

// update runs fill in one bbolt transaction on top of the current head. If
// fill returns nil and the transaction commits, the new head, counts and
// cached records are published and OnCommit hears of every block; otherwise
// nothing changed. Called by the committer only.
func (l *Bolt) update(fill func(*chainTx) error) ([]sealed, error) {
	l.mu.RLock()
	head, headTime, counts, tree := l.head, l.headTime, l.counts, l.tree
	l.mu.RUnlock()
	var c *chainTx
	err := l.db.Update(func(tx *bolt.Tx) error {
		c = &chainTx{l: l, tx: tx, idx: newTxIndex(tx), head: head, time: headTime, tree: cloneRange(tree)}
		if err := fill(c); err != nil {
			return err
		}
		return c.finish(&counts)
	})
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.head, l.headTime, l.counts, l.tree = c.head, c.time, counts, c.tree
	l.mu.Unlock()
	l.cache.committed(c.idx.dirty)
	for _, b := range c.blocks {
		if b.rotatedTo != nil {
			l.signer.(KeyRotator).Rotated(b.rotatedTo) // writeBlock signed b with it
		}
	}
	if l.onCommit != nil {
		for _, b := range c.blocks {
			l.onCommit(b.ref.Height, b.events)
		}
	}
	return c.blocks, nil
}

// headRef returns the committed head.
func (l *Bolt) headRef() BlockRef {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.head
}
