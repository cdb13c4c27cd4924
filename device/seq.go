package device

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
)

// reserveSeq consumes and returns the next protected-request sequence number.
// Must be called with d.mu held.
//
// IMPORTANT: seq is the AES-GCM nonce under the request key, so it must never
// repeat for one K_m, even when several processes use the same device file
// (a 'device listen' and an operator's 'device verify'). With a state file,
// the number is drawn under an exclusive lock on path+".lock" from the larger
// of this process's and the file's counter, and saved before it is used.
func (d *Device) reserveSeq() (uint64, error) {
	if d.path == "" {
		seq := d.st.Seq
		d.st.Seq++
		return seq, nil
	}
	lock, err := os.OpenFile(d.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return 0, fmt.Errorf("failed to open lock of device file: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("failed to lock device file: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	onDisk, err := LoadState(d.path)
	if err != nil {
		return 0, err
	}
	mine, theirs := d.st.Membership, onDisk.Membership
	if mine == nil || theirs == nil || !bytes.Equal(mine.DeviceNonce, theirs.DeviceNonce) {
		return 0, fmt.Errorf("device file %s was changed by another process (left or rejoined): start again", d.path)
	}
	seq := max(d.st.Seq, onDisk.Seq)
	d.st.Seq = seq + 1
	if err := d.save(); err != nil { // before sending: a crash must not reuse seq
		return 0, err
	}
	return seq, nil
}
