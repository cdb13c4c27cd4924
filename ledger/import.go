package ledger

import (
	"context"
	"fmt"
	"slices"

	"github.com/iotguard/iotguard/wire"
	bolt "go.etcd.io/bbolt"
)

// importRequest is one Import waiting for the committer.
type importRequest struct {
	events []Event
	done   chan result // buffered 1
}

// Import is the bulk path for enrolling many devices at once (migrations,
// scale tests): it appends events in order, in blocks of at most MaxBatch
// events, all in one bbolt transaction and one sync. The events run through
// the same state machine as Append's, and the blocks are signed and chained
// like any other, so Verify cannot tell an imported block from an appended
// one. It returns the reference of the last block written.
//
// Either every event is written, with its blocks, index records and the new
// head, or none is: the first event the state machine rejects fails the
// whole import (its index in events is in the error). Appends queued
// meanwhile wait for the import's transaction. Keep imports to tens of
// thousands of events: the whole transaction is held in memory until it
// commits.
//
// ctx bounds only the wait for the committer; once taken, Import waits for
// the outcome.
func (l *Bolt) Import(ctx context.Context, events []Event) (BlockRef, error) {
	if l.isClosed() {
		return BlockRef{}, fmt.Errorf("failed to import: %w", ErrClosed)
	}
	if l.signer == nil {
		return BlockRef{}, fmt.Errorf("failed to import: %w", ErrReadOnly)
	}
	if len(events) == 0 {
		ref, _, err := l.Head()
		return ref, err
	}
	for i, ev := range events {
		if err := ev.validate(); err != nil {
			return BlockRef{}, fmt.Errorf("failed to import event %d: %w", i, err)
		}
	}
	req := &importRequest{events: events, done: make(chan result, 1)}
	select {
	case l.imports <- req:
	case <-l.closing:
		return BlockRef{}, fmt.Errorf("failed to import: %w", ErrClosed)
	case <-ctx.Done():
		return BlockRef{}, fmt.Errorf("failed to import: %w", ctx.Err())
	}
	r := <-req.done
	return r.ref, r.err
}

// commitImport writes req's events as consecutive blocks in one
// transaction. Called by the committer only.
func (l *Bolt) commitImport(req *importRequest) {
	l.mu.RLock()
	prev, prevTime, counts := l.head, l.headTime, l.counts
	l.mu.RUnlock()
	type block struct {
		ref    BlockRef
		events int
	}
	var blocks []block
	headTime := prevTime
	err := l.db.Update(func(tx *bolt.Tx) error {
		blocks = blocks[:0]
		idx := newTxIndex(tx)
		ref, t := prev, prevTime
		for start := 0; start < len(req.events); start += l.maxBatch {
			chunk := req.events[start:min(start+l.maxBatch, len(req.events))]
			height := ref.Height + 1
			for i, ev := range chunk {
				if err := apply(idx, ev, BlockRef{Height: height}); err != nil {
					return fmt.Errorf("failed to import event %d (%s of device %q): %w", start+i, ev.Type, ev.Device, err)
				}
			}
			t = max(l.now().UnixMilli(), t)
			r, err := l.writeBlock(tx, Header{Height: height, Prev: ref.Hash, Time: t, Cluster: l.cluster}, chunk)
			if err != nil {
				return err
			}
			for id, d := range idx.dirty { // records changed in this block point at it
				if d.Updated.Height != height {
					continue
				}
				if d.Joined.Height == height {
					d.Joined.Hash = r.Hash
				}
				d.Updated.Hash = r.Hash
				idx.dirty[id] = d
			}
			ref = r
			blocks = append(blocks, block{r, len(chunk)})
		}
		headTime = t
		ids := make([]string, 0, len(idx.dirty))
		for id := range idx.dirty {
			ids = append(ids, id)
		}
		slices.Sort(ids) // sequential inserts split fewer pages
		for _, id := range ids {
			v, err := wire.Marshal(idx.dirty[id])
			if err != nil {
				return fmt.Errorf("failed to encode device %q: %w", id, err)
			}
			if err := idx.b.Put([]byte(id), v); err != nil {
				return fmt.Errorf("failed to write device %q: %w", id, err)
			}
		}
		counts = idx.count(counts)
		return storeCounts(tx, counts)
	})
	if err != nil {
		req.done <- result{err: fmt.Errorf("failed to import %d events: %w", len(req.events), err)}
		return
	}
	last := blocks[len(blocks)-1].ref
	l.mu.Lock()
	l.head, l.headTime, l.counts = last, headTime, counts
	l.mu.Unlock()
	l.cache.committed(nil)
	if l.onCommit != nil {
		for _, b := range blocks {
			l.onCommit(b.ref.Height, b.events)
		}
	}
	req.done <- result{ref: last}
}
