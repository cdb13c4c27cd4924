package ledger

import "fmt"

// grantChain is what a chain's blocks say that session-grant records are
// checked against, read block by block: each device's first join and the
// cluster's session-batch events. A grant is valid only between devices
// that joined in a block before its batch's (CheckGrantRecord with
// JoinedBefore); Replay keeps one for an export, CheckGrants for a ledger.
type grantChain struct {
	cluster string
	joined  map[string]uint64 // device ID → height of its first join
	batches []SessionBatchRef // the cluster's session-batch events, in chain order
}

func newGrantChain(cluster string) *grantChain {
	return &grantChain{cluster: cluster, joined: map[string]uint64{}}
}

// add reads the events of the block at height, the next in chain order.
func (c *grantChain) add(height uint64, events []Event) {
	for _, ev := range events {
		switch {
		case ev.Type == EventJoin:
			if _, ok := c.joined[ev.Device]; !ok {
				c.joined[ev.Device] = height
			}
		case ev.Type == EventSessionBatch && ev.Device == c.cluster:
			c.batches = append(c.batches, SessionBatchRef{Event: ev, Height: height})
		}
	}
}

// SessionBatches returns the cluster's session-batch events read so far,
// in chain order.
func (c *grantChain) SessionBatches() []SessionBatchRef { return c.batches }

// JoinedBefore returns the rule of grants committed at height, as
// CheckGrantRecord takes it: a device ID bound by a join in a block below
// height (a bound ID stays bound whatever follows: leave, revoke). Any
// other ID is an error wrapping ErrUnknownDevice.
func (c *grantChain) JoinedBefore(height uint64) func(id string) error {
	return func(id string) error {
		if h, ok := c.joined[id]; !ok || h >= height {
			return fmt.Errorf("%w: no join before block %d", ErrUnknownDevice, height)
		}
		return nil
	}
}
