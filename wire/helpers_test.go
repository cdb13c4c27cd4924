package wire_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// Fixed P-256 keys: RFC 9052 Appendix C.7.2's "meriadoc.brandybuck" and "11".
const (
	scalarA = "aff907c99f9ad3aae6c4cdf21122bce2bd68b5283e6907154ad911840fa208cf"
	scalarB = "57c92077664146e876760c9520d054aa93c3afb04e306705db6090308507b4d3"
	// x and y of scalarA, as printed in RFC 9679 §6.
	rfcX = "65eda5a12577c2bae829437fe338701a10aaa375e1bb5b5de108de439c08551d"
	rfcY = "1e52ed75701163f7f9e40ddf9f341b3dc9ba860af7e0ca7ca7e9eecd0084d19c"
)

func privKey(tb testing.TB, scalar string) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), testutil.MustHex(tb, scalar))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// coseKey returns the COSE_Key of the public key of scalar.
func coseKey(tb testing.TB, scalar string) []byte {
	tb.Helper()
	b, err := wire.EncodePublicKey(&privKey(tb, scalar).PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
