package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/wire"
)

// View runs fn in a read transaction (bolt.DB.View, or Bolt's closed-aware view).
type View func(fn func(*bolt.Tx) error) error

// ReadBlocks calls fn for every block in the "blocks" bucket of a bbolt store
// laid out like Bolt's (8-byte big-endian height keys), from height from
// upwards. It reads readChunk blocks per transaction and calls fn outside
// any transaction, so fn may write to the store.
func ReadBlocks(view View, from uint64, fn func(Block) error) error {
	next := from
	for {
		var chunk []Block
		err := view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketBlocks).Cursor()
			for k, v := c.Seek(heightKey(next)); k != nil && len(chunk) < readChunk; k, v = c.Next() {
				if len(k) != 8 {
					return fmt.Errorf("failed to read block after %d: malformed key %x", next, k)
				}
				h := binary.BigEndian.Uint64(k)
				b, err := DecodeBlock(v)
				if err != nil {
					return fmt.Errorf("failed to read block %d: %w", h, err)
				}
				chunk = append(chunk, b)
				next = h + 1
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, b := range chunk {
			if err := fn(b); err != nil {
				return err
			}
		}
		if len(chunk) < readChunk || next == 0 {
			return nil
		}
	}
}

// ReadDevices calls fn for every record of the "devices" bucket in ID order,
// readChunk records per read transaction, fn outside any transaction: records
// changed meanwhile are seen as of when their chunk was read.
func ReadDevices(view View, fn func(Device) error) error {
	return readRecords(view, bucketDevices, "device", fn)
}

// readRecords calls fn for every record of bucket in key order, readChunk
// records per read transaction, fn outside any transaction. A store without
// the bucket has none.
func readRecords[R any](view View, bucket []byte, what string, fn func(R) error) error {
	var after []byte
	for {
		var chunk []R
		err := view(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(chunk) < readChunk; k, v = c.Next() {
				var r R
				if err := wire.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("failed to read %s %q: %w", what, k, err)
				}
				chunk = append(chunk, r)
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range chunk {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(chunk) < readChunk {
			return nil
		}
	}
}
