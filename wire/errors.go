package wire

import "errors"

// ErrMalformed is returned when bytes are not a well-formed message of the
// expected type: bad CBOR, a limit exceeded, a missing or out-of-range field.
var ErrMalformed = errors.New("malformed message")

// ErrBadSignature is returned when a COSE_Sign1 signature does not verify.
var ErrBadSignature = errors.New("bad signature")

// ErrDecrypt is returned when an AEAD tag does not verify: wrong key, wrong
// nonce, altered ciphertext or altered external AAD look the same.
var ErrDecrypt = errors.New("decryption failed")
