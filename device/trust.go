package device

import (
	"bytes"
	"crypto/ecdsa"

	"github.com/iotguard/iotguard/wire"
)

// Trust on first use means first (docs/SECURITY.md, PROTOCOL.md §3.3, §6.1):
// a device keeps the thumbprint of the CH key of its first join in its
// state, through leaves and rejoins, and from then on accepts a /cluster
// answer only under that key or under a key that rotations signed by it lead
// to (then it trusts the new key). Anything else is refused
// (*UntrustedCHError) before the device signs anything for that CH. A CH key
// replaced without a rotation takes the operator's explicit re-pin
// (WithRepin), after checking the new thumbprint out of band.

// TrustedCH returns the RFC 9679 thumbprint of the CH key st trusts: the one
// kept from its first join, a rotation or a re-pin, or, for a state file
// written before devices kept it, the key of its membership. nil before the
// first join: the next join trusts the key it meets (or the WithPin one).
func (st *State) TrustedCH() []byte {
	if st.Trusted != nil {
		return st.Trusted
	}
	if m := st.Membership; m != nil {
		if pub, err := wire.ParsePublicKey(m.CHKey); err == nil {
			t := wire.Thumbprint(pub)
			return t[:]
		}
	}
	return nil
}

// checkCH refuses the CH key of thumbprint thumb, offered by the /cluster
// answer info, unless the device may use it: with a re-pin, only the
// re-pin's key; otherwise the key it trusts already (if any) and the WithPin
// key (if any), or a key their rotations lead to. A pin that disagrees with
// the trusted key therefore accepts no CH: the operator re-pins instead.
// Must be called with d.mu held.
func (d *Device) checkCH(info *wire.ClusterInfo, thumb [32]byte) error {
	if d.repin != nil {
		if !bytes.Equal(d.repin, thumb[:]) {
			return &UntrustedCHError{Got: thumb[:], Trusted: d.repin, Pinned: true}
		}
		return nil
	}
	if t := d.st.TrustedCH(); t != nil {
		if _, err := acceptKey(t, false, info, thumb); err != nil {
			return err
		}
	}
	return pinned(d.pin)(info, thumb)
}

// pinned returns the check of a key against pin (any key if pin is nil):
// that key, or one its rotations lead to.
func pinned(pin []byte) func(*wire.ClusterInfo, [32]byte) error {
	return func(info *wire.ClusterInfo, thumb [32]byte) error {
		if pin == nil {
			return nil
		}
		_, err := acceptKey(pin, true, info, thumb)
		return err
	}
}

// acceptKey decides whether the CH key info.Key (of thumbprint thumb),
// offered by a /cluster answer info, may be used by a device that trusts the
// key with thumbprint trusted (pinned: configured, not kept from a join): it
// is that key, or the rotations info carries lead to it from that key, each
// signed by the key before it (docs/PROTOCOL.md §6.1). A device never
// accepts another key otherwise (*UntrustedCHError). Through rotations, it
// returns the trusted key as they carry it; nil when thumb is trusted.
func acceptKey(trusted []byte, pinned bool, info *wire.ClusterInfo, thumb [32]byte) (*ecdsa.PublicKey, error) {
	if bytes.Equal(trusted, thumb[:]) {
		return nil, nil
	}
	refused := &UntrustedCHError{Got: thumb[:], Trusted: trusted, Pinned: pinned}
	if len(info.Rotations) == 0 {
		return nil, refused
	}
	want, err := wire.ParsePublicKey(info.Key)
	var from *ecdsa.PublicKey
	if err == nil {
		from, err = wire.FollowRotations(trusted, info.Rotations, info.Cluster, want)
	}
	if err != nil {
		refused.Chain = err
		return nil, refused
	}
	return from, nil
}
