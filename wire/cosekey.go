package wire

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"

	"github.com/veraison/go-cose"
)

// EncodePublicKey returns pub as a COSE_Key (kty EC2, alg ES256, crv P-256,
// x, y), the form every message and ledger event carries.
func EncodePublicKey(pub *ecdsa.PublicKey) ([]byte, error) {
	k, err := cose.NewKeyFromPublic(pub)
	if err != nil {
		return nil, fmt.Errorf("failed to build COSE_Key: %w", err)
	}
	b, err := k.MarshalCBOR()
	if err != nil {
		return nil, fmt.Errorf("failed to encode COSE_Key: %w", err)
	}
	return b, nil
}

// ParsePublicKey decodes a COSE_Key that must be a P-256 public key (alg ES256
// or absent, no private part) and returns it as a point on the curve.
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	var raw any
	if err := Unmarshal(b, &raw); err != nil { // our limits first, then go-cose's parser
		return nil, err
	}
	var k cose.Key
	if err := k.UnmarshalCBOR(b); err != nil {
		return nil, fmt.Errorf("%w: COSE_Key: %v", ErrMalformed, err)
	}
	if k.Type != cose.KeyTypeEC2 || (k.Algorithm != cose.AlgorithmES256 && k.Algorithm != cose.AlgorithmReserved) {
		return nil, fmt.Errorf("%w: COSE_Key is not an ES256 EC2 key", ErrMalformed)
	}
	crv, x, y, d := k.EC2()
	if crv != cose.CurveP256 || len(x) != 32 || len(y) != 32 || d != nil {
		return nil, fmt.Errorf("%w: COSE_Key is not a P-256 public key", ErrMalformed)
	}
	pub, err := k.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: COSE_Key: %v", ErrMalformed, err)
	}
	ecpub, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: COSE_Key is not ECDSA", ErrMalformed)
	}
	if _, err := ecpub.ECDH(); err != nil { // rejects points not on the curve
		return nil, fmt.Errorf("%w: COSE_Key point: %v", ErrMalformed, err)
	}
	return ecpub, nil
}

// thumbprintKey holds the required parameters of an EC2 key, the input of an
// RFC 9679 thumbprint.
type thumbprintKey struct {
	Kty int    `cbor:"1,keyasint"`
	Crv int    `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

// Thumbprint returns the RFC 9679 COSE Key Thumbprint (SHA-256) of pub.
// pub must be a valid P-256 key (as ParsePublicKey returns).
func Thumbprint(pub *ecdsa.PublicKey) [32]byte {
	point, err := pub.Bytes() // 0x04 ‖ x ‖ y
	if err != nil || len(point) != 65 {
		panic("wire: Thumbprint of an invalid P-256 key")
	}
	b, err := Marshal(thumbprintKey{Kty: 2, Crv: 1, X: point[1:33], Y: point[33:]})
	if err != nil {
		panic(err) // fixed shape: cannot fail
	}
	return sha256.Sum256(b)
}
