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
