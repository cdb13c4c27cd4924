package device

import (
	"context"
	"fmt"

	"github.com/iotguard/iotguard/wire"
)

// acceptKey decides whether the CH key pub, offered by a /cluster answer
// info, may be used by a device that trusts the key with thumbprint trusted:
// it is that key, or the rotations info carries lead to it from that key,
// each signed by the key before it (docs/PROTOCOL.md §6.1). A device never
// accepts another key otherwise.
func acceptKey(trusted []byte, info *wire.ClusterInfo, pub []byte, thumb [32]byte) error {
	if string(trusted) == string(thumb[:]) {
		return nil
	}
	want, err := wire.ParsePublicKey(pub)
	if err != nil {
		return err
	}
	if err := wire.FollowRotations(trusted, info.Rotations, info.Cluster, want); err != nil {
		return fmt.Errorf("%w: CH key thumbprint %x is not the pinned %x, and no rotation signed by the pinned key leads to it (%v)", ErrBadResponse, thumb, trusted, err)
	}
	return nil
}

// Rekey moves the device's membership to the CH key in force after a
// rotation (docs/PROTOCOL.md §6.2): it reads GET /cluster, accepts the new
// key only if rotations signed by the key it joined under lead to it, and
// derives its member key again with the new key and the same join nonces.
// No ledger event is written; the CH accepts the new member key on the next
// protected request and then refuses the old one. It returns whether the
// key changed (false: the device is already keyed to the key in force).
func (d *Device) Rekey(ctx context.Context) (bool, error) {
	info, pub, _, err := d.clusterInfo(ctx)
	if err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.st.Membership
	if m == nil {
		return false, ErrNotJoined
	}
	if m.Cluster != info.Cluster {
		return false, fmt.Errorf("%w: /cluster is cluster %s, the device joined %s", ErrBadResponse, info.Cluster, m.Cluster)
	}
	old, err := wire.ParsePublicKey(m.CHKey)
	if err != nil {
		return false, fmt.Errorf("failed to use stored CH key: %w", err)
	}
	if old.Equal(pub) {
		return false, nil
	}
	oldThumb := wire.Thumbprint(old)
	if err := acceptKey(oldThumb[:], info, info.Key, wire.Thumbprint(pub)); err != nil {
		return false, err
	}
	m.CHKey, d.keys = append([]byte{}, info.Key...), nil
	if d.pin != nil { // the pin followed the rotation
		th := wire.Thumbprint(pub)
		d.pin = th[:]
	}
	return true, d.save()
}
