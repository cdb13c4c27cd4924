package keysvc

import (
	"crypto/ecdsa"
	"fmt"

	"github.com/veraison/go-cose"

	"github.com/iotguard/iotguard/wire"
)

// Verifier checks ES256 signatures (r ‖ s) under a CH public key alone: an
// auditor's view of the ledger, without the private key. It implements
// ledger.Verifier, as *Service does for the CH itself.
type Verifier struct{ v cose.Verifier }

// NewVerifier returns a Verifier for pub, a P-256 key.
func NewVerifier(pub *ecdsa.PublicKey) (*Verifier, error) {
	v, err := cose.NewVerifier(cose.AlgorithmES256, pub)
	if err != nil {
		return nil, fmt.Errorf("failed to make ES256 verifier: %w", err)
	}
	return &Verifier{v}, nil
}

// Verify returns nil only if sig is a valid signature by the key over msg.
func (k *Verifier) Verify(msg, sig []byte) error {
	if err := k.v.Verify(msg, sig); err != nil {
		return wire.ErrBadSignature
	}
	return nil
}

// Chain checks a ledger signed by a CH key that was rotated, from its keys
// alone: every CH public key as a COSE_Key, oldest first, the key in force
// last. It implements ledger.KeyChain, so that ledger.Replay follows the
// chain's rotations through them (as *Service does for Verify); Verify
// checks under the key in force.
type Chain struct {
	*Verifier
	keys [][]byte
}

// NewChain returns a Chain of keys (COSE_Keys, oldest first, at least one),
// which must all be P-256 keys.
func NewChain(keys [][]byte) (*Chain, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("failed to make CH key chain: no key")
	}
	var last *ecdsa.PublicKey
	for i, k := range keys {
		pub, err := wire.ParsePublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("failed to read CH key %d of %d: %w", i+1, len(keys), err)
		}
		last = pub
	}
	v, err := NewVerifier(last)
	if err != nil {
		return nil, err
	}
	return &Chain{Verifier: v, keys: keys}, nil
}

// Keys returns the chain's keys, oldest first.
func (c *Chain) Keys() [][]byte { return c.keys }
