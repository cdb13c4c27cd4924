package wire

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"fmt"

	"github.com/veraison/go-cose"
)

// External AADs that bind each signed message type (docs/PROTOCOL.md). They
// keep a signature made for one kind of message from verifying as another.
var (
	AADJoinRequest  = []byte("iotguard join-req")
	AADJoinResponse = []byte("iotguard join-resp")
	AADCluster      = []byte("iotguard cluster")
	AADHead         = []byte("iotguard head")
	AADRotation     = []byte("iotguard rotate")
)

// VerifyES256 checks an ES256 signature (r ‖ s) over msg under pub; it is
// how ledger block signatures are checked.
func VerifyES256(pub *ecdsa.PublicKey, msg, sig []byte) error {
	v, err := cose.NewVerifier(cose.AlgorithmES256, pub)
	if err != nil {
		return fmt.Errorf("failed to make ES256 verifier: %w", err)
	}
	if err := v.Verify(msg, sig); err != nil {
		return ErrBadSignature
	}
	return nil
}

// Sign1 returns an untagged COSE_Sign1 over payload, signed ES256 by key,
// with kid in the unprotected header and aad as external AAD.
func Sign1(key crypto.Signer, kid, aad, payload []byte) ([]byte, error) {
	signer, err := cose.NewSigner(cose.AlgorithmES256, key)
	if err != nil {
		return nil, fmt.Errorf("failed to make ES256 signer: %w", err)
	}
	msg := cose.UntaggedSign1Message{
		Headers: cose.Headers{
			Protected:   cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256},
			Unprotected: cose.UnprotectedHeader{cose.HeaderLabelKeyID: kid},
		},
		Payload: payload,
	}
	if err := msg.Sign(rand.Reader, aad, signer); err != nil {
		return nil, fmt.Errorf("failed to sign COSE_Sign1: %w", err)
	}
	return msg.MarshalCBOR()
}

// Signed is a decoded, not yet verified, COSE_Sign1.
type Signed struct {
	KID     []byte
	Payload []byte
	msg     cose.UntaggedSign1Message
}

// ParseSign1 decodes an untagged COSE_Sign1 whose protected header is exactly
// alg ES256 and whose unprotected header holds nothing but a kid (bstr), if
// that. It does not verify the signature: call Verify.
func ParseSign1(b []byte) (*Signed, error) {
	// Our limits first (nesting, sizes, no indefinite lengths, no tags),
	// checked without decoding; go-cose's own decoder then refuses
	// duplicate map keys and invalid UTF-8.
	if err := decMode.Wellformed(b); err != nil {
		return nil, fmt.Errorf("%w: COSE_Sign1: %v", ErrMalformed, err)
	}
	var s Signed
	if err := s.msg.UnmarshalCBOR(b); err != nil {
		return nil, fmt.Errorf("%w: COSE_Sign1: %v", ErrMalformed, err)
	}
	alg, err := s.msg.Headers.Protected.Algorithm()
	if err != nil || alg != cose.AlgorithmES256 || len(s.msg.Headers.Protected) != 1 {
		return nil, fmt.Errorf("%w: COSE_Sign1 protected header must be exactly alg ES256", ErrMalformed)
	}
	if s.msg.Payload == nil {
		return nil, fmt.Errorf("%w: COSE_Sign1 without payload", ErrMalformed)
	}
	// The unprotected header is not signed: anything in it beyond the kid
	// could be added by anyone on the path (and joins are kept as evidence).
	for label, v := range s.msg.Headers.Unprotected {
		kid, ok := v.([]byte)
		if label != cose.HeaderLabelKeyID || !ok {
			return nil, fmt.Errorf("%w: COSE_Sign1 unprotected header must be at most {4: kid}", ErrMalformed)
		}
		s.KID = kid
	}
	s.Payload = s.msg.Payload
	return &s, nil
}

// sign1Fields is a COSE_Sign1 as Sign1Fields reads it: the protected header
// and the signature left as bytes, the unprotected header at most a kid.
type sign1Fields struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected struct {
		KID []byte `cbor:"4,keyasint,omitempty"`
	}
	Payload   []byte
	Signature []byte
}

// Sign1Fields returns the kid and the payload of the untagged COSE_Sign1 b
// under the codec's limits, without decoding its protected header or
// checking its signature: what a check of b's content needs (the ledger's
// shape check of join evidence, made on every append), at a fraction of
// ParseSign1's cost. Whoever must trust b calls ParseSign1 and Verify.
func Sign1Fields(b []byte) (kid, payload []byte, err error) {
	var m sign1Fields
	if err := Unmarshal(b, &m); err != nil {
		return nil, nil, err
	}
	if m.Payload == nil {
		return nil, nil, fmt.Errorf("%w: COSE_Sign1 without payload", ErrMalformed)
	}
	return m.Unprotected.KID, m.Payload, nil
}

// Verify checks the signature under pub with aad as external AAD.
func (s *Signed) Verify(pub *ecdsa.PublicKey, aad []byte) error {
	v, err := cose.NewVerifier(cose.AlgorithmES256, pub)
	if err != nil {
		return fmt.Errorf("failed to make ES256 verifier: %w", err)
	}
	if err := s.msg.Verify(aad, v); err != nil {
		return ErrBadSignature
	}
	return nil
}
