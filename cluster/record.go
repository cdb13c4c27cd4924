package cluster

import (
	"context"
	"fmt"

	"github.com/iotguard/iotguard/ledger"
)

// maxPendingRecords bounds the audit records written behind their answers.
// When that many are waiting for the ledger, the next request that makes one
// waits for a place: back-pressure, never a dropped record.
const maxPendingRecords = 1024

// record appends an audit event — a granted session, a warning verdict —
// behind the answer instead of before it. Audit records are not membership:
// no later decision reads them, so the answer need not wait for a durable
// commit, and /verify and /session cost AEAD only (docs/PROTOCOL.md §4.4).
// Membership events (join, leave, revoke) stay durable before their answers.
//
// Invariants: every record queued before Flush is committed or logged as
// failed when Flush returns (the CH flushes before closing its ledger); a
// crash may lose the records of the last group commit, never a membership
// event.
func (c *Core) record(ctx context.Context, ev ledger.Event) error {
	select {
	case c.pending <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("failed to queue %s record of %s: %w", ev.Type, ev.Device, ctx.Err())
	}
	go func() {
		defer func() { <-c.pending }()
		if _, err := c.append(context.Background(), ev); err != nil {
			// A member that left or was revoked while its session was being
			// granted makes the session event invalid; it is logged, not lost silently.
			c.cfg.Logger.Warn("audit record not written", "type", ev.Type.String(), "device", ev.Device, "peer", ev.Peer, "err", err)
		}
	}()
	return nil
}

// Flush waits until every audit record queued before it is committed (or has
// failed), by taking every place of the queue once; records queued meanwhile
// wait for it, and until the session grants granted before it are in the
// grant log and their batches on the ledger.
func (c *Core) Flush() {
	if c.grants != nil {
		c.grants.flush()
	}
	for range cap(c.pending) {
		c.pending <- struct{}{}
	}
	for range cap(c.pending) {
		<-c.pending
	}
}

// Close flushes (see Flush) and stops the session grant batcher; a grant
// after Close fails. The CH calls it after its CoAP server stopped and
// before its ledger and grant log close.
func (c *Core) Close() {
	if c.grants != nil {
		c.grants.close()
	}
	c.Flush()
}
