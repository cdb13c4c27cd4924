package ledger

import (
	"context"
	"fmt"
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
	written, err := l.update(func(c *chainTx) error {
		for start := 0; start < len(req.events); start += l.maxBatch {
			chunk := req.events[start:min(start+l.maxBatch, len(req.events))]
			for i, ev := range chunk {
				if err := c.apply(ev); err != nil {
					return fmt.Errorf("failed to import event %d (%s of device %q): %w", start+i, ev.Type, ev.Device, err)
				}
			}
			if err := c.seal(chunk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		req.done <- result{err: fmt.Errorf("failed to import %d events: %w", len(req.events), err)}
		return
	}
	req.done <- result{ref: written[len(written)-1].ref}
}
