package ledger

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/wire"
)

// PruneChunk bounds one prune transaction: it deletes the records of whole
// batches until at least this many are gone (one batch may hold up to
// MaxGrantBatch), so that a running CH's own writes to the grant log — its
// batches and their commit marks — wait for one chunk at most, never for the
// whole prune.
const PruneChunk = 1 << 14

// Pruned is what a prune deleted.
type Pruned struct {
	Before  time.Time `json:"before"`  // the records of batches written before this
	Batches uint64    `json:"batches"` // batches whose records were deleted
	Records uint64    `json:"records"`
}

// Prune deletes the records of the committed batches written before
// before, keeping each batch's count, root and block (marked Pruned). A batch
// not yet on the ledger is never pruned. What stays provable: the ledger's
// signed count and root per batch, and any record whose inclusion path was
// kept (GrantInclusion) before the prune.
//
// It works in transactions of about PruneChunk records, each deleting whole
// batches and marking them pruned together, so it runs beside a serving CH,
// and a prune stopped by ctx (its error is returned with what was pruned)
// leaves a consistent log that the next prune finishes. progress, if not
// nil, is called after each transaction with the batches done and the
// batches to prune. bbolt reuses the freed pages; the file does not shrink
// (bbolt compact does that offline).
func (g *GrantLog) Prune(ctx context.Context, before time.Time, progress func(done, total uint64)) (Pruned, error) {
	p := Pruned{Before: before}
	cut := before.UnixMilli()
	var total uint64
	err := g.db.View(func(tx *bolt.Tx) error {
		return eachPrunable(tx.Bucket(bucketGrantBatches), 0, cut, func(GrantBatch) bool { total++; return true })
	})
	for next := uint64(0); err == nil && p.Batches < total; {
		if err = ctx.Err(); err != nil {
			break
		}
		var batches, records uint64
		if next, batches, records, err = g.pruneChunk(next, cut); err != nil || batches == 0 {
			break // none: fewer than counted, a concurrent prune took them
		}
		p.Batches, p.Records = p.Batches+batches, p.Records+records
		total = max(total, p.Batches) // a batch committed since the count
		if progress != nil {
			progress(p.Batches, total)
		}
	}
	if err != nil {
		return p, fmt.Errorf("failed to prune grant log %s after %d batches: %w", g.path, p.Batches, err)
	}
	return p, nil
}

// pruneChunk prunes, in one transaction, prunable batches from batch from
// on until they held PruneChunk records, and returns the batch to go on from.
func (g *GrantLog) pruneChunk(from uint64, cut int64) (next, batches, records uint64, err error) {
	next = from
	err = g.db.Update(func(tx *bolt.Tx) error {
		bb, gb := tx.Bucket(bucketGrantBatches), tx.Bucket(bucketGrants)
		var chunk []GrantBatch // collected first: a bucket must not change under its cursor
		var size uint64
		err := eachPrunable(bb, from, cut, func(b GrantBatch) bool {
			chunk = append(chunk, b)
			size += b.Count
			return size < PruneChunk
		})
		if err != nil {
			return err
		}
		for _, b := range chunk {
			n, err := pruneBatch(bb, gb, b)
			if err != nil {
				return err
			}
			records += n
			next = b.Seq + 1
		}
		batches = uint64(len(chunk))
		return nil
	})
	return next, batches, records, err
}

// eachPrunable calls fn, in number order from batch from, for each batch
// written before cut (unix milliseconds) that is committed and not yet
// pruned, until fn returns false.
func eachPrunable(bb *bolt.Bucket, from uint64, cut int64, fn func(GrantBatch) bool) error {
	c := bb.Cursor()
	for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, from)); k != nil; k, v = c.Next() {
		var b GrantBatch
		if err := wire.Unmarshal(v, &b); err != nil {
			return fmt.Errorf("failed to read grant batch %x: %w", k, err)
		}
		if b.TimeMS >= cut {
			return nil // batches are numbered in the order they were written
		}
		if !b.Pruned && b.Height != 0 && !fn(b) {
			return nil
		}
	}
	return nil
}

// pruneBatch deletes b's records, marks it pruned and returns how many
// records it deleted.
func pruneBatch(bb, gb *bolt.Bucket, b GrantBatch) (n uint64, err error) {
	k := binary.BigEndian.AppendUint64(nil, b.Seq)
	c := gb.Cursor()
	for rk, _ := c.Seek(k); len(rk) == 12 && string(rk[:8]) == string(k); rk, _ = c.Seek(k) {
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	b.Pruned = true
	return n, putBatch(bb, b)
}
