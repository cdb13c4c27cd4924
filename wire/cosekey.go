package wire

import (
	"crypto/ecdsa"
	"crypto/elliptic"
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

// coseKey is the only COSE_Key shape we accept (docs/PROTOCOL.md §1).
// Decoding it with our strict codec rejects other labels, duplicate labels
// and wrongly typed values before any value is used.
type coseKey struct {
	Kty int64  `cbor:"1,keyasint"`
	Alg *int64 `cbor:"3,keyasint,omitempty"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

// ParsePublicKey decodes a COSE_Key that must be a P-256 public key (alg ES256
// or absent, no other label) and returns it as a point on the curve.
//
// IMPORTANT: it does not use go-cose's Key decoder, which panics on a curve
// label of the wrong CBOR type (found by FuzzParsePublicKey).
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	var k coseKey
	if err := Unmarshal(b, &k); err != nil {
		return nil, err
	}
	if k.Kty != 2 || k.Crv != 1 || (k.Alg != nil && *k.Alg != int64(cose.AlgorithmES256)) {
		return nil, fmt.Errorf("%w: COSE_Key is not an ES256 P-256 EC2 key", ErrMalformed)
	}
	if len(k.X) != 32 || len(k.Y) != 32 {
		return nil, fmt.Errorf("%w: COSE_Key coordinates must be 32 bytes", ErrMalformed)
	}
	point := append(append([]byte{4}, k.X...), k.Y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point) // rejects points off the curve
	if err != nil {
		return nil, fmt.Errorf("%w: COSE_Key point: %v", ErrMalformed, err)
	}
	return pub, nil
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
