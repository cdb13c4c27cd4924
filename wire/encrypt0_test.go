package wire_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// coseWGEnc01 is cose-wg/Examples aes-gcm-enc-01 as RFC 9052 computes it:
// untagged, AAD = ["Encrypt0", h'A10101', h”]. Later cose-wg/Examples
// revisions publish this tag (…162E2C03568B41F57C3CC16F9166250A), as do
// independent COSE libraries' test suites.
const coseWGEnc01 = "8343A10101A1054C02D1F7E6F26C43D4868D87CE582460973A94BB2898009EE52ECFD9AB1DD25867374B" +
	"162E2C03568B41F57C3CC16F9166250A"

// TestEncrypt0CoseWG replays cose-wg/Examples aes-gcm-enc-01: a tagged
// COSE_Encrypt0, AES-128-GCM, no external AAD. We are untagged, so the leading
// tag byte D0 (tag 16) is stripped; we must open it and reproduce its exact bytes.
func TestEncrypt0CoseWG(t *testing.T) {
	raw, err := os.ReadFile("../testdata/cose-wg/aes-gcm-enc-01.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Input struct {
			Plaintext string   `json:"plaintext"`
			RNGStream []string `json:"rng_stream"`
		} `json:"input"`
		Intermediates struct {
			AAD string `json:"AAD_hex"`
			CEK string `json:"CEK_hex"`
		} `json:"intermediates"`
		Output struct {
			CBOR string `json:"cbor"`
		} `json:"output"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	tagged := testutil.MustHex(t, v.Output.CBOR)
	if tagged[0] != 0xd0 {
		t.Fatalf("vector does not start with tag 16: %x", tagged[:1])
	}
	msg := tagged[1:]
	key, iv := [wire.KeySize]byte(testutil.MustHex(t, v.Intermediates.CEK)), [wire.NonceSize]byte(testutil.MustHex(t, v.Input.RNGStream[0]))
	pt := []byte(v.Input.Plaintext)

	if _, err := wire.ParseEncrypt0(tagged); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("ParseEncrypt0(tagged) = %v, want ErrMalformed: we are untagged", err)
	}
	m, err := wire.ParseEncrypt0(msg)
	if err != nil {
		t.Fatalf("ParseEncrypt0: %v", err)
	}
	if !bytes.Equal(m.Unprotected.IV, iv[:]) {
		t.Errorf("IV header %x, want %x", m.Unprotected.IV, iv)
	}
	sealed, err := wire.Seal(wire.NewKey(key), iv, wire.Encrypt0Header{IV: iv[:]}, nil, pt)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ciphertext", func(t *testing.T) {
		// Key, IV and plaintext alone fix everything but the tag.
		if n := len(msg) - wire.TagSize; !bytes.Equal(sealed[:n], msg[:n]) {
			t.Errorf("Seal =\n%x, want the vector's bytes before the tag\n%x", sealed[:n], msg[:n])
		}
	})
	t.Run("rfc9052", func(t *testing.T) {
		want := testutil.MustHex(t, coseWGEnc01)
		if !bytes.Equal(sealed, want) {
			t.Errorf("Seal =\n%x, want\n%x", sealed, want)
		}
		m, err := wire.ParseEncrypt0(want)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := m.Open(wire.NewKey(key), iv, nil); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("Open = %q, %v; want %q", got, err, pt)
		}
	})
	t.Run("file erratum", func(t *testing.T) {
		// Upstream's file (every revision) was made with the Enc_structure
		// context "Encrypt1", not RFC 9052's "Encrypt0": its ciphertext is
		// right (checked above) and its tag cannot be reproduced. Pin that,
		// so a corrected upstream file is noticed and adopted.
		var aad []any
		if err := wire.Unmarshal(testutil.MustHex(t, v.Intermediates.AAD), &aad); err != nil || len(aad) != 3 {
			t.Fatalf("AAD_hex is not an Enc_structure: %v", err)
		}
		if aad[0] != "Encrypt1" {
			t.Fatalf("upstream's Enc_structure context is now %q: adopt the corrected file and check its tag", aad[0])
		}
		if _, err := m.Open(wire.NewKey(key), iv, nil); err == nil {
			t.Errorf("the erratum tag opened under RFC 9052's AAD")
		}
	})
	// The AAD the file names opens its ciphertext with crypto/cipher alone:
	// the file is self-consistent, only its context string is not RFC 9052's.
	blk, _ := aes.NewCipher(key[:])
	g, _ := cipher.NewGCM(blk)
	if _, err := g.Open(nil, iv[:], m.Ciphertext, testutil.MustHex(t, v.Intermediates.AAD)); err != nil {
		t.Errorf("crypto/cipher with AAD_hex: %v", err)
	}
}

func TestEncrypt0RoundTrip(t *testing.T) {
	key := [wire.KeySize]byte(testutil.MustHex(t, "000102030405060708090a0b0c0d0e0f"))
	nonce := [wire.NonceSize]byte(testutil.MustHex(t, "a0a1a2a3a4a5a6a7a8a9aaab"))
	aad := []byte("external")
	tests := []struct {
		name string
		hdr  wire.Encrypt0Header
		pt   []byte
	}{
		{"empty header, empty plaintext", wire.Encrypt0Header{}, nil},
		{"request header", wire.Encrypt0Header{KID: []byte("sensor-01"), PartialIV: []byte{0x01, 0x02}}, []byte("x")},
		{"ticket header", wire.Encrypt0Header{IV: nonce[:]}, make([]byte, 16)},
		{"m2m header", wire.Encrypt0Header{KID: []byte("a"), PartialIV: []byte{0}, KIDContext: make([]byte, 16)},
			bytes.Repeat([]byte{0x55}, 1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := wire.Seal(wire.NewKey(key), nonce, tc.hdr, aad, tc.pt)
			if err != nil {
				t.Fatal(err)
			}
			m, err := wire.ParseEncrypt0(b)
			if err != nil {
				t.Fatalf("ParseEncrypt0: %v", err)
			}
			if got := testutil.MustMarshal(t, m.Unprotected); !bytes.Equal(got, testutil.MustMarshal(t, tc.hdr)) {
				t.Errorf("header %x, want %x", got, testutil.MustMarshal(t, tc.hdr))
			}
			if len(m.Ciphertext) != len(tc.pt)+wire.TagSize {
				t.Errorf("ciphertext of %d bytes for %d bytes of plaintext", len(m.Ciphertext), len(tc.pt))
			}
			pt, err := m.Open(wire.NewKey(key), nonce, aad)
			if err != nil || !bytes.Equal(pt, tc.pt) {
				t.Errorf("Open = %x, %v; want %x", pt, err, tc.pt)
			}
			if got := testutil.MustMarshal(t, m); !bytes.Equal(got, b) {
				t.Errorf("re-encoding differs:\n%x\n%x", got, b)
			}
		})
	}
}

func TestEncrypt0OpenFails(t *testing.T) {
	key := [wire.KeySize]byte(testutil.MustHex(t, "000102030405060708090a0b0c0d0e0f"))
	nonce := [wire.NonceSize]byte(testutil.MustHex(t, "a0a1a2a3a4a5a6a7a8a9aaab"))
	aad := []byte("external")
	b, err := wire.Seal(wire.NewKey(key), nonce, wire.Encrypt0Header{KID: []byte("k")}, aad, []byte("plaintext"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, otherNonce := key, nonce
	otherKey[0] ^= 1
	otherNonce[11] ^= 1
	tests := []struct {
		name  string
		key   [wire.KeySize]byte
		nonce [wire.NonceSize]byte
		aad   []byte
		mod   func(ct []byte)
	}{
		{"wrong key", otherKey, nonce, aad, nil},
		{"wrong nonce", key, otherNonce, aad, nil},
		{"wrong external AAD", key, nonce, []byte("externaL"), nil},
		{"no external AAD", key, nonce, nil, nil},
		{"first ciphertext byte flipped", key, nonce, aad, func(ct []byte) { ct[0] ^= 1 }},
		{"last tag byte flipped", key, nonce, aad, func(ct []byte) { ct[len(ct)-1] ^= 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := wire.ParseEncrypt0(b)
			if err != nil {
				t.Fatal(err)
			}
			if tc.mod != nil {
				m.Ciphertext = bytes.Clone(m.Ciphertext)
				tc.mod(m.Ciphertext)
			}
			if pt, err := m.Open(wire.NewKey(tc.key), tc.nonce, tc.aad); !errors.Is(err, wire.ErrDecrypt) {
				t.Errorf("Open = %q, %v; want ErrDecrypt", pt, err)
			}
		})
	}
}

func TestEncrypt0EmptyAADIsNilAAD(t *testing.T) {
	// RFC 9052 §5.3: absent external AAD is a zero-length bstr. nil and []byte{} must agree.
	var key [wire.KeySize]byte
	var nonce [wire.NonceSize]byte
	b, err := wire.Seal(wire.NewKey(key), nonce, wire.Encrypt0Header{}, nil, []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.ParseEncrypt0(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Open(wire.NewKey(key), nonce, []byte{}); err != nil {
		t.Errorf("Open with empty AAD of a message sealed with nil AAD: %v", err)
	}
}

func TestParseEncrypt0Malformed(t *testing.T) {
	a128 := []byte{0xa1, 0x01, 0x01}
	tag := make([]byte, wire.TagSize)
	hdr := map[int][]byte{4: []byte("k")}
	good := testutil.MustMarshal(t, []any{a128, hdr, tag})
	if _, err := wire.ParseEncrypt0(good); err != nil {
		t.Fatalf("ParseEncrypt0(well-formed) = %v", err)
	}
	tests := []struct {
		name string
		msg  []byte
	}{
		{"tagged COSE_Encrypt0 (16)", cat([]byte{0xd0}, good)},
		{"A256GCM", testutil.MustMarshal(t, []any{[]byte{0xa1, 0x01, 0x03}, hdr, tag})},
		{"empty protected header", testutil.MustMarshal(t, []any{[]byte{}, hdr, tag})},
		{"protected header with a kid", testutil.MustMarshal(t, []any{testutil.MustMarshal(t, map[int]any{1: 1, 4: []byte("k")}), hdr, tag})},
		{"protected header a map", testutil.MustMarshal(t, []any{map[int]int{1: 1}, hdr, tag})},
		{"ciphertext shorter than a tag", testutil.MustMarshal(t, []any{a128, hdr, tag[1:]})},
		{"ciphertext null (detached)", testutil.MustMarshal(t, []any{a128, hdr, nil})},
		{"alg in the unprotected header", testutil.MustMarshal(t, []any{a128, map[int]any{1: 1}, tag})},
		{"unknown unprotected label", testutil.MustMarshal(t, []any{a128, map[int]any{99: []byte{1}}, tag})},
		{"kid a text string", testutil.MustMarshal(t, []any{a128, map[int]any{4: "k"}, tag})},
		{"duplicate unprotected label", cat([]byte{0x83, 0x43, 0xa1, 0x01, 0x01, 0xa2, 0x04, 0x41, 'k', 0x04, 0x41, 'j',
			0x50}, tag)},
		{"two items", testutil.MustMarshal(t, []any{a128, hdr})},
		{"four items (COSE_Encrypt with recipients)", testutil.MustMarshal(t, []any{a128, hdr, tag, []any{}})},
		{"trailing byte", cat(good, []byte{0x00})},
		{"truncated", good[:len(good)-1]},
		{"indefinite-length array", cat([]byte{0x9f}, good[1:], []byte{0xff})},
		{"indefinite-length ciphertext", cat(good[:len(good)-17], []byte{0x5f, 0x50}, tag, []byte{0xff})},
		{"empty", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := wire.ParseEncrypt0(tc.msg); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParseEncrypt0(%s) = %v, want ErrMalformed", hex.EncodeToString(tc.msg), err)
			}
		})
	}
}

// TestNewAADIsEncStructure: the AAD NewAAD builds is the
// codec's encoding of the Enc_structure, at every length whose byte-string
// head differs (RFC 8949 §3.1: 0–23, one, two, four bytes), checked through
// the tag crypto/cipher computes over the codec's bytes.
func TestNewAADIsEncStructure(t *testing.T) {
	key := [wire.KeySize]byte{1}
	nonce := [wire.NonceSize]byte{3}
	blk, _ := aes.NewCipher(key[:])
	g, _ := cipher.NewGCM(blk)
	for _, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536} {
		ext := bytes.Repeat([]byte{0xa5}, n)
		if n == 0 {
			ext = nil // a nil external AAD is the empty byte string
		}
		want := g.Seal(nil, nonce[:], nil, testutil.MustMarshal(t, []any{"Encrypt0", []byte{0xa1, 0x01, 0x01}, append([]byte{}, ext...)}))
		if got := wire.Tag(wire.NewKey(key), nonce, ext); !bytes.Equal(got, want) {
			t.Errorf("external AAD of %d bytes: tag %x, want %x", n, got, want)
		}
	}
}

// TestTag: a tag is the ciphertext of an Encrypt0 sealing nothing, checked
// against crypto/cipher directly; CheckTag accepts it and refuses any other
// tag, nonce, external AAD or key, and a tag of another length.
func TestTag(t *testing.T) {
	key, other := [wire.KeySize]byte{1}, [wire.KeySize]byte{2}
	nonce := [wire.NonceSize]byte{3}
	ext := []byte("external")
	tag := wire.Tag(wire.NewKey(key), nonce, ext)
	sealed, err := wire.Seal(wire.NewKey(key), nonce, wire.Encrypt0Header{}, ext, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.ParseEncrypt0(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tag, m.Ciphertext) || len(tag) != wire.TagSize {
		t.Fatalf("tag %x, Encrypt0 of nothing %x", tag, m.Ciphertext)
	}
	blk, _ := aes.NewCipher(key[:])
	g, _ := cipher.NewGCM(blk)
	aad := testutil.MustMarshal(t, []any{"Encrypt0", []byte{0xa1, 0x01, 0x01}, ext})
	if want := g.Seal(nil, nonce[:], nil, aad); !bytes.Equal(tag, want) {
		t.Fatalf("tag %x, crypto/cipher %x", tag, want)
	}
	if err := wire.CheckTag(wire.NewKey(key), nonce, ext, tag); err != nil {
		t.Fatalf("CheckTag of the tag: %v", err)
	}
	flipped := bytes.Clone(tag)
	flipped[0] ^= 1
	for name, c := range map[string]func() error{
		"flipped tag":  func() error { return wire.CheckTag(wire.NewKey(key), nonce, ext, flipped) },
		"other key":    func() error { return wire.CheckTag(wire.NewKey(other), nonce, ext, tag) },
		"other nonce":  func() error { return wire.CheckTag(wire.NewKey(key), [wire.NonceSize]byte{4}, ext, tag) },
		"other AAD":    func() error { return wire.CheckTag(wire.NewKey(key), nonce, []byte("externaL"), tag) },
		"short tag":    func() error { return wire.CheckTag(wire.NewKey(key), nonce, ext, tag[:15]) },
		"tag and more": func() error { return wire.CheckTag(wire.NewKey(key), nonce, ext, append(bytes.Clone(tag), 0)) },
	} {
		if err := c(); !errors.Is(err, wire.ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", name, err)
		}
	}
}
