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
// (a 'device listen' and an operator's 'device verify'): update draws it
// from the larger of this process's and the file's counter, and saves it
// before it is used.
func (d *Device) reserveSeq() (uint64, error) {
	var seq uint64
	err := d.update(func() error {
		seq = d.st.Seq
		d.st.Seq++
		return nil
	})
	return seq, err
}

// update applies change to d.st and saves it. With a state file, it does so
// under an exclusive lock on path+".lock", starting from the file: it holds
// the latest save of every process of this device (each made here), e.g. a
// re-key, which this process then follows; only the larger sequence number
// and the tickets either side used are merged, so that a save never moves
// either back. A file whose membership is not this process's is an error:
// another process left or rejoined. Nothing is saved if change fails. A join's
// answer, which replaces the membership, is saved by saveJoin instead.
// Must be called with d.mu held.
func (d *Device) update(change func() error) error {
	if d.path == "" {
		return change()
	}
	return d.locked(func(onDisk *State) error {
		mine, theirs := d.st.Membership, onDisk.Membership
		if (mine == nil) != (theirs == nil) || mine != nil && !bytes.Equal(mine.DeviceNonce, theirs.DeviceNonce) {
			return fmt.Errorf("device file %s was changed by another process (left or rejoined): start again", d.path)
		}
		onDisk.Seq = max(d.st.Seq, onDisk.Seq)
		onDisk.SpentTickets.merge(&d.st.SpentTickets, d.now())
		if mine != nil && !bytes.Equal(mine.CHKey, theirs.CHKey) {
			d.keys = nil // another process re-keyed: derive the member keys again
		}
		// Every field but the device's identity (ID, Key), which no process
		// changes and which is read without d.mu (Listener.talk, Hello).
		d.st.Membership, d.st.Seq, d.st.Credential, d.st.Trusted = onDisk.Membership, onDisk.Seq, onDisk.Credential, onDisk.Trusted
		d.st.Checkpoint, d.st.PendingJoin, d.st.SpentTickets = onDisk.Checkpoint, onDisk.PendingJoin, onDisk.SpentTickets
		if err := change(); err != nil {
			return err
		}
		return d.save() // before the number or the ticket is used: a crash must not use it twice
	})
}

// locked calls fn with the state file as it is, under an exclusive lock on
// path+".lock" that every process of this device takes before it saves.
// Must be called with d.mu held, and with a state file.
func (d *Device) locked(fn func(onDisk *State) error) error {
	lock, err := os.OpenFile(d.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("failed to open lock of device file: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("failed to lock device file: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	onDisk, err := LoadState(d.path)
	if err != nil {
		return err
	}
	return fn(onDisk)
}
