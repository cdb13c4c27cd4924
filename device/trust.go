package device

import (
	"bytes"

	"github.com/iotguard/iotguard/wire"
)

// Trust on first use means first (docs/SECURITY.md): a device keeps the
// thumbprint of the CH key of its first join in its state, through leaves
// and rejoins, and from then on refuses every /cluster or /join answer under
// another key (*UntrustedCHError) before it signs anything for that CH. The
// only way to another key is the operator's explicit re-pin (WithRepin),
// after checking the new thumbprint out of band; a key rotation signed by the
// old key, once the protocol has one, will be the other.

// TrustedCH returns the RFC 9679 thumbprint of the CH key st trusts: the one
// kept from its first join or set by a re-pin, or, for a state file written
// before devices kept it, the key of its membership. nil before the first
// join: the next join trusts the key it meets (or the WithPin one).
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

// checkCH refuses a CH whose key has thumbprint thumb unless the device may
// trust it: with a re-pin, only the re-pin's key; otherwise the key it trusts
// already (if any) and the WithPin key (if any). A pin that disagrees with
// the trusted key therefore accepts no CH: the operator re-pins instead.
// Must be called with d.mu held.
func (d *Device) checkCH(thumb [32]byte) error {
	refuse := func(want []byte, pinned bool) error {
		return &UntrustedCHError{Got: thumb[:], Trusted: want, Pinned: pinned}
	}
	if d.repin != nil {
		if !bytes.Equal(d.repin, thumb[:]) {
			return refuse(d.repin, true)
		}
		return nil
	}
	if t := d.st.TrustedCH(); t != nil && !bytes.Equal(t, thumb[:]) {
		return refuse(t, false)
	}
	if d.pin != nil && !bytes.Equal(d.pin, thumb[:]) {
		return refuse(d.pin, true)
	}
	return nil
}
