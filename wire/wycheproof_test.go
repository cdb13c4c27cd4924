package wire_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// Wycheproof (C2SP/wycheproof) vectors, copied into testdata/wycheproof (see
// its README for provenance). Each test case names its expected result:
// "valid", "invalid" or "acceptable" (legal but weak input: for us, a
// rejection is always fine). Our code must agree with every "valid" and
// "invalid" verdict on the paths the protocol uses:
//
//   - ES256 (P1363 r‖s, the COSE form): a COSE_Key built from the vector's
//     public key goes through wire.ParsePublicKey, then go-cose's ES256
//     verifier, which is what wire.Signed.Verify and keysvc.Verify call.
//   - ECDH: the peer's point goes through wire.ParsePublicKey (which must
//     refuse every point off the curve: the invalid-curve attack), then
//     crypto/ecdh, as keysvc and the device derive K_m.
//   - AES-GCM (12-byte IV, 16-byte tag): the AEAD that wire.Seal and Open use.

// wycheproofFile is the part of a Wycheproof file every schema shares; the
// groups are decoded per schema.
type wycheproofFile struct {
	Algorithm     string            `json:"algorithm"`
	NumberOfTests int               `json:"numberOfTests"`
	TestGroups    []json.RawMessage `json:"testGroups"`
}

type wycheproofCase struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Result  string   `json:"result"`
}

func (c wycheproofCase) String() string {
	return fmt.Sprintf("tcId %d (%s %v, %s)", c.TcID, c.Comment, c.Flags, c.Result)
}

