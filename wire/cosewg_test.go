package wire_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// cose-wg/Examples vectors, copied into testdata/cose-wg (see its README).
// Our decoders are stricter than COSE: untagged only (RFC 9052 §2: the
// Content-Format says which structure a payload is), and a protected header
// of exactly {alg} with our one algorithm. So each example states what WE
// expect, with the reason where it differs from upstream's pass/fail.

// coseWGExample is the part of a cose-wg/Examples file the tests read.
type coseWGExample struct {
	Title string `json:"title"`
	Fail  bool   `json:"fail"`
	Input struct {
		Plaintext string `json:"plaintext"`
		Sign0     *struct {
			Key      jwk    `json:"key"`
			External string `json:"external"`
		} `json:"sign0"`
		Encrypted *struct {
			External string `json:"external"`
		} `json:"encrypted"`
		RNGStream []string `json:"rng_stream"`
	} `json:"input"`
	Intermediates struct {
		CEK        string `json:"CEK_hex"`
		AAD        string `json:"AAD_hex"`
		Recipients []struct {
			Context string `json:"Context_hex"`
			Secret  string `json:"Secret_hex"`
		} `json:"recipients"`
	} `json:"intermediates"`
	Output struct {
		CBOR string `json:"cbor"`
	} `json:"output"`
}

// jwk is an EC key as the examples write it (base64url coordinates).
type jwk struct {
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// coseKey returns k's public part as a COSE_Key.
func (k jwk) coseKey(t *testing.T) []byte {
	t.Helper()
	if k.Crv != "P-256" {
		t.Fatalf("key on %s", k.Crv)
	}
	return testutil.MustMarshal(t, map[int]any{1: 2, -1: 1, -2: b64(t, k.X), -3: b64(t, k.Y)})
}

func loadCoseWG(t *testing.T, name string) coseWGExample {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../testdata/cose-wg", name))
	if err != nil {
		t.Fatal(err)
	}
	var ex coseWGExample
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ex
}

// untag checks that the example, if tagged, is refused as it stands (our
// decoders forbid tags) and returns it without the tag when the tag is the
// structure's own (wantTag); any other tag leaves nothing to decode (nil).
func untag(t *testing.T, b []byte, wantTag byte, parse func([]byte) error) []byte {
	t.Helper()
	if b[0]>>5 != 6 { // major type 6: a tag
		return b
	}
	if err := parse(b); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("tagged input: got %v, want ErrMalformed", err)
	}
	if b[0] == 0xc0|wantTag {
		return b[1:]
	}
	return nil
}

// Outcomes of a cose-wg example through our decoders.
const (
	outOK        = "ok"
	outTagged    = "refused: tagged" // only its tag is wrong, and we refuse every tag
	outMalformed = "malformed"
	outRejected  = "rejected" // well-formed, but the signature or tag does not verify
)

// TestCoseWGSign1 replays cose-wg/Examples sign1-tests through
// wire.ParseSign1 and Verify.
func TestCoseWGSign1(t *testing.T) {
	cases := []struct {
		file, want, why string
	}{
		{"sign-pass-01.json", outMalformed, "alg only in the unprotected header: our profile requires protected = {1: -7}"},
		{"sign-pass-02.json", outOK, "tagged; with external AAD"},
		{"sign-pass-03.json", outOK, "untagged, as we send it"},
		{"sign-fail-01.json", outTagged, "wrong tag 998"},
		{"sign-fail-02.json", outRejected, "payload changed"},
		{"sign-fail-03.json", outMalformed, "alg -999"},
		{"sign-fail-04.json", outMalformed, `alg "unknown"`},
		{"sign-fail-06.json", outMalformed, "extra protected header (content type)"},
		{"sign-fail-07.json", outRejected, "signed protected header had a content type, removed"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			ex := loadCoseWG(t, "sign1-tests/"+tc.file)
			if ex.Fail && tc.want == outOK {
				t.Fatalf("%s is a failure case upstream", ex.Title)
			}
			pub, err := wire.ParsePublicKey(ex.Input.Sign0.Key.coseKey(t))
			if err != nil {
				t.Fatal(err)
			}
			b := untag(t, testutil.MustHex(t, ex.Output.CBOR), 18, func(b []byte) error { _, err := wire.ParseSign1(b); return err })
			got := outTagged
			if b != nil {
				s, err := wire.ParseSign1(b)
				switch {
				case errors.Is(err, wire.ErrMalformed):
					got = outMalformed
				case err != nil:
					t.Fatalf("ParseSign1: %v", err)
				default:
					err := s.Verify(pub, testutil.MustHex(t, ex.Input.Sign0.External))
					switch {
					case err == nil:
						got = outOK
						if string(s.Payload) != ex.Input.Plaintext {
							t.Errorf("payload %q", s.Payload)
						}
					case errors.Is(err, wire.ErrBadSignature):
						got = outRejected
					default:
						t.Fatalf("Verify: %v", err)
					}
				}
			}
			if got != tc.want {
				t.Errorf("%s (%s): %s, want %s", ex.Title, tc.why, got, tc.want)
			}
		})
	}
}

