package ledger

import (
	"crypto/ecdsa"
	"fmt"
	"strings"

	"github.com/iotguard/iotguard/wire"
)

// A rotate event records that the CH key changed (docs/PROTOCOL.md §6.1).
// Its Request is the rotation, a COSE_Sign1 by the old key naming the old and
// the new key. The chain of keys is:
//
//   - a rotate event is the only event of its block;
//   - that block, and every block after it up to the next rotation, is
//     signed by the new key (so the new key proved possession); the blocks
//     before it by the old one;
//   - the rotation is signed by the key in force before it.
//
// The committer keeps it (a [KeyRotator] signer); Verify checks it against
// the keys of a [KeyChain] verifier, oldest first.

// KeyRotator is a Signer whose key can be rotated. The committer signs a
// rotate event's block with SignWith(the new key) and, once that block is
// durable, calls Rotated so that every later block is signed by the new key.
type KeyRotator interface {
	Signer
	// SignWith signs msg with the private key of the public key newKey (a
	// COSE_Key) that a rotation being committed installs.
	SignWith(newKey, msg []byte) ([]byte, error)
	// Rotated makes newKey the signing key. It is called by the committer
	// after the rotation's block committed, before the next block.
	Rotated(newKey []byte)
}

// KeyChain is a Verifier that knows every key the CH has signed the ledger
// with, as COSE_Keys, oldest first: Verify checks that the ledger's
// rotations lead from the first to the last, and each block's signature
// under the key in force at its height.
type KeyChain interface {
	Verifier
	Keys() [][]byte
}

// Pinned checks that one of keys, a chain of CH keys as a KeyChain holds
// them, has the thumbprint pin: whoever pinned a key of the chain accepts
// the keys its signed rotations lead to (Verify, and an export's replay,
// check that they do).
func Pinned(keys [][]byte, pin [32]byte) error {
	for _, k := range keys {
		if pub, err := wire.ParsePublicKey(k); err == nil && wire.Thumbprint(pub) == pin {
			return nil
		}
	}
	if len(keys) == 1 {
		return fmt.Errorf("signed by %s, not the pinned %x", Signers(keys), pin)
	}
	return fmt.Errorf("signed by %s, none the pinned %x", Signers(keys), pin)
}

// Signers names a chain of CH keys by their thumbprints, the key in force
// first: "key T", or "key T, rotated from A, B" (oldest first).
func Signers(keys [][]byte) string {
	thumbs := make([]string, len(keys))
	for i, k := range keys {
		pub, err := wire.ParsePublicKey(k)
		if err != nil {
			thumbs[i] = "(unreadable)"
			continue
		}
		thumbs[i] = fmt.Sprintf("%x", wire.Thumbprint(pub))
	}
	if len(thumbs) == 0 {
		return "no key"
	}
	s := "key " + thumbs[len(thumbs)-1]
	if len(thumbs) > 1 {
		s += ", rotated from " + strings.Join(thumbs[:len(thumbs)-1], ", ")
	}
	return s
}

// rotationOf decodes the rotation a rotate event carries, without
// checking its signature.
func rotationOf(ev Event) (*wire.Rotation, error) {
	signed, err := wire.ParseSign1(ev.Request)
	if err != nil {
		return nil, fmt.Errorf("%w: rotate event: rotation is not a COSE_Sign1", ErrInvalidEvent)
	}
	var r wire.Rotation
	if err := wire.Decode(signed.Payload, &r); err != nil {
		return nil, fmt.Errorf("%w: rotate event: not a rotation", ErrInvalidEvent)
	}
	return &r, nil
}

// rotatedTo returns the new key of events if they are one rotate event.
func rotatedTo(events []Event) ([]byte, error) {
	if len(events) != 1 || events[0].Type != EventRotate {
		return nil, nil
	}
	r, err := rotationOf(events[0])
	if err != nil {
		return nil, err
	}
	return r.New, nil
}

// keyChain follows the chain of keys through Verify (or a Replay).
type keyChain struct {
	keys [][]byte // the verifier's keys, oldest first
	of   string   // where they come from, for errors: "the data directory"
	at   int      // index of the key in force
	cur  *ecdsa.PublicKey
}

func newKeyChain(keys [][]byte, of string) (*keyChain, error) {
	pub, err := wire.ParsePublicKey(keys[0])
	if err != nil {
		return nil, fmt.Errorf("failed to verify ledger: first CH key: %w", err)
	}
	return &keyChain{keys: keys, of: of, cur: pub}, nil
}

// block checks the signature of a block holding events, following a
// rotation if the block holds one.
func (k *keyChain) block(cluster string, events []Event, hb, sig []byte) error {
	signer := k.cur
	for i, ev := range events {
		if ev.Type != EventRotate {
			continue
		}
		if len(events) != 1 {
			return fmt.Errorf("event %d: rotate event shares its block", i)
		}
		if ev.Device != cluster {
			return fmt.Errorf("rotate event of %q, not of the cluster %q", ev.Device, cluster)
		}
		_, old, new, err := wire.VerifyRotation(ev.Request, cluster)
		if err != nil {
			return fmt.Errorf("rotation: %v", err)
		}
		if !old.Equal(k.cur) {
			return fmt.Errorf("rotation from a key that is not the key in force")
		}
		if k.at+1 >= len(k.keys) {
			return fmt.Errorf("rotation to a key %s does not hold", k.of)
		}
		next, err := wire.ParsePublicKey(k.keys[k.at+1])
		if err != nil || !next.Equal(new) {
			return fmt.Errorf("rotation to another key than the next key of %s", k.of)
		}
		signer = new
	}
	if err := wire.VerifyES256(signer, hb, sig); err != nil {
		return fmt.Errorf("%v: not by CH key %x, in force at this height", err, wire.Thumbprint(signer))
	}
	if signer != k.cur {
		k.cur, k.at = signer, k.at+1
	}
	return nil
}

// end checks that the chain ended at the newest key.
func (k *keyChain) end() error {
	if k.at != len(k.keys)-1 {
		return fmt.Errorf("failed to verify ledger: its rotations reach CH key %d of %d in %s: %w", k.at+1, len(k.keys), k.of, ErrWrongKey)
	}
	return nil
}
