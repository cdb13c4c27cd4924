// Package wire owns IoT-Guard's bytes on the wire: the CBOR messages of
// docs/PROTOCOL.md, the COSE structures built from them, and the one CBOR
// codec configuration every package uses.
package wire

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Decoding limits. They bound the work and memory an attacker can cause with
// one datagram; every message we define fits well inside them.
const (
	maxNestedLevels = 8
	maxArrayItems   = 64
	maxMapPairs     = 32
)

// The codec. (Variables, not an init function, so that the package's other
// variables may be computed with it: Go orders their initialisation.)
var (
	// Core deterministic encoding (RFC 8949 §4.2.1): the ledger hashes what
	// it encodes, so the same value must always give the same bytes.
	encMode = must(cbor.CoreDetEncOptions().EncMode())
	decMode = must(cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF, // duplicate keys are an error, never "last wins"
		MaxNestedLevels:   maxNestedLevels,
		MaxArrayElements:  maxArrayItems,
		MaxMapPairs:       maxMapPairs,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode())
)

// must returns v, or panics on err: for the codec's fixed options.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Marshal encodes v in core deterministic CBOR.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("failed to encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes exactly one CBOR item from b into v under the decoding
// limits above. Trailing bytes, duplicate map keys, unknown fields of a struct,
// indefinite lengths and tags are errors wrapped around ErrMalformed.
func Unmarshal(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %T: %v", ErrMalformed, v, err)
	}
	return nil
}