// TestCoseWGEncrypt0 replays cose-wg/Examples encrypted-tests (COSE_Encrypt0,
// AES-128-GCM, key and IV given) through wire.ParseEncrypt0 and Open, and
// checks that wire.Seal reproduces the passing examples byte for byte.
func TestCoseWGEncrypt0(t *testing.T) {
	cases := []struct {
		file, want, why string
	}{
		{"aes-gcm-01.json", outOK, "tagged; RFC 9052's example"},
		{"enc-pass-01.json", outMalformed, "alg in the unprotected header: our profile requires protected = {1: 1}"},
		{"enc-pass-02.json", outOK, "tagged; with external AAD"},
		{"enc-pass-03.json", outMalformed, "untagged, but alg in the unprotected header"},
		{"enc-fail-01.json", outTagged, "wrong tag 995"},
		{"enc-fail-02.json", outRejected, "tag changed"},
		{"enc-fail-03.json", outMalformed, "alg -999"},
		{"enc-fail-04.json", outMalformed, `alg "Unknown"`},
		{"enc-fail-06.json", outMalformed, "extra protected header (content type)"},
		{"enc-fail-07.json", outRejected, "authenticated protected header had a content type, removed"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			ex := loadCoseWG(t, "encrypted-tests/"+tc.file)
			if ex.Fail && tc.want == outOK {
				t.Fatalf("%s is a failure case upstream", ex.Title)
			}
			key := [wire.KeySize]byte(testutil.MustHex(t, ex.Intermediates.CEK))
			iv := [wire.NonceSize]byte(testutil.MustHex(t, ex.Input.RNGStream[0]))
			external := testutil.MustHex(t, ex.Input.Encrypted.External)
			b := untag(t, testutil.MustHex(t, ex.Output.CBOR), 16, func(b []byte) error { _, err := wire.ParseEncrypt0(b); return err })
			got := outTagged
			if b != nil {
				m, err := wire.ParseEncrypt0(b)
				switch {
				case errors.Is(err, wire.ErrMalformed):
					got = outMalformed
				case err != nil:
					t.Fatalf("ParseEncrypt0: %v", err)
				default:
					if !bytes.Equal(m.Unprotected.IV, iv[:]) {
						t.Fatalf("IV %x, want %x", m.Unprotected.IV, iv)
					}
					pt, err := m.Open(wire.NewKey(key), iv, external)
					switch {
					case err == nil:
						got = outOK
						if string(pt) != ex.Input.Plaintext {
							t.Errorf("plaintext %q", pt)
						}
						sealed, err := wire.Seal(wire.NewKey(key), iv, wire.Encrypt0Header{IV: iv[:]}, external, pt)
						if err != nil || !bytes.Equal(sealed, b) {
							t.Errorf("Seal = %x, %v; want %x", sealed, err, b)
						}
					case errors.Is(err, wire.ErrDecrypt):
						got = outRejected
					default:
						t.Fatalf("Open: %v", err)
					}
				}
			}
			if got != tc.want {
				t.Errorf("%s (%s): %s, want %s", ex.Title, tc.why, got, tc.want)
			}
		})
	}
}

// coseRecipient is one COSE_recipient of a COSE_Encrypt or COSE_Mac.
type coseRecipient struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[int]cbor.RawMessage
	Ciphertext  []byte
}

