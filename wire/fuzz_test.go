package wire_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// Fuzz targets for every decoder of wire. Seeds: every byte field of the
// shared vectors plus one valid instance of each message type. Properties:
// no panic; every error is ErrMalformed; what decodes re-encodes stably.

func FuzzParseSign1(f *testing.F) {
	for _, s := range testutil.VectorSeeds(f, "../testdata/vectors") {
		f.Add(s)
	}
	key := privKey(f, scalarA)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := wire.ParseSign1(b)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParseSign1 error %v is not ErrMalformed", err)
			}
			return
		}
		if s.Payload == nil {
			t.Fatal("ParseSign1 accepted a message without payload")
		}
		for _, aad := range [][]byte{wire.AADJoinRequest, wire.AADJoinResponse, nil} {
			if err := s.Verify(&key.PublicKey, aad); err != nil && !errors.Is(err, wire.ErrBadSignature) {
				t.Fatalf("Verify error %v is not ErrBadSignature", err)
			}
		}
	})
}

func FuzzParseEncrypt0(f *testing.F) {
	for _, s := range testutil.VectorSeeds(f, "../testdata/vectors") {
		f.Add(s)
	}
	var key [wire.KeySize]byte
	var nonce [wire.NonceSize]byte
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.ParseEncrypt0(b)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParseEncrypt0 error %v is not ErrMalformed", err)
			}
			return
		}
		if len(m.Ciphertext) < wire.TagSize {
			t.Fatalf("accepted a ciphertext of %d bytes", len(m.Ciphertext))
		}
		re := testutil.MustMarshal(t, m)
		m2, err := wire.ParseEncrypt0(re)
		if err != nil {
			t.Fatalf("re-encoded message %x does not parse: %v", re, err)
		}
		if re2 := testutil.MustMarshal(t, m2); !bytes.Equal(re, re2) {
			t.Fatalf("re-encoding is not stable: %x then %x", re, re2)
		}
		if _, err := m.Open(wire.NewKey(key), nonce, nil); err != nil && !errors.Is(err, wire.ErrDecrypt) {
			t.Fatalf("Open error %v is not ErrDecrypt", err)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	for _, s := range testutil.VectorSeeds(f, "../testdata/vectors") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := parseNoPanic(b)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParsePublicKey error %v is not ErrMalformed", err)
			}
			return
		}
		th := wire.Thumbprint(pub) // panics on an invalid key
		enc, err := wire.EncodePublicKey(pub)
		if err != nil {
			t.Fatalf("EncodePublicKey of a parsed key: %v", err)
		}
		pub2, err := wire.ParsePublicKey(enc)
		if err != nil {
			t.Fatalf("re-encoded key %x does not parse: %v", enc, err)
		}
		if !pub2.Equal(pub) || wire.Thumbprint(pub2) != th {
			t.Fatal("re-encoding changed the key")
		}
	})
}

// decodeTargets are the message types FuzzDecode chooses from with its first byte.
var decodeTargets = []string{
	"JoinRequest", "VerifyRequest", "SessionRequest", "LeaveRequest", "Hello", "TalkResponse", "Ticket",
	"VerifyResponse", "SessionResponse", "JoinResponse", "ClusterInfo", "LedgerHead", "LeaveResponse", "TalkProof",
	"SessionRequest/proof", "SessionResponse/warning",
}

func FuzzDecode(f *testing.F) {
	seeds := testutil.VectorSeeds(f, "../testdata/vectors")
	valid := validMessages(f)
	for i, name := range decodeTargets {
		f.Add(byte(i), testutil.MustMarshal(f, valid[name]))
		for _, s := range seeds {
			f.Add(byte(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, sel byte, b []byte) {
		proto := validMessages(t)[decodeTargets[int(sel)%len(decodeTargets)]]
		v := newLike(proto)
		if err := wire.Decode(b, v); err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("Decode error %v is not ErrMalformed", err)
			}
			return
		}
		re := testutil.MustMarshal(t, v)
		v2 := newLike(proto)
		if err := wire.Decode(re, v2); err != nil {
			t.Fatalf("%T: re-encoded %x does not decode: %v", v, re, err)
		}
		if re2 := testutil.MustMarshal(t, v2); !bytes.Equal(re, re2) {
			t.Fatalf("%T: re-encoding is not stable: %x then %x", v, re, re2)
		}
		if !reflect.DeepEqual(v2, newLikeDecoded(t, re, proto)) {
			t.Fatalf("%T: decoding is not deterministic", v)
		}
	})
}

func newLikeDecoded(t *testing.T, b []byte, proto wire.Validator) wire.Validator {
	v := newLike(proto)
	if err := wire.Decode(b, v); err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzParseCredential: the credential decoder the CH runs on every join of
// an enrolled cluster, before any signature check. Seeds: the vectors and a
// valid credential. Properties: no panic; every error is ErrMalformed; what
// parses is a valid credential of at most MaxCredentialLen bytes with an
// 8-byte kid, whose Verify answers nil or ErrBadSignature, and which, issued
// again by the fleet key, parses to the same fields.
func FuzzParseCredential(f *testing.F) {
	for _, s := range testutil.VectorSeeds(f, "../testdata/vectors") {
		f.Add(s)
	}
	fleet := privKey(f, scalarB)
	good, err := wire.IssueCredential(fleet, credentialFor(f, "sensor-01"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := wire.ParseCredential(b)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParseCredential error %v is not ErrMalformed", err)
			}
			return
		}
		if len(b) > wire.MaxCredentialLen || len(c.KID) != wire.FleetKIDLen {
			t.Fatalf("accepted %d bytes with a %d-byte kid", len(b), len(c.KID))
		}
		if err := c.Credential.Validate(); err != nil {
			t.Fatalf("accepted an invalid payload: %v", err)
		}
		if err := c.Verify(&fleet.PublicKey); err != nil && !errors.Is(err, wire.ErrBadSignature) {
			t.Fatalf("Verify error %v is not ErrBadSignature", err)
		}
		again, err := wire.IssueCredential(fleet, c.Credential) // canonical: never longer than b
		if err != nil {
			t.Fatalf("re-issue: %v", err)
		}
		c2, err := wire.ParseCredential(again)
		if err != nil || !reflect.DeepEqual(c2.Credential, c.Credential) {
			t.Fatalf("re-issued credential parses to %+v, %v; want %+v", c2, err, c.Credential)
		}
	})
}
