package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// request is one Append waiting for its block.
type request struct {
	ev   Event
	done chan result // buffered 1: the committer never blocks on a reply
}

type result struct {
	ref BlockRef
	err error
}

// errNothingValid rolls back a batch in which every event was rejected.
var errNothingValid = errors.New("no valid event in batch")

// Append validates ev against the state machine and, if it is allowed,
// commits it in a block shared with the other events queued at the same time.
// It returns the block's reference once the bbolt transaction holding the
// block, its index changes and the new head has been committed and synced.
// On error nothing of ev is written.
//
// ctx bounds only the wait for the committer to take ev; once taken, Append
// waits for the outcome so that its answer is never "maybe".
func (l *Bolt) Append(ctx context.Context, ev Event) (BlockRef, error) {
	if l.isClosed() {
		return BlockRef{}, fmt.Errorf("failed to append %s event of device %q: %w", ev.Type, ev.Device, ErrClosed)
	}
	if l.signer == nil {
		return BlockRef{}, fmt.Errorf("failed to append %s event: %w", ev.Type, ErrReadOnly)
	}
	if err := ev.validate(); err != nil {
		return BlockRef{}, fmt.Errorf("failed to append %s event: %w", ev.Type, err)
	}
	if err := ctx.Err(); err != nil {
		return BlockRef{}, fmt.Errorf("failed to append %s event of device %q: %w", ev.Type, ev.Device, err)
	}
	req := &request{ev: ev, done: make(chan result, 1)}
	select {
	case l.reqs <- req:
	case <-l.closing:
		return BlockRef{}, fmt.Errorf("failed to append %s event of device %q: %w", ev.Type, ev.Device, ErrClosed)
	case <-ctx.Done():
		return BlockRef{}, fmt.Errorf("failed to append %s event of device %q: %w", ev.Type, ev.Device, ctx.Err())
	}
	r := <-req.done
	return r.ref, r.err
}

// run is the committer: the only goroutine that writes to the file. It takes
// one request, gathers those waiting or about to be, up to maxBatch, and
// commits them as one block. After Close it answers whoever is still
// queued, then stops.
func (l *Bolt) run() {
	defer close(l.done)
	batch := make([]*request, 0, l.maxBatch)
	for {
		select {
		case req := <-l.reqs:
			l.commit(l.gather(append(batch[:0], req)))
		case imp := <-l.imports:
			l.commitImport(imp)
		case <-l.closing:
			for {
				batch = l.drain(batch[:0])
				if len(batch) == 0 {
					return
				}
				l.commit(batch)
			}
		}
	}
}

// gather adds to batch the requests that are waiting, then yields the
// processor so that runnable goroutines — under load, handlers that have
// checked a join and are about to append it — queue theirs, and adds those,
// until a yield brings none or batch holds maxBatch. With nothing runnable a
// yield returns at once, so a lone Append waits no longer. Under 64 joining
// devices a block then holds ~10 joins instead of ~6, and a fifth of the
// blocks one instead of two fifths (docs/PERFORMANCE.md): each block spared
// is a signature, a bbolt transaction and two fdatasyncs.
func (l *Bolt) gather(batch []*request) []*request {
	batch = l.drain(batch)
	for len(batch) < l.maxBatch {
		runtime.Gosched()
		n := len(batch)
		if batch = l.drain(batch); len(batch) == n {
			break
		}
	}
	return batch
}

// drain adds requests that are already waiting to batch, without waiting for
// more, until batch holds maxBatch.
func (l *Bolt) drain(batch []*request) []*request {
	for len(batch) < l.maxBatch {
		select {
		case req := <-l.reqs:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// commit commits batch as blocks: one per run of events, and a rotate
// event alone in its block (its block is the first signed by the new key).
func (l *Bolt) commit(batch []*request) {
	start := 0
	for i, req := range batch {
		if req.ev.Type != EventRotate {
			continue
		}
		if i > start {
			l.commitBlock(batch[start:i])
		}
		l.commitBlock(batch[i : i+1])
		start = i + 1
	}
	if start < len(batch) {
		l.commitBlock(batch[start:])
	}
}

// commitBlock validates the batch in order, writes one block with the valid events
// and replies to every request. Either the block, its index records and the
// new head are all committed, or nothing is and every valid event gets the
// error; rejected events always get their own error.
func (l *Bolt) commitBlock(batch []*request) {
	results := make([]result, len(batch))
	accepted := make([]int, 0, len(batch))
	written, err := l.update(func(c *chainTx) error {
		accepted = accepted[:0]
		events := make([]Event, 0, len(batch))
		for i, req := range batch {
			if err := c.apply(req.ev); err != nil {
				results[i].err = fmt.Errorf("failed to append %s event: %w", req.ev.Type, err)
				continue
			}
			accepted = append(accepted, i)
			events = append(events, req.ev)
		}
		if len(events) == 0 {
			return errNothingValid
		}
		return c.seal(events)
	})
	switch {
	case errors.Is(err, errNothingValid):
	case err != nil:
		for _, i := range accepted {
			results[i].err = fmt.Errorf("failed to append %s event of device %q: failed to commit block %d: %w",
				batch[i].ev.Type, batch[i].ev.Device, l.headRef().Height+1, err)
		}
	default:
		for _, i := range accepted {
			results[i].ref = written[0].ref
		}
	}
	for i, req := range batch {
		req.done <- results[i]
	}
}

// txIndex is the device and enrollment index inside a write transaction,
// with the records changed by earlier events of the same batch layered on top.
type txIndex struct {
	b     *bolt.Bucket
	dirty map[string]Device
	was   map[string]membership.Status // status in the store before this transaction; Unknown: no record

	enr      *bolt.Bucket
	enrDirty map[string]Enrollment
}

func newTxIndex(tx *bolt.Tx) *txIndex {
	return &txIndex{b: tx.Bucket(bucketDevices), dirty: map[string]Device{}, was: map[string]membership.Status{},
		enr: tx.Bucket(bucketEnrollments), enrDirty: map[string]Enrollment{}}
}

func (x *txIndex) enrollment(id string) (Enrollment, bool, error) {
	if e, ok := x.enrDirty[id]; ok {
		return e, true, nil
	}
	return readEnrollment(x.enr, id)
}

func (x *txIndex) enroll(e Enrollment) { x.enrDirty[e.ID] = e }

func (x *txIndex) get(id string) (Device, bool, error) {
	if d, ok := x.dirty[id]; ok {
		return d, true, nil
	}
	v := x.b.Get([]byte(id))
	if v == nil {
		x.was[id] = membership.Unknown
		return Device{}, false, nil
	}
	var d Device
	if err := wire.Unmarshal(v, &d); err != nil {
		return Device{}, false, fmt.Errorf("failed to read device %q: %w", id, err)
	}
	x.was[id] = d.Status
	return d, true, nil
}

// count returns c moved by the status changes of the dirty records. Every
// put follows a get of the same ID (apply), so was knows each one's status
// before the transaction.
func (x *txIndex) count(c Counts) Counts {
	for id, d := range x.dirty {
		c.add(x.was[id], -1)
		c.add(d.Status, 1)
	}
	return c
}

func (x *txIndex) put(d Device) { x.dirty[d.ID] = d }

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
