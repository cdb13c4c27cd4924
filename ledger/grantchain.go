package ledger

import (
	"fmt"
	"math"
	"time"
)

// GrantSlack is how far from an audit record's time a device's membership
// may be seen by the record's checks (GrantRule). An event's time is set by
// the CH that makes it, before its block commits: a CH may grant in the
// moment between a revoke's time and its commit, and on a shared ledger the
// CHs' clocks differ. So a record is valid when its devices were current
// members at some moment within GrantSlack of its time.
const GrantSlack = 5 * time.Second

// grantChain is what a chain's blocks say that the audit records of the
// grant log are checked against, read block by block: each device's first
// join and its membership over time, and the cluster's session-batch and
// grants-pruned events. Replay keeps one for an export, CheckGrants for a
// ledger.
type grantChain struct {
	cluster string
	devices map[string]*membershipSpans
	batches []SessionBatchRef // the cluster's session-batch events, in chain order
	prunes  []pruneRef        // the cluster's grants-pruned events, in chain order
}

// pruneRef is a grants-pruned event: at height, the records of the batches
// below horizon committed in lower blocks became the CH's to delete.
type pruneRef struct{ height, horizon uint64 }

// membershipSpans is a device's membership by event time: the spans in
// which it was a current member, a rejoin before the expiry extending the
// span it continues. Most devices have one span whatever their number of
// rejoins; only a leave, a revoke or a lapse starts another.
type membershipSpans struct {
	joined uint64 // height of its first join
	spans  []span
}

// span is [from, to) in unix milliseconds; to is math.MaxInt64 without
// expiry.
type span struct{ from, to int64 }

func newGrantChain(cluster string) *grantChain {
	return &grantChain{cluster: cluster, devices: map[string]*membershipSpans{}}
}

// add reads the events of the block at height, the next in chain order;
// they passed the state machine (Replay, or the ledger's own commit).
func (c *grantChain) add(height uint64, events []Event) {
	for _, ev := range events {
		switch ev.Type {
		case EventJoin:
			to := int64(math.MaxInt64)
			if ev.Expires != 0 {
				to = ev.Expires * 1000
			}
			m := c.devices[ev.Device]
			if m == nil {
				c.devices[ev.Device] = &membershipSpans{joined: height, spans: []span{{ev.Time, to}}}
				continue
			}
			if last := &m.spans[len(m.spans)-1]; last.to > ev.Time {
				last.to = to // a rejoin of a current member replaces its expiry
			} else {
				m.spans = append(m.spans, span{ev.Time, to})
			}
		case EventLeave, EventRevoke, EventUnenroll: // an unenroll revokes the device bound to the ID
			if m := c.devices[ev.Device]; m != nil {
				if last := &m.spans[len(m.spans)-1]; last.to > ev.Time {
					last.to = max(last.from, ev.Time)
				}
			}
		case EventSessionBatch:
			if ev.Device == c.cluster {
				c.batches = append(c.batches, SessionBatchRef{Event: ev, Height: height})
			}
		case EventGrantsPruned:
			if ev.Device == c.cluster {
				c.prunes = append(c.prunes, pruneRef{height: height, horizon: ev.Batch})
			}
		}
	}
}

// SessionBatches returns the cluster's session-batch events read so far,
// in chain order.
func (c *grantChain) SessionBatches() []SessionBatchRef { return c.batches }

// PrunedBy returns the height of the first grants-pruned event of the
// cluster read so far that covers batch seq, whose session-batch event is in
// block height: a prune in a later block whose horizon is above seq. A batch
// without records that no prune covers was withheld (or, in an export, not
// yet marked committed in the grant log it was read from). A prune never
// covers a batch committed after it, so a prune cannot excuse the records
// of batches to come.
func (c *grantChain) PrunedBy(seq, height uint64) (uint64, bool) {
	for _, p := range c.prunes {
		if p.height > height && p.horizon > seq {
			return p.height, true
		}
	}
	return 0, false
}

// GrantRule returns the rule of the records of a batch committed at height
// whose session-batch event has time batchMS, as CheckGrantRecord takes it:
// a record's time is no later than its batch's (within GrantSlack), and a
// device it names (both of a session, a warning's asker) joined in a block
// below height and was a current member at some moment within GrantSlack
// of the record's time. Any other ID is an error wrapping ErrUnknownDevice
// or ErrNotMember.
func (c *grantChain) GrantRule(height uint64, batchMS int64) GrantRule {
	slack := GrantSlack.Milliseconds()
	return func(id string, atMS int64) error {
		if atMS > batchMS+slack {
			return fmt.Errorf("%w: recorded at %s, after its batch (%s)", ErrInvalidEvent, time.UnixMilli(atMS).UTC(), time.UnixMilli(batchMS).UTC())
		}
		m := c.devices[id]
		if m == nil || m.joined >= height {
			return fmt.Errorf("%w: no join before block %d", ErrUnknownDevice, height)
		}
		for _, s := range m.spans {
			if s.from <= atMS+slack && s.to > atMS-slack {
				return nil
			}
		}
		return fmt.Errorf("%w: not a current member within %s of %s", ErrNotMember, GrantSlack, time.UnixMilli(atMS).UTC())
	}
}
