// Package testutil holds the helpers that tests of several packages share.
package testutil

import (
	"encoding/hex"
	"testing"

	"github.com/iotguard/iotguard/wire"
)

// MustHex decodes s or fails the test.
func MustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// MustMarshal encodes v with the protocol's CBOR encoding or fails the test.
func MustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
