package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
)

// go-cose has no COSE_Encrypt0; this file is its one implementation here
// (RFC 9052 §5.2–5.3), for AES-128-GCM only.

// protectedA128GCM is the only protected header we send or accept: {1: 1}.
var protectedA128GCM = []byte{0xa1, 0x01, 0x01}

// Encrypt0Header is the unprotected header of our COSE_Encrypt0 messages.
type Encrypt0Header struct {
	KID        []byte `cbor:"4,keyasint,omitempty"`  // sender ID
	IV         []byte `cbor:"5,keyasint,omitempty"`  // full IV (tickets)
	PartialIV  []byte `cbor:"6,keyasint,omitempty"`  // sender sequence number
	KIDContext []byte `cbor:"10,keyasint,omitempty"` // session ID (M2M)
}

// Encrypt0 is an untagged COSE_Encrypt0 with AES-128-GCM.
type Encrypt0 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected Encrypt0Header
	Ciphertext  []byte
}

// ParseEncrypt0 decodes an untagged COSE_Encrypt0 whose protected header is
// exactly {1: 1} (AES-128-GCM) and whose ciphertext holds at least a tag.
func ParseEncrypt0(b []byte) (*Encrypt0, error) {
	var m Encrypt0
	if err := Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if !bytes.Equal(m.Protected, protectedA128GCM) {
		return nil, fmt.Errorf("%w: COSE_Encrypt0 protected header must be {1: 1}", ErrMalformed)
	}
	if len(m.Ciphertext) < TagSize {
		return nil, fmt.Errorf("%w: COSE_Encrypt0 ciphertext shorter than a tag", ErrMalformed)
	}
	return &m, nil
}

// Sizes of AES-128-GCM.
const (
	KeySize   = 16
	NonceSize = 12
	TagSize   = 16
)

// Key is an AES-128-GCM key with its cipher expanded once, so that the many
// messages of a member or a session do not each rebuild the AES key schedule
// and GCM tables (about 1.7 KiB of garbage a message). It is safe for
// concurrent use. Make one with NewKey; the zero Key cannot seal or open.
// IMPORTANT: it is a secret; never log or persist it.
type Key struct {
	raw  [KeySize]byte
	aead cipher.AEAD
}

// NewKey expands raw into a Key.
func NewKey(raw [KeySize]byte) Key {
	block, err := aes.NewCipher(raw[:])
	if err != nil {
		panic(err) // only for key sizes other than 16, 24 or 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // only for block sizes other than 16 bytes
	}
	return Key{raw: raw, aead: aead}
}

// Bytes returns the raw key, for test vectors.
func (k Key) Bytes() []byte { return append([]byte(nil), k.raw[:]...) }

// Seal encrypts plaintext under key and nonce into an Encrypt0 with header
// hdr, authenticating externalAAD. IMPORTANT: a (key, nonce) pair must never
// seal twice; callers derive nonces from sequence numbers or draw them at random.
func Seal(key Key, nonce [NonceSize]byte, hdr Encrypt0Header, externalAAD, plaintext []byte) ([]byte, error) {
	return NewAAD(externalAAD).Seal(key, nonce, hdr, plaintext)
}

// Open decrypts m under key and nonce, authenticating externalAAD.
// Any failure returns ErrDecrypt.
func (m *Encrypt0) Open(key Key, nonce [NonceSize]byte, externalAAD []byte) ([]byte, error) {
	return NewAAD(externalAAD).Open(m, key, nonce)
}

// AAD is what the AEAD of a COSE_Encrypt0 authenticates besides the
// plaintext: the encoded Enc_structure (RFC 9052 §5.3) over an external AAD.
// A protected request and its response share their external AAD (§4.1), so
// each side makes it once for both.
type AAD struct{ b []byte }

// NewAAD encodes the Enc_structure ["Encrypt0", protected, external_aad]
// (RFC 9052 §5.3) over externalAAD: the codec's bytes
// (TestNewAADIsEncStructure), built as a Tuple in one allocation of its
// length (TestNewAADAllocatesOnce: a ticket's AAD outgrew a new Tuple's
// room, and growing it was 40 % of sealing a ticket in a profile of a CH
// under /session).
func NewAAD(externalAAD []byte) AAD {
	t := appendHead(make(Tuple, 0, encStructureHead+len(externalAAD)), majorArray, 3)
	return AAD{t.Text("Encrypt0").Bytes(protectedA128GCM).Bytes(externalAAD)}
}

// encStructureHead is the most an Enc_structure adds to its external AAD:
// the array's head, "Encrypt0" and the protected header with theirs, and
// the external AAD's longest head.
const encStructureHead = 1 + 1 + len("Encrypt0") + 1 + 3 + 9

// Seal is Seal with this AAD.
func (a AAD) Seal(key Key, nonce [NonceSize]byte, hdr Encrypt0Header, plaintext []byte) ([]byte, error) {
	return Marshal(a.SealBox(key, nonce, hdr, plaintext))
}

// SealBox is Seal without the encoding, for an Encrypt0 that travels inside
// another message (a ticket's box).
func (a AAD) SealBox(key Key, nonce [NonceSize]byte, hdr Encrypt0Header, plaintext []byte) Encrypt0 {
	return Encrypt0{
		Protected:   protectedA128GCM,
		Unprotected: hdr,
		Ciphertext:  key.aead.Seal(nil, nonce[:], plaintext, a.b),
	}
}

// Open is Encrypt0.Open with this AAD.
func (a AAD) Open(m *Encrypt0, key Key, nonce [NonceSize]byte) ([]byte, error) {
	pt, err := key.aead.Open(nil, nonce[:], m.Ciphertext, a.b)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Tag returns the ciphertext of a COSE_Encrypt0 that seals nothing: the
// AES-128-GCM tag under key and nonce over the Enc_structure of
// externalAAD. Talk proofs carry it alone (docs/PROTOCOL.md §5.1).
// IMPORTANT: as for Seal, a (key, nonce) pair must never tag twice.
func Tag(key Key, nonce [NonceSize]byte, externalAAD []byte) []byte {
	return key.aead.Seal(nil, nonce[:], nil, NewAAD(externalAAD).b)
}

// CheckTag reports whether tag is Tag(key, nonce, externalAAD); any
// mismatch returns ErrDecrypt.
func CheckTag(key Key, nonce [NonceSize]byte, externalAAD, tag []byte) error {
	if len(tag) != TagSize {
		return ErrDecrypt
	}
	if _, err := key.aead.Open(nil, nonce[:], tag, NewAAD(externalAAD).b); err != nil {
		return ErrDecrypt
	}
	return nil
}
