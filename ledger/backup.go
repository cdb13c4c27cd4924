package ledger

import (
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/wire"
)

// Backup writes a consistent copy of the ledger file to w: the file as of
// one read transaction, so appends go on while it is written and the copy
// holds exactly the blocks committed before it began, with their index. The
// copy is a ledger file itself (Open it, Verify it). begin is called first
// with the copy's size in bytes and its head block, so that an archive can
// write its header; an error from begin stops the backup.
//
// IMPORTANT: like Verify, the read transaction lasts as long as the copy:
// an append that needs the file to grow waits for it, so w must not wait
// for an append.
func (l *Bolt) Backup(w io.Writer, begin func(size int64, head BlockRef) error) error {
	return l.view(func(tx *bolt.Tx) error {
		var h headRecord
		if err := wire.Unmarshal(tx.Bucket(bucketMeta).Get(keyHead), &h); err != nil {
			return fmt.Errorf("failed to back up ledger %s: failed to read head: %w", l.path, err)
		}
		if err := begin(tx.Size(), h.Ref); err != nil {
			return err
		}
		if _, err := tx.WriteTo(w); err != nil {
			return fmt.Errorf("failed to back up ledger %s: %w", l.path, err)
		}
		return nil
	})
}
