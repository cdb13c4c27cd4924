package keysvc

import (
	"bytes"
	"testing"
)

// FuzzParseMark: a stored re-key mark parses only at its one size, and
// what parses encodes back to the same bytes.
func FuzzParseMark(f *testing.F) {
	f.Add(rekeyMark{chNonce: string(bytes.Repeat([]byte{1}, 16)), thumb: [32]byte{2}}.encode())
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{3}, markSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		mk, err := parseMark(b)
		if (err == nil) != (len(b) == markSize) {
			t.Fatalf("%d bytes: %v", len(b), err)
		}
		if err == nil && !bytes.Equal(mk.encode(), b) {
			t.Fatalf("%x parses to %+v, which encodes to %x", b, mk, mk.encode())
		}
	})
}
