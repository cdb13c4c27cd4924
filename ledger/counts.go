package ledger

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// Counts is how many index records are in each status. The bbolt ledger keeps
// it in meta, rewritten in the transaction of every block (and import), so it
// is exact after any crash and costs O(1) to read: the members gauge of a CH
// with a million members does not walk the index.
type Counts struct {
	Member  int64 `cbor:"1,keyasint"`
	Left    int64 `cbor:"2,keyasint"`
	Revoked int64 `cbor:"3,keyasint"`
}

// keyCounts is the meta key of the Counts. Ledgers written before it existed
// lack it: Open counts their index once and the next commit stores it.
var keyCounts = []byte("counts")

// add moves n records into status s; other values (0: no record) are ignored.
func (c *Counts) add(s membership.Status, n int64) {
	switch s {
	case membership.Member:
		c.Member += n
	case membership.Left:
		c.Left += n
	case membership.Revoked:
		c.Revoked += n
	}
}

// ByStatus returns the counts by stored status (member, left, revoked).
func (c Counts) ByStatus() map[membership.Status]int {
	return map[membership.Status]int{membership.Member: int(c.Member), membership.Left: int(c.Left), membership.Revoked: int(c.Revoked)}
}

// Counts returns how many index records are in each status.
func (l *Bolt) Counts() (Counts, error) {
	if l.isClosed() {
		return Counts{}, fmt.Errorf("failed to count devices: %w", ErrClosed)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.counts, nil
}

// loadCounts reads the stored counts, or counts the index of a ledger that
// has none yet.
func loadCounts(tx *bolt.Tx) (Counts, error) {
	var c Counts
	if v := tx.Bucket(bucketMeta).Get(keyCounts); v != nil {
		if err := wire.Unmarshal(v, &c); err != nil {
			return c, fmt.Errorf("failed to read device counts: %w", err)
		}
		return c, nil
	}
	err := tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
		var d Device
		if err := wire.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("failed to read device %q: %w", k, err)
		}
		c.add(d.Status, 1)
		return nil
	})
	return c, err
}

// storeCounts writes c to meta in tx.
func storeCounts(tx *bolt.Tx, c Counts) error {
	v, err := wire.Marshal(c)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketMeta).Put(keyCounts, v); err != nil {
		return fmt.Errorf("failed to write device counts: %w", err)
	}
	return nil
}
