package wire

import (
	"encoding/binary"
	"math"
)

// Tuple is the encoding of a CBOR array of text strings, byte strings and
// unsigned integers, built item by item: the external AADs and HKDF infos
// of docs/PROTOCOL.md. They never travel; each side builds them again for
// every protected message, ticket and derivation, where a call into the
// codec (reflection, a type-cache lookup, a pooled buffer) costs more than
// the AEAD itself. Every message that travels is still encoded by the codec.
//
// The bytes are the codec's (TestTupleIsCodec, FuzzTuple): core
// deterministic encoding is, for these three kinds, each item's head in its
// shortest form (RFC 8949 §4.2.1) followed by its content. The caller
// states the number of items and must append exactly that many.
type Tuple []byte

// CBOR major types (RFC 8949 §3.1).
const (
	majorUint  = 0 << 5
	majorBytes = 2 << 5
	majorText  = 3 << 5
	majorArray = 4 << 5
)

// NewTuple starts an array of n items.
func NewTuple(n int) Tuple {
	return appendHead(make(Tuple, 0, 96), majorArray, uint64(n))
}

// Text appends s as a text string. (IoT-Guard's IDs and labels are checked
// UTF-8; the codec does not check what it encodes either.)
func (t Tuple) Text(s string) Tuple {
	return append(appendHead(t, majorText, uint64(len(s))), s...)
}

// Bytes appends b as a byte string.
func (t Tuple) Bytes(b []byte) Tuple {
	return append(appendHead(t, majorBytes, uint64(len(b))), b...)
}

// Uint appends n as an unsigned integer.
func (t Tuple) Uint(n uint64) Tuple { return appendHead(t, majorUint, n) }

// appendHead appends the head of major type major with argument n in its
// shortest form (RFC 8949 §3, §4.2.1).
func appendHead(b Tuple, major byte, n uint64) Tuple {
	switch {
	case n < 24:
		return append(b, major|byte(n))
	case n <= math.MaxUint8:
		return append(b, major|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, major|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, major|26), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, major|27), n)
	}
}
