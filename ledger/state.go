package ledger

import (
	"bytes"
	"fmt"
)

// index is the device index as the state machine sees it: the stored records
// plus the effect of the events applied before, in the same block or batch.
type index interface {
	// get returns the record of id and whether there is one.
	get(id string) (Device, bool, error)
	// put replaces the record of d.ID.
	put(d Device)
}

// apply checks ev against the ledger's state machine and, if it is allowed,
// records its effect in idx as of block ref. On error idx is unchanged. The
// committer and Verify both use apply, so what was accepted on the way in is
// exactly what replays on the way out.
//
//   - join: no record → member. Another key → ErrConflict. Revoked →
//     ErrRevoked. Member with the same key and device nonce as its latest join
//     → ErrDuplicate. Otherwise a rejoin: nonces, expiry, position and Joined
//     are replaced.
//   - leave: must be a member (ErrNotMember, ErrUnknownDevice).
//   - revoke: must exist and not be revoked (ErrUnknownDevice, ErrRevoked).
//   - session: Device and Peer must both be members.
//   - verify-warning: no precondition and no effect on the index.
func apply(idx index, ev Event, ref BlockRef) error {
	if err := ev.validate(); err != nil {
		return err
	}
	switch ev.Type {
	case EventJoin:
		return applyJoin(idx, ev, ref)
	case EventLeave:
		d, err := member(idx, ev.Device)
		if err != nil {
			return err
		}
		d.Status, d.Updated = StatusLeft, ref
		idx.put(d)
	case EventRevoke:
		d, err := known(idx, ev.Device)
		if err != nil {
			return err
		}
		if d.Status == StatusRevoked {
			return fmt.Errorf("device %q: %w", ev.Device, ErrRevoked)
		}
		d.Status, d.Updated = StatusRevoked, ref
		idx.put(d)
	case EventSession:
		if _, err := member(idx, ev.Device); err != nil {
			return err
		}
		if _, err := member(idx, ev.Peer); err != nil {
			return err
		}
	case EventVerifyWarning:
	}
	return nil
}

func applyJoin(idx index, ev Event, ref BlockRef) error {
	d, ok, err := idx.get(ev.Device)
	if err != nil {
		return err
	}
	if ok {
		switch {
		case !bytes.Equal(d.Key, ev.Key):
			return fmt.Errorf("device %q: %w", ev.Device, ErrConflict)
		case d.Status == StatusRevoked:
			return fmt.Errorf("device %q: %w", ev.Device, ErrRevoked)
		case d.Status == StatusMember && bytes.Equal(d.DeviceNonce, ev.DeviceNonce):
			return fmt.Errorf("device %q: %w", ev.Device, ErrDuplicate)
		}
	}
	idx.put(Device{
		ID:          ev.Device,
		Key:         ev.Key,
		Status:      StatusMember,
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

// known returns the record of id or ErrUnknownDevice.
func known(idx index, id string) (Device, error) {
	d, ok, err := idx.get(id)
	if err != nil {
		return Device{}, err
	}
	if !ok {
		return Device{}, fmt.Errorf("device %q: %w", id, ErrUnknownDevice)
	}
	return d, nil
}

// member returns the record of id if id is a current member.
func member(idx index, id string) (Device, error) {
	d, err := known(idx, id)
	if err != nil {
		return Device{}, err
	}
	if d.Status != StatusMember {
		return Device{}, fmt.Errorf("device %q is %s: %w", id, d.Status, ErrNotMember)
	}
	return d, nil
}

// memIndex is an index held in memory: what Verify rebuilds from the chain.
type memIndex map[string]Device

func (m memIndex) get(id string) (Device, bool, error) {
	d, ok := m[id]
	return d, ok, nil
}

func (m memIndex) put(d Device) { m[d.ID] = d }
