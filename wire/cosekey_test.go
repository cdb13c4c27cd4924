package wire_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// rfcKey is the COSE_Key of RFC 9679 §6 as a label map, alg ES256 included.
func rfcKey(t *testing.T) map[int]any {
	return map[int]any{1: 2, 3: -7, -1: 1, -2: testutil.MustHex(t, rfcX), -3: testutil.MustHex(t, rfcY)}
}

func TestThumbprintRFC9679(t *testing.T) {
	// RFC 9679 §6: the canonical input and the thumbprint of its example key.
	input := testutil.MustHex(t, "a40102200121582065eda5a12577c2bae829437fe338701a10aaa375e1bb5b5de108de439c08551d"+
		"2258201e52ed75701163f7f9e40ddf9f341b3dc9ba860af7e0ca7ca7e9eecd0084d19c")
	want := testutil.MustHex(t, "496bd8afadf307e5b08c64b0421bf9dc01528a344a43bda88fadd1669da253ec")

	pub, err := wire.ParsePublicKey(input)
	if err != nil {
		t.Fatalf("ParsePublicKey(RFC 9679 key): %v", err)
	}
	if got := wire.Thumbprint(pub); !bytes.Equal(got[:], want) {
		t.Errorf("Thumbprint = %x, want %x", got, want)
	}
	// The same key with alg ES256, as we send it, has the same thumbprint.
	pub2, err := wire.ParsePublicKey(testutil.MustMarshal(t, rfcKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	if got := wire.Thumbprint(pub2); !bytes.Equal(got[:], want) {
		t.Errorf("Thumbprint (with alg) = %x, want %x", got, want)
	}
	if sum := sha256.Sum256(input); !bytes.Equal(sum[:], want) {
		t.Fatalf("RFC input hashes to %x", sum)
	}
	if !pub.Equal(&privKey(t, scalarA).PublicKey) {
		t.Error("RFC 9679 key is not the public key of RFC 9052's meriadoc scalar")
	}
}

func TestEncodePublicKey(t *testing.T) {
	// Exactly {1: 2, 3: -7, -1: 1, -2: x, -3: y} in deterministic CBOR (PROTOCOL.md §1).
	got, err := wire.EncodePublicKey(&privKey(t, scalarA).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	want := testutil.MustHex(t, "a5010203262001215820"+rfcX+"225820"+rfcY)
	if !bytes.Equal(got, want) {
		t.Errorf("EncodePublicKey = %x, want %x", got, want)
	}

	for range 16 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := wire.EncodePublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := wire.ParsePublicKey(b)
		if err != nil {
			t.Fatalf("ParsePublicKey(EncodePublicKey(k)): %v", err)
		}
		if !pub.Equal(&k.PublicKey) {
			t.Fatal("round trip changed the key")
		}
	}
}

func TestParsePublicKey(t *testing.T) {
	x, y := testutil.MustHex(t, rfcX), testutil.MustHex(t, rfcY)
	with := func(set map[int]any, del ...int) []byte {
		m := rfcKey(t)
		maps.Copy(m, set)
		for _, k := range del {
			delete(m, k)
		}
		return testutil.MustMarshal(t, m)
	}
	yOff := bytes.Clone(y)
	yOff[31]++
	valid := with(nil)

	tests := []struct {
		name string
		key  []byte
		ok   bool
	}{
		{"with alg ES256", valid, true},
		{"without alg", with(nil, 3), true},
		{"labels in non-canonical order", cat([]byte{0xa5, 0x22, 0x58, 0x20}, y, []byte{0x21, 0x58, 0x20}, x,
			[]byte{0x20, 0x01, 0x03, 0x26, 0x01, 0x02}), true},

		{"point not on curve", with(map[int]any{-3: yOff}), false},
		{"point at zero", with(map[int]any{-2: make([]byte, 32), -3: make([]byte, 32)}), false},
		{"wrong curve P-384", with(map[int]any{-1: 2}), false},
		{"wrong curve secp256k1", with(map[int]any{-1: 8}), false},
		{"curve missing", with(nil, -1), false},
		{"private key present", with(map[int]any{-4: testutil.MustHex(t, scalarA)}), false},
		{"empty private key present", with(map[int]any{-4: []byte{}}), false},
		{"kty OKP", with(map[int]any{1: 1}), false},
		{"kty Symmetric", with(map[int]any{1: 4}), false},
		{"kty missing", with(nil, 1), false},
		{"alg ES384", with(map[int]any{3: -35}), false},
		{"alg EdDSA", with(map[int]any{3: -8}), false},
		{"x of 31 bytes", with(map[int]any{-2: x[1:]}), false},
		{"y of 33 bytes", with(map[int]any{-3: append([]byte{0}, y...)}), false},
		{"y missing", with(nil, -3), false},
		{"compressed point (y is a bool)", with(map[int]any{-3: true}), false},
		{"x as a text string", with(map[int]any{-2: string(x)}), false},
		{"duplicate label", cat([]byte{0xa6}, valid[1:len(valid)-35], []byte{0x22, 0x58, 0x20}, y,
			valid[len(valid)-35:]), false},
		{"tagged", cat([]byte{0xd8, 0x65}, valid), false},
		{"trailing byte", cat(valid, []byte{0x00}), false},
		{"array", testutil.MustMarshal(t, []any{2, 1, x, y}), false},
		{"empty", nil, false},
		{"truncated", valid[:len(valid)-1], false},

		// PROTOCOL.md §1: "COSE_Key = { ; P-256 public key, exactly these labels", and receivers
		// reject unknown keys; alg, if present, is -7.
		{"extra label kid", with(map[int]any{2: []byte("sensor-01")}), false},
		{"extra label key_ops", with(map[int]any{4: []any{2}}), false},
		{"extra unknown label", with(map[int]any{-99: 0}), false},
		{"alg 0 (reserved)", with(map[int]any{3: 0}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := parseNoPanic(tc.key)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("ParsePublicKey(%x) = %v, want a key", tc.key, err)
			case tc.ok && !pub.Equal(&privKey(t, scalarA).PublicKey):
				t.Fatalf("ParsePublicKey(%x) returned another key", tc.key)
			case !tc.ok && !errors.Is(err, wire.ErrMalformed):
				t.Fatalf("ParsePublicKey(%s) = %v, want ErrMalformed", hex.EncodeToString(tc.key), err)
			}
		})
	}
}

// parseNoPanic is ParsePublicKey with a panic turned into an error, so one
// crasher fails its test instead of taking the rest of the suite down.
func parseNoPanic(b []byte) (pub *ecdsa.PublicKey, err error) {
	defer func() {
		if r := recover(); r != nil {
			pub, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return wire.ParsePublicKey(b)
}

// TestParsePublicKeyCurveNotAnInteger is the regression for the fuzz crasher
// testdata/fuzz/FuzzParsePublicKey/8c254eae4dd887a0: go-cose v1.3.0's
// Key.UnmarshalCBOR asserts crv (-1) to int64 unchecked, so a COSE_Key whose
// curve is any other CBOR type panics. A join request carries a COSE_Key from
// an unauthenticated sender, and ParsePublicKey runs before the signature check.
func TestParsePublicKeyCurveNotAnInteger(t *testing.T) {
	x, y := testutil.MustHex(t, rfcX), testutil.MustHex(t, rfcY)
	for name, crv := range map[string]any{
		"byte string": []byte{1},
		"text string": "P-256",
		"float":       1.0,
		"bool":        true,
		"null":        nil,
		"array":       []any{1},
		"map":         map[int]int{1: 1},
	} {
		t.Run(name, func(t *testing.T) {
			key := testutil.MustMarshal(t, map[int]any{1: 2, -1: crv, -2: x, -3: y})
			if _, err := parseNoPanic(key); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParsePublicKey(%x) = %v, want ErrMalformed", key, err)
			}
		})
	}
	// The fuzzer's input, verbatim: crv is a 32-byte bstr, with two unknown labels.
	crash := []byte("\xa4\x01\x0200 X 000000000000000000000000000000001X 00000000000000000000000000000000")
	if _, err := parseNoPanic(crash); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("ParsePublicKey(fuzz crasher) = %v, want ErrMalformed", err)
	}
}
