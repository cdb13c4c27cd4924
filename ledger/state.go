package ledger

import (
	"bytes"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/membership"
)

// index is the device and enrollment index as the state machine sees it:
// the stored records plus the effect of the events applied before, in the
// same block or batch.
type index interface {
	// get returns the record of id and whether there is one.
	get(id string) (Device, bool, error)
	// put replaces the record of d.ID.
	put(d Device)
	// enrollment returns the enrollment of id and whether there is one.
	enrollment(id string) (Enrollment, bool, error)
	// enroll replaces the enrollment of e.ID.
	enroll(e Enrollment)
}

// apply checks ev against the ledger's state machine and, if it is allowed,
// records its effect in idx as of block ref. On error idx is unchanged. The
// committer and Verify both use apply, so what was accepted on the way in is
// exactly what replays on the way out.
//
//   - join: an enrolled ID admits only its enrolled key (ErrConflict) and
//     nothing once its enrollment is removed (ErrEnrollmentRemoved); an
//     enrolled key that replaced the one on record (enroll with Replace)
//     starts a new record. Otherwise: no record → member. Another key →
//     ErrConflict. Revoked → ErrRevoked. A current member (StatusAt the
//     event's time) with the same key and device nonce as its latest join →
//     ErrDuplicate; once that membership has expired, the same nonce is a
//     new join like any other. Signed before the record's latest change
//     (FreshAt below Updated.Height) → ErrStale. Otherwise a rejoin: nonces,
//     expiry, position and Joined are replaced.
//   - leave: must be a current member at the event's time (a *StatusError:
//     ErrNotMember, ErrUnknownDevice).
//   - revoke: must exist and not be revoked (ErrUnknownDevice, ErrRevoked).
//   - session: Device and Peer must both be current members at the event's
//     time (a *StatusError naming the first that is not).
//   - verify-warning: no precondition and no effect on the index.
//   - rotate: no effect on the index; alone in its block (rotation.go).
//   - enroll, unenroll: see applyEnroll and applyUnenroll (ledger/enroll.go).
//   - session-batch: no precondition and no effect on the index. Its grants
//     are not on the ledger: Count and Root commit to them, and CheckGrants
//     checks them against the CH's grant log (grants.go).
//   - grants-pruned: no precondition and no effect on the index: what it
//     allows, the readers of grant records check (grantChain.PrunedBy).
//
// "Current member" is Device.StatusAt, the same rule every reader uses.
func apply(idx index, ev Event, ref BlockRef) error {
	if err := ev.validate(); err != nil {
		return err
	}
	switch ev.Type {
	case EventJoin:
		return applyJoin(idx, ev, ref)
	case EventLeave:
		d, err := current(idx, ev.Device, ev.Time)
		if err != nil {
			return err
		}
		d.Status, d.Updated = membership.Left, ref
		idx.put(d)
	case EventRevoke:
		d, err := known(idx, ev.Device)
		if err != nil {
			return err
		}
		if d.Status == membership.Revoked {
			return fmt.Errorf("device %q: %w", ev.Device, ErrRevoked)
		}
		d.Status, d.Updated = membership.Revoked, ref
		idx.put(d)
	case EventSession:
		if _, err := current(idx, ev.Device, ev.Time); err != nil {
			return err
		}
		if _, err := current(idx, ev.Peer, ev.Time); err != nil {
			return err
		}
	case EventVerifyWarning, EventSessionBatch, EventGrantsPruned:
	case EventRotate:
		// No effect on the index: the chain of CH keys is the signatures'
		// (rotation.go), checked by the committer's signer and by Verify.
	case EventEnroll:
		return applyEnroll(idx, ev, ref)
	case EventUnenroll:
		return applyUnenroll(idx, ev, ref)
	}
	return nil
}

func applyJoin(idx index, ev Event, ref BlockRef) error {
	d, ok, err := idx.get(ev.Device)
	if err != nil {
		return err
	}
	fresh, err := enrolledKey(idx, ev, d, ok)
	if err != nil {
		return err
	}
	if ok && !fresh {
		switch {
		case !bytes.Equal(d.Key, ev.Key):
			return fmt.Errorf("device %q: %w", ev.Device, ErrConflict)
		case d.Status == membership.Revoked:
			return fmt.Errorf("device %q: %w", ev.Device, ErrRevoked)
		case d.StatusAt(time.UnixMilli(ev.Time)) == membership.Member && bytes.Equal(d.DeviceNonce, ev.DeviceNonce):
			// Only a membership still in force is answered again: the
			// answer to a duplicate is that membership, and an expired one
			// would let its device believe it joined. A device that kept
			// its nonce past the expiry (PROTOCOL.md §3.3) joins anew.
			return fmt.Errorf("device %q: %w", ev.Device, ErrDuplicate)
		case ev.FreshAt < d.Updated.Height && ev.FreshAt == 0:
			// Only a join written before joins recorded their freshness
			// (or a forged one) lacks it: no honest rejoin signs an echo
			// made at genesis, before the device's first join.
			return fmt.Errorf("device %q: %w: a rejoin without freshness (a ledger written before joins recorded it must be recreated)", ev.Device, ErrStale)
		case ev.FreshAt < d.Updated.Height:
			return fmt.Errorf("device %q: %w: signed at height %d, before its record changed in block %d", ev.Device, ErrStale, ev.FreshAt, d.Updated.Height)
		}
	}
	idx.put(Device{
		ID:          ev.Device,
		Key:         ev.Key,
		Status:      membership.Member,
		Joined:      ref,
		Updated:     ref,
		DeviceNonce: ev.DeviceNonce,
		CHNonce:     ev.CHNonce,
		Expires:     ev.Expires,
		Lat:         ev.Lat,
		Lon:         ev.Lon,
	})
	return nil
}

// known returns the record of id, or a *StatusError for an unknown ID.
func known(idx index, id string) (Device, error) {
	d, ok, err := idx.get(id)
	if err != nil {
		return Device{}, err
	}
	if !ok {
		return Device{}, &StatusError{ID: id, Status: membership.Unknown}
	}
	return d, nil
}

// current returns the record of id if id is a current member at the event
// time atMS (unix milliseconds), or a *StatusError saying what it is instead.
func current(idx index, id string, atMS int64) (Device, error) {
	d, err := known(idx, id)
	if err != nil {
		return Device{}, err
	}
	if s := d.StatusAt(time.UnixMilli(atMS)); !s.Current() {
		return Device{}, &StatusError{ID: id, Status: s}
	}
	return d, nil
}

// memIndex is an index held in memory: what Verify rebuilds from the chain.
type memIndex struct {
	devices     map[string]Device
	enrollments map[string]Enrollment
}

func newMemIndex() *memIndex {
	return &memIndex{devices: map[string]Device{}, enrollments: map[string]Enrollment{}}
}

func (m *memIndex) get(id string) (Device, bool, error) {
	d, ok := m.devices[id]
	return d, ok, nil
}

func (m *memIndex) put(d Device) { m.devices[d.ID] = d }

func (m *memIndex) enrollment(id string) (Enrollment, bool, error) {
	e, ok := m.enrollments[id]
	return e, ok, nil
}

func (m *memIndex) enroll(e Enrollment) { m.enrollments[e.ID] = e }