// loadWycheproof decodes file's groups into T and checks the case count
// against the file's own numberOfTests, so a truncated file is noticed.
func loadWycheproof[T any](t *testing.T, file string, count func(T) int) []T {
	t.Helper()
	raw, err := os.ReadFile("../testdata/wycheproof/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var f wycheproofFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	groups := make([]T, len(f.TestGroups))
	n := 0
	for i, g := range f.TestGroups {
		if err := json.Unmarshal(g, &groups[i]); err != nil {
			t.Fatalf("%s group %d: %v", file, i, err)
		}
		n += count(groups[i])
	}
	if n == 0 || n != f.NumberOfTests {
		t.Fatalf("%s: %d test cases, the file says %d", file, n, f.NumberOfTests)
	}
	return groups
}

func hexOf(t *testing.T, c wycheproofCase, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	return b
}

// coseKeyOfPoint returns the COSE_Key of an uncompressed SEC1 point
// (0x04 ‖ x ‖ y), without checking that it is on the curve.
func coseKeyOfPoint(t *testing.T, point []byte) []byte {
	t.Helper()
	if len(point) != 65 || point[0] != 4 {
		t.Fatalf("not an uncompressed P-256 point: %x", point)
	}
	return testutil.MustMarshal(t, map[int]any{1: 2, -1: 1, -2: point[1:33], -3: point[33:]})
}

type ecdsaGroup struct {
	PublicKey struct {
		Curve        string `json:"curve"`
		Uncompressed string `json:"uncompressed"`
	} `json:"publicKey"`
	SHA   string `json:"sha"`
	Tests []struct {
		wycheproofCase
		Msg string `json:"msg"`
		Sig string `json:"sig"`
	} `json:"tests"`
}

func ecdsaGroups(t *testing.T, file string) []ecdsaGroup {
	groups := loadWycheproof(t, file, func(g ecdsaGroup) int { return len(g.Tests) })
	for _, g := range groups {
		if g.PublicKey.Curve != "secp256r1" || g.SHA != "SHA-256" {
			t.Fatalf("%s: group for %s/%s", file, g.PublicKey.Curve, g.SHA)
		}
	}
	return groups
}

// groupKey parses the group's public key the way a join's key is parsed.
func (g ecdsaGroup) key(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	b, err := hex.DecodeString(g.PublicKey.Uncompressed)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := wire.ParsePublicKey(coseKeyOfPoint(t, b))
	if err != nil {
		t.Fatalf("ParsePublicKey(%s): %v", g.PublicKey.Uncompressed, err)
	}
	return pub
}

// TestWycheproofES256 runs every ECDSA P-256/SHA-256 signature in IEEE P1363
// form (r ‖ s, 64 bytes: the COSE ES256 form we sign and verify) through
// go-cose's ES256 verifier under a key parsed by wire.ParsePublicKey.
func TestWycheproofES256(t *testing.T) {
	var valid, invalid int
	for _, g := range ecdsaGroups(t, "ecdsa_secp256r1_sha256_p1363_test.json") {
		v, err := cose.NewVerifier(cose.AlgorithmES256, g.key(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range g.Tests {
			err := v.Verify(hexOf(t, c.wycheproofCase, c.Msg), hexOf(t, c.wycheproofCase, c.Sig))
			switch c.Result {
			case "valid":
				valid++
				if err != nil {
					t.Errorf("%v: rejected: %v", c, err)
				}
			case "invalid":
				invalid++
				if err == nil {
					t.Errorf("%v: accepted", c)
				}
			default:
				t.Fatalf("%v: unexpected result in a P1363 file", c)
			}
		}
	}
	t.Logf("%d valid signatures accepted, %d invalid rejected", valid, invalid)
}

// TestWycheproofECDSADER runs the DER-encoded twin of the file above. We
// never parse a DER signature (COSE carries r ‖ s), so this pins two things:
// crypto/ecdsa's verdict on every case, and that every valid DER signature,
// converted to r ‖ s, also verifies on our ES256 path — the two encodings
// carry the same verdicts.
func TestWycheproofECDSADER(t *testing.T) {
	var converted int
	for _, g := range ecdsaGroups(t, "ecdsa_secp256r1_sha256_test.json") {
		pub := g.key(t)
		v, err := cose.NewVerifier(cose.AlgorithmES256, pub)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range g.Tests {
			msg, sig := hexOf(t, c.wycheproofCase, c.Msg), hexOf(t, c.wycheproofCase, c.Sig)
			digest := sha256.Sum256(msg)
			ok := ecdsa.VerifyASN1(pub, digest[:], sig)
			if want := c.Result == "valid"; ok != want {
				t.Errorf("%v: VerifyASN1 = %v", c, ok)
			}
			if c.Result != "valid" {
				continue
			}
			var rs struct{ R, S *big.Int }
			if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 {
				t.Fatalf("%v: valid signature is not DER: %v", c, err)
			}
			p1363 := append(rs.R.FillBytes(make([]byte, 32)), rs.S.FillBytes(make([]byte, 32))...)
			if err := v.Verify(msg, p1363); err != nil {
				t.Errorf("%v: r ‖ s of a valid DER signature rejected: %v", c, err)
			}
			converted++
		}
	}
	if converted == 0 {
		t.Fatal("no valid signature converted")
	}
}

type ecdhGroup struct {
	Curve    string `json:"curve"`
	Encoding string `json:"encoding"`
	Tests    []struct {
		wycheproofCase
		Public  string `json:"public"`
		Private string `json:"private"`
		Shared  string `json:"shared"`
	} `json:"tests"`
}

// scalar32 left-pads or strips a big-endian scalar to the 32 bytes
// crypto/ecdh takes (Wycheproof writes them as ASN.1 integers).
func scalar32(t *testing.T, b []byte) []byte {
	t.Helper()
	b = bytes.TrimLeft(b, "\x00")
	if len(b) > 32 {
		t.Fatalf("scalar of %d bytes", len(b))
	}
	return append(make([]byte, 32-len(b)), b...)
}

// TestWycheproofECDH runs ECDH secp256r1 with raw points (the "ecpoint"
// file: our COSE_Key carries x and y, never ASN.1). Every uncompressed point
// goes through wire.ParsePublicKey: the 16 invalid-curve points must be
// refused there, before any scalar multiplication; every valid one must give
// the vector's shared secret through crypto/ecdh. Compressed points cannot be
// expressed in our COSE_Key profile (y must be 32 bytes): their COSE form
// (y = the sign bit, RFC 9053 §9.1.1) must be refused whatever the vector's verdict.
func TestWycheproofECDH(t *testing.T) {
	groups := loadWycheproof(t, "ecdh_secp256r1_ecpoint_test.json", func(g ecdhGroup) int { return len(g.Tests) })
	var agreed, refused int
	for _, g := range groups {
		if g.Curve != "secp256r1" || g.Encoding != "ecpoint" {
			t.Fatalf("group for %s/%s", g.Curve, g.Encoding)
		}
		for _, c := range g.Tests {
			point := hexOf(t, c.wycheproofCase, c.Public)
			var key []byte
			switch {
			case len(point) == 65 && point[0] == 4:
				key = coseKeyOfPoint(t, point)
			case len(point) == 33 && (point[0] == 2 || point[0] == 3):
				key = testutil.MustMarshal(t, map[int]any{1: 2, -1: 1, -2: point[1:], -3: point[0] == 3})
			default: // not a point at all
				key = testutil.MustMarshal(t, map[int]any{1: 2, -1: 1, -2: point, -3: point})
			}
			pub, err := wire.ParsePublicKey(key)
			if c.Result != "valid" || len(point) != 65 {
				if err == nil {
					t.Errorf("%v: ParsePublicKey accepted %x", c, point)
				} else if !errors.Is(err, wire.ErrMalformed) {
					t.Errorf("%v: ParsePublicKey error %v is not ErrMalformed", c, err)
				}
				refused++
				continue
			}
			if err != nil {
				t.Errorf("%v: ParsePublicKey refused a valid point: %v", c, err)
				continue
			}
			epub, err := pub.ECDH()
			if err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			priv, err := ecdh.P256().NewPrivateKey(scalar32(t, hexOf(t, c.wycheproofCase, c.Private)))
			if err != nil {
				t.Fatalf("%v: private key: %v", c, err)
			}
			z, err := priv.ECDH(epub)
			if err != nil || !bytes.Equal(z, hexOf(t, c.wycheproofCase, c.Shared)) {
				t.Errorf("%v: shared secret %x, %v; want %s", c, z, err, c.Shared)
			}
			agreed++
		}
	}
	t.Logf("%d shared secrets agreed, %d public keys refused", agreed, refused)
}

type aeadGroup struct {
	KeySize int `json:"keySize"`
	IVSize  int `json:"ivSize"`
	TagSize int `json:"tagSize"`
	Tests   []struct {
		wycheproofCase
		Key string `json:"key"`
		IV  string `json:"iv"`
		AAD string `json:"aad"`
		Msg string `json:"msg"`
		CT  string `json:"ct"`
		Tag string `json:"tag"`
	} `json:"tests"`
}

// TestWycheproofAESGCM runs AES-128-GCM with 12-byte IVs and 16-byte tags
// (the only groups kept in the copy) against wire's AEAD: valid cases seal
// to the vector's bytes and open; invalid ones (modified tags, …) do not
// open. Valid cases also go through wire.Seal and Open, where the AAD is
// the Enc_structure: the ciphertext before the tag depends only on key, IV
// and plaintext, so it must equal the vector's.
func TestWycheproofAESGCM(t *testing.T) {
	groups := loadWycheproof(t, "aes_gcm_test.json", func(g aeadGroup) int { return len(g.Tests) })
	var valid, invalid int
	for _, g := range groups {
		if g.KeySize != 128 || g.IVSize != 96 || g.TagSize != 128 {
			t.Fatalf("group with key %d, IV %d, tag %d bits: not our suite", g.KeySize, g.IVSize, g.TagSize)
		}
		for _, c := range g.Tests {
			key := [wire.KeySize]byte(hexOf(t, c.wycheproofCase, c.Key))
			iv := [wire.NonceSize]byte(hexOf(t, c.wycheproofCase, c.IV))
			aad, msg := hexOf(t, c.wycheproofCase, c.AAD), hexOf(t, c.wycheproofCase, c.Msg)
			ct, tag := hexOf(t, c.wycheproofCase, c.CT), hexOf(t, c.wycheproofCase, c.Tag)
			aead, err := wire.AEADForTest(key)
			if err != nil {
				t.Fatal(err)
			}
			sealed := slices.Concat(ct, tag)
			opened, err := aead.Open(nil, iv[:], sealed, aad)
			if c.Result != "valid" {
				invalid++
				if err == nil {
					t.Errorf("%v: opened", c)
				}
				continue
			}
			valid++
			if err != nil || !bytes.Equal(opened, msg) {
				t.Errorf("%v: Open = %x, %v", c, opened, err)
			}
			if got := aead.Seal(nil, iv[:], msg, aad); !bytes.Equal(got, sealed) {
				t.Errorf("%v: Seal = %x, want %x", c, got, sealed)
			}

			b, err := wire.Seal(wire.NewKey(key), iv, wire.Encrypt0Header{IV: iv[:]}, aad, msg)
			if err != nil {
				t.Fatal(err)
			}
			m, err := wire.ParseEncrypt0(b)
			if err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			if !bytes.Equal(m.Ciphertext[:len(ct)], ct) {
				t.Errorf("%v: wire.Seal ciphertext %x, want %x", c, m.Ciphertext[:len(ct)], ct)
			}
			if pt, err := m.Open(wire.NewKey(key), iv, aad); err != nil || !bytes.Equal(pt, msg) {
				t.Errorf("%v: wire Open = %x, %v", c, pt, err)
			}
			m.Ciphertext[len(m.Ciphertext)-1] ^= 0x80
			if _, err := m.Open(wire.NewKey(key), iv, aad); !errors.Is(err, wire.ErrDecrypt) {
				t.Errorf("%v: wire Open of a modified tag: %v", c, err)
			}
		}
	}
	t.Logf("%d valid, %d invalid", valid, invalid)
}
