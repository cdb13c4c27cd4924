package wire

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
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
// with kid in the unprotected header and aad as external AAD. go-cose makes
// the signature; the codec encodes the message, in sign1's one shape.
func Sign1(key crypto.Signer, kid, aad, payload []byte) ([]byte, error) {
	signer, err := cose.NewSigner(cose.AlgorithmES256, key)
	if err != nil {
		return nil, fmt.Errorf("failed to make ES256 signer: %w", err)
	}
	msg := cose.UntaggedSign1Message{
		Headers: cose.Headers{RawProtected: es256ProtectedRaw, Protected: es256Protected},
		Payload: payload,
	}
	if err := msg.Sign(rand.Reader, aad, signer); err != nil {
		return nil, fmt.Errorf("failed to sign COSE_Sign1: %w", err)
	}
	m := sign1{Protected: es256ProtectedRaw, Payload: payload, Signature: msg.Signature}
	m.Unprotected.KID = kid
	return Marshal(m)
}

// Signed is a decoded, not yet verified, COSE_Sign1.
type Signed struct {
	KID     []byte
	Payload []byte
	msg     cose.UntaggedSign1Message
}

// sign1 is a COSE_Sign1 as ParseSign1 decodes it: the protected header kept
// as the byte string it arrived as (the signature covers those bytes), the
// unprotected header at most a kid (any other label is an unknown field).
type sign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   cbor.RawMessage
	Unprotected struct {
		KID keyID `cbor:"4,keyasint,omitempty"`
	}
	Payload   []byte
	Signature []byte
}

// keyID is the unprotected header's kid: a byte string. The codec would
// decode CBOR null or undefined into it as nil, as if there were no kid;
// here they are malformed.
type keyID []byte

func (k *keyID) UnmarshalCBOR(b []byte) error {
	if len(b) == 1 && (b[0] == 0xf6 || b[0] == 0xf7) { // null, undefined
		return errors.New("kid must be a byte string") // Unmarshal wraps it in ErrMalformed
	}
	return Unmarshal(b, (*[]byte)(k))
}

// algHeader is a protected header that holds exactly an alg (label 1).
type algHeader struct {
	Alg int64 `cbor:"1,keyasint"`
}

// es256Protected is the decoded protected header of every Signed: what
// go-cose checks against the verifier's algorithm. Shared, read only.
var es256Protected = cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256}

// es256ProtectedRaw is es256Protected as the byte string it travels as
// (h'A10126'), encoded once by go-cose.
var es256ProtectedRaw = must(es256Protected.MarshalCBOR())

// ParseSign1 decodes an untagged COSE_Sign1 whose protected header is exactly
// alg ES256 and whose unprotected header holds nothing but a kid (bstr), if
// that, under the codec's limits. It does not verify the signature: call
// Verify. (The codec decodes this one shape in three small steps; go-cose's
// own decoder, made for every header COSE allows, cost a join ~16 µs.)
func ParseSign1(b []byte) (*Signed, error) {
	var m sign1
	if err := Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("COSE_Sign1: %w", err)
	}
	var protected []byte
	var hdr algHeader
	if Unmarshal(m.Protected, &protected) != nil || Unmarshal(protected, &hdr) != nil || hdr.Alg != int64(cose.AlgorithmES256) {
		return nil, fmt.Errorf("%w: COSE_Sign1 protected header must be exactly alg ES256", ErrMalformed)
	}
	// The unprotected header is not signed: anything in it beyond the kid
	// could be added by anyone on the path (and joins are kept as evidence).
	// The codec refused every other label (an unknown field of sign1).
	if m.Payload == nil {
		return nil, fmt.Errorf("%w: COSE_Sign1 without payload", ErrMalformed)
	}
	if len(m.Signature) == 0 {
		return nil, fmt.Errorf("%w: COSE_Sign1 without signature", ErrMalformed)
	}
	return &Signed{KID: m.Unprotected.KID, Payload: m.Payload, msg: cose.UntaggedSign1Message{
		Headers:   cose.Headers{RawProtected: m.Protected, Protected: es256Protected},
		Payload:   m.Payload,
		Signature: m.Signature,
	}}, nil
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