// TestCoseWGECDHHKDF replays the P-256 / HKDF-SHA-256 examples of
// cose-wg/Examples ecdh-direct-examples, ephemeral-static (ECDH-ES) and
// static-static (ECDH-SS, the shape of our K_m). We do not parse COSE_Encrypt
// or COSE_Mac with recipients (our protocol sends neither: ParseEncrypt0
// refuses them), so the examples pin the parts we share: the sender's
// COSE_Key through wire.ParsePublicKey, the ECDH shared secret through
// crypto/ecdh, the key through crypto/hkdf with the example's context as
// info, and for the AES-128-GCM example the content through wire's AEAD.
func TestCoseWGECDHHKDF(t *testing.T) {
	cases := []struct {
		file      string
		senderHdr int  // -1: ephemeral key (ES), -2: static key (SS)
		content   bool // A128GCM content we can open
	}{
		{"p256-hkdf-256-01.json", -1, true},
		{"p256-hkdf-256-02.json", -1, false}, // A256GCM: not our suite
		{"p256-hkdf-256-03.json", -1, false}, // HS512 MAC
		{"p256-ss-hkdf-256-01.json", -2, true},
		{"p256-ss-hkdf-256-02.json", -2, false},
		{"p256-ss-hkdf-256-03.json", -2, false},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("../testdata/cose-wg/ecdh-direct-examples", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var ex coseWGExample
			var keys struct {
				Input struct {
					Body *struct {
						Recipients []struct {
							Key       jwk  `json:"key"`
							SenderKey *jwk `json:"sender_key"`
						} `json:"recipients"`
					} `json:"enveloped"`
					Mac *struct {
						Recipients []struct {
							Key       jwk  `json:"key"`
							SenderKey *jwk `json:"sender_key"`
						} `json:"recipients"`
					} `json:"mac"`
				} `json:"input"`
			}
			if err := json.Unmarshal(raw, &ex); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &keys); err != nil {
				t.Fatal(err)
			}
			body := keys.Input.Body
			if body == nil {
				body = keys.Input.Mac
			}
			rcpt := body.Recipients[0]

			msg := testutil.MustHex(t, ex.Output.CBOR)
			if msg[0] != 0xd8 || (msg[1] != 96 && msg[1] != 97) { // tag 96 COSE_Encrypt, 97 COSE_Mac
				t.Fatalf("not a tagged COSE_Encrypt or COSE_Mac: %x", msg[:2])
			}
			if _, err := wire.ParseEncrypt0(msg[2:]); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParseEncrypt0 of a structure with recipients: %v, want ErrMalformed", err)
			}
			var items []cbor.RawMessage
			if err := wire.Unmarshal(msg[2:], &items); err != nil {
				t.Fatal(err)
			}
			var recipients []coseRecipient
			if err := wire.Unmarshal(items[len(items)-1], &recipients); err != nil || len(recipients) != 1 {
				t.Fatalf("recipients: %v", err)
			}

			// The sender's public key, as the recipient receives it.
			sender, err := wire.ParsePublicKey(recipients[0].Unprotected[tc.senderHdr])
			if err != nil {
				t.Fatalf("ParsePublicKey(header %d): %v", tc.senderHdr, err)
			}
			senderScalar := testutil.MustHex(t, ex.Input.RNGStream[0]) // ES: the ephemeral key was drawn from it
			if rcpt.SenderKey != nil {
				senderScalar = b64(t, rcpt.SenderKey.D)
			}
			senderPriv, err := ecdh.P256().NewPrivateKey(senderScalar[:32])
			if err != nil {
				t.Fatal(err)
			}
			esender := ecdhKey(t, sender)
			if !esender.Equal(senderPriv.PublicKey()) {
				t.Fatal("sender key in the message is not the example's sender key")
			}
			rpub, err := wire.ParsePublicKey(rcpt.Key.coseKey(t))
			if err != nil {
				t.Fatal(err)
			}
			rpriv, err := ecdh.P256().NewPrivateKey(b64(t, rcpt.Key.D))
			if err != nil {
				t.Fatal(err)
			}
			erecipient := ecdhKey(t, rpub)
			if !erecipient.Equal(rpriv.PublicKey()) {
				t.Fatal("recipient d does not match its x, y")
			}

			// Both sides agree on Z (static-static is symmetric, like K_m's).
			z, err := rpriv.ECDH(esender)
			if err != nil {
				t.Fatal(err)
			}
			secret := ex.Intermediates.Recipients[0]
			if !bytes.Equal(z, testutil.MustHex(t, secret.Secret)) {
				t.Fatalf("Z = %x, want %s", z, secret.Secret)
			}
			if z2, _ := senderPriv.ECDH(erecipient); !bytes.Equal(z2, z) {
				t.Fatal("sender and recipient disagree on Z")
			}
			cek := testutil.MustHex(t, ex.Intermediates.CEK)
			got, err := hkdf.Key(sha256.New, z, nil, string(testutil.MustHex(t, secret.Context)), len(cek))
			if err != nil || !bytes.Equal(got, cek) {
				t.Fatalf("HKDF = %x, %v; want %x", got, err, cek)
			}

			if !tc.content {
				return
			}
			var unprot struct {
				IV []byte `cbor:"5,keyasint"`
			}
			var ct []byte
			if err := wire.Unmarshal(items[1], &unprot); err != nil {
				t.Fatal(err)
			}
			if err := wire.Unmarshal(items[2], &ct); err != nil {
				t.Fatal(err)
			}
			aead, err := wire.AEADForTest([wire.KeySize]byte(cek))
			if err != nil {
				t.Fatal(err)
			}
			pt, err := aead.Open(nil, unprot.IV, ct, testutil.MustHex(t, ex.Intermediates.AAD))
			if err != nil || string(pt) != ex.Input.Plaintext {
				t.Fatalf("content = %q, %v", pt, err)
			}
		})
	}
}

func ecdhKey(t *testing.T, k *ecdsa.PublicKey) *ecdh.PublicKey {
	t.Helper()
	p, err := k.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
