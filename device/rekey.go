package device

import (
	"context"
	"errors"
	"fmt"

	"github.com/iotguard/iotguard/wire"
)

// Rekey moves the device's membership to the CH key in force after a
// rotation (docs/PROTOCOL.md §6.2): it reads GET /cluster, accepts the new
// key only if rotations signed by the key it joined under lead to it, and
// derives its member key again with the new key and the same join nonces.
// No ledger event is written; the CH tries the new member key when the old
// one fails, and once a protected request or talk proof opens under it,
// refuses the old one. Then, unless the device was made WithoutLogCheck, it
// proves its join in the log again (as Join does, checkJoin), so that the
// checkpoint it keeps is signed by the new key and the next rotation is
// followed from there. It returns whether the key changed (false: the
// device is already keyed to the key in force); an error of that check
// comes with true, the re-key being done and saved.
func (d *Device) Rekey(ctx context.Context) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, pub, _, err := d.clusterInfo(ctx)
	if err != nil {
		return false, err
	}
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
	oldThumb, th := wire.Thumbprint(old), wire.Thumbprint(pub)
	if _, err := acceptKey(oldThumb[:], false, info, th); err != nil {
		return false, err
	}
	changed := false
	err = d.update(func() error { // keeping what other processes of the device saved (their sequence numbers)
		d.st.Membership.CHKey, d.keys = append([]byte{}, info.Key...), nil
		d.st.Trusted = th[:] // the trusted key followed the rotation
		changed = true
		return nil
	})
	if err != nil {
		return changed, err
	}
	if d.pin != nil { // and so did the pin
		d.pin = th[:]
	}
	if d.noLogCheck || d.st.Checkpoint == nil {
		return true, nil
	}
	if _, err := d.checkJoin(ctx, info); err != nil && !errors.Is(err, ErrNoLog) {
		return true, err
	}
	return true, nil
}
