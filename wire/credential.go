package wire

import (
	"crypto"
	"crypto/ecdsa"
	"fmt"
)

// A fleet credential (docs/PROTOCOL.md §3.5) is an untagged COSE_Sign1 by an
// operator's fleet key over a credential payload: it says that the device ID
// may join with the device key whose thumbprint it names, between two times.
// A device stores it opaque and sends it in its join request (key 8); only
// the CH parses it. It is kept small because it travels in every join.

// AADCredential is the external AAD of a fleet credential's signature.
var AADCredential = []byte("iotguard credential")

// Sizes of a credential.
const (
	// MaxCredentialLen is the longest credential a join may carry, in
	// bytes; the firmware stores at most this many.
	MaxCredentialLen = 256
	// FleetKIDLen is the length of a fleet key's kid: the first bytes of its
	// RFC 9679 thumbprint.
	FleetKIDLen = 8
)

// Credential is the payload of a fleet credential.
type Credential struct {
	ID        string `cbor:"1,keyasint"` // the device ID
	Key       []byte `cbor:"2,keyasint"` // RFC 9679 thumbprint of the device's public key
	NotBefore uint64 `cbor:"3,keyasint"` // unix seconds: valid from
	NotAfter  uint64 `cbor:"4,keyasint"` // unix seconds: valid before
}

// Validate checks the ID, the thumbprint's length and that the validity
// period is not empty. A zero NotBefore is refused, so that every field is
// present in a valid encoding.
func (m *Credential) Validate() error {
	return firstError(CheckID(m.ID),
		require(len(m.Key) == HashLen, "credential key thumbprint must be 32 bytes"),
		require(m.NotBefore > 0, "credential not-before missing"),
		require(m.NotBefore < m.NotAfter, "credential validity period is empty"))
}

// FleetKID returns the kid that names the fleet key pub in the credentials
// it signs.
func FleetKID(pub *ecdsa.PublicKey) []byte {
	t := Thumbprint(pub)
	return t[:FleetKIDLen]
}

// IssueCredential returns c signed by the fleet key (the operator's, never
// the CH's): an untagged COSE_Sign1 with kid FleetKID of its public key.
func IssueCredential(fleet crypto.Signer, c Credential) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("failed to issue credential: %w", err)
	}
	pub, ok := fleet.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("failed to issue credential: fleet key is %T, not P-256", fleet.Public())
	}
	payload, err := Marshal(&c)
	if err != nil {
		return nil, err
	}
	b, err := Sign1(fleet, FleetKID(pub), AADCredential, payload)
	if err != nil {
		return nil, fmt.Errorf("failed to issue credential for %s: %w", c.ID, err)
	}
	if len(b) > MaxCredentialLen {
		return nil, fmt.Errorf("failed to issue credential for %s: %d bytes, at most %d", c.ID, len(b), MaxCredentialLen)
	}
	return b, nil
}

// SignedCredential is a decoded fleet credential whose signature has not
// been verified yet.
type SignedCredential struct {
	KID []byte // names the fleet key: FleetKID
	Credential
	signed *Signed
}

// ParseCredential decodes a fleet credential strictly: at most
// MaxCredentialLen bytes, a COSE_Sign1 as ParseSign1 accepts it with a kid
// of FleetKIDLen bytes, and a valid credential payload. Errors wrap
// ErrMalformed. It does not verify the signature: call Verify with the
// fleet key the kid names.
func ParseCredential(b []byte) (*SignedCredential, error) {
	if len(b) > MaxCredentialLen {
		return nil, fmt.Errorf("%w: credential of %d bytes, at most %d", ErrMalformed, len(b), MaxCredentialLen)
	}
	s, err := ParseSign1(b)
	if err != nil {
		return nil, err
	}
	if len(s.KID) != FleetKIDLen {
		return nil, fmt.Errorf("%w: credential kid must be %d bytes", ErrMalformed, FleetKIDLen)
	}
	c := &SignedCredential{KID: s.KID, signed: s}
	if err := Decode(s.Payload, &c.Credential); err != nil {
		return nil, err
	}
	return c, nil
}

// Verify checks the credential's signature under the fleet key pub
// (ErrBadSignature).
func (c *SignedCredential) Verify(pub *ecdsa.PublicKey) error {
	return c.signed.Verify(pub, AADCredential)
}
