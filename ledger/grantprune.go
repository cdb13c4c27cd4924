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
	// Horizon and Block are the grants-pruned event that allows it: the
	// batches below Horizon committed before Block (0 when nothing was old
	// enough to prune).
	Horizon uint64 `json:"horizon,omitempty"`
	Block   uint64 `json:"block,omitempty"`
}

// PruneRecorder appends the grants-pruned event of the grant log's cluster
// with horizon to the ledger (Event.Batch: the first batch it keeps) and
// returns its block once it is durable.
type PruneRecorder func(ctx context.Context, horizon uint64) (BlockRef, error)

// GrantsPrunedEvent is the grants-pruned event of cluster's CH allowing it,
// at now, to delete the records of its batches below horizon.
func GrantsPrunedEvent(cluster string, horizon uint64, now time.Time) Event {
	return Event{Type: EventGrantsPruned, Device: cluster, Time: now.UnixMilli(), Batch: horizon}
}

// pruneRecord is the last grants-pruned event a prune appended.
type pruneRecord struct {
	Horizon uint64 `cbor:"1,keyasint"`
	Height  uint64 `cbor:"2,keyasint"`
}

var keyPruneRecorded = []byte("recorded")

// Prune deletes the records of the committed batches written before
// before, keeping each batch's count, root and block (marked Pruned). A batch
// not yet on the ledger is never pruned. What stays provable: the ledger's
// signed count and root per batch, and any record whose inclusion path was
// kept (GrantInclusion) before the prune.
//
// First the prune is put on the ledger, durably, through record: a
// grants-pruned event whose horizon is above every batch pruned or to prune
// (unless the last one recorded already is). Only the batches it covers —
// below its horizon and committed in a block before its own — are pruned.
// So a batch whose records are missing is, for every reader of the ledger,
// either covered by a prune the CH signed, at a time on the ledger, or
// withheld (grantChain.PrunedBy).
//
// It works in transactions of about PruneChunk records, each deleting whole
// batches and marking them pruned together, so it runs beside a serving CH,
// and a prune stopped by ctx (its error is returned with what was pruned)
// leaves a consistent log that the next prune finishes. progress, if not
// nil, is called after each transaction with the batches done and the
// batches to prune. bbolt reuses the freed pages; the file does not shrink
// (bbolt compact does that offline).
func (g *GrantLog) Prune(ctx context.Context, before time.Time, record PruneRecorder, progress func(done, total uint64)) (Pruned, error) {
	p := Pruned{Before: before}
	cut := before.UnixMilli()
	var total, horizon uint64
	var rec pruneRecord
	err := g.db.View(func(tx *bolt.Tx) error {
		var err error
		if rec, err = recordedPrune(tx); err != nil {
			return err
		}
		total, horizon, err = prunePlan(tx.Bucket(bucketGrantBatches), cut)
		return err
	})
	if err == nil && horizon > rec.Horizon {
		rec, err = g.recordPrune(ctx, horizon, record)
	}
	p.Horizon, p.Block = rec.Horizon, rec.Height
	for next := uint64(0); err == nil && p.Batches < total; {
		if err = ctx.Err(); err != nil {
			break
		}
		var batches, records uint64
		if next, batches, records, err = g.pruneChunk(next, cut, rec); err != nil || batches == 0 {
			break // none: fewer than counted (a concurrent prune took them, or they are not covered yet)
		}
		p.Batches, p.Records = p.Batches+batches, p.Records+records
		if progress != nil {
			progress(p.Batches, total)
		}
	}
	if err != nil {
		return p, fmt.Errorf("failed to prune grant log %s after %d batches: %w", g.path, p.Batches, err)
	}
	return p, nil
}

// prunePlan counts the batches written before cut that are committed and
// not pruned, and returns the horizon a prune of them records: one above
// the highest of them and of the batches pruned already (0 if none).
func prunePlan(bb *bolt.Bucket, cut int64) (total, horizon uint64, err error) {
	err = eachWrittenBefore(bb, 0, cut, func(b GrantBatch) bool {
		if !b.Pruned && b.Height != 0 {
			total++
		}
		if b.Pruned || b.Height != 0 {
			horizon = b.Seq + 1
		}
		return true
	})
	return total, horizon, err
}

// recordPrune appends the grants-pruned event of horizon and remembers it.
func (g *GrantLog) recordPrune(ctx context.Context, horizon uint64, record PruneRecorder) (pruneRecord, error) {
	ref, err := record(ctx, horizon)
	if err != nil {
		return pruneRecord{}, fmt.Errorf("failed to record the prune on the ledger: %w", err)
	}
	rec := pruneRecord{Horizon: horizon, Height: ref.Height}
	v, err := wire.Marshal(rec)
	if err != nil {
		return pruneRecord{}, err
	}
	return rec, g.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketGrantPrunes).Put(keyPruneRecorded, v) })
}

// recordedPrune returns the last grants-pruned event recordPrune appended
// (zero if none, or a grant log from before prunes were recorded).
func recordedPrune(tx *bolt.Tx) (pruneRecord, error) {
	var rec pruneRecord
	b := tx.Bucket(bucketGrantPrunes)
	if b == nil || b.Get(keyPruneRecorded) == nil {
		return rec, nil
	}
	if err := wire.Unmarshal(b.Get(keyPruneRecorded), &rec); err != nil {
		return rec, fmt.Errorf("failed to read the last prune recorded: %w", err)
	}
	return rec, nil
}

// pruneChunk prunes, in one transaction, the batches from batch from on
// written before cut, committed, not pruned yet and covered by rec, until
// they held PruneChunk records, and returns the batch to go on from.
func (g *GrantLog) pruneChunk(from uint64, cut int64, rec pruneRecord) (next, batches, records uint64, err error) {
	next = from
	err = g.db.Update(func(tx *bolt.Tx) error {
		bb, gb := tx.Bucket(bucketGrantBatches), tx.Bucket(bucketGrants)
		var chunk []GrantBatch // collected first: a bucket must not change under its cursor
		var size uint64
		err := eachWrittenBefore(bb, from, cut, func(b GrantBatch) bool {
			switch {
			case b.Pruned || b.Height == 0: // pruned, or not on the ledger yet
				return true
			case b.Seq >= rec.Horizon || b.Height >= rec.Height:
				return true // not covered: the next prune's event will cover it
			}
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

// eachWrittenBefore calls fn, in number order from batch from, for each
// batch written before cut (unix milliseconds), until fn returns false.
func eachWrittenBefore(bb *bolt.Bucket, from uint64, cut int64, fn func(GrantBatch) bool) error {
	c := bb.Cursor()
	for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, from)); k != nil; k, v = c.Next() {
		var b GrantBatch
		if err := wire.Unmarshal(v, &b); err != nil {
			return fmt.Errorf("failed to read grant batch %x: %w", k, err)
		}
		if b.TimeMS >= cut || !fn(b) {
			return nil // batches are numbered in the order they were written
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
