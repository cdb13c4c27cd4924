package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

func TestSign1RoundTrip(t *testing.T) {
	key := privKey(t, scalarA)
	payload := []byte("any payload, CBOR or not")
	b, err := wire.Sign1(key, []byte("sensor-01"), wire.AADJoinRequest, payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := wire.ParseSign1(b)
	if err != nil {
		t.Fatalf("ParseSign1: %v", err)
	}
	if string(s.KID) != "sensor-01" || !bytes.Equal(s.Payload, payload) {
		t.Errorf("ParseSign1: kid %q payload %q", s.KID, s.Payload)
	}
	if err := s.Verify(&key.PublicKey, wire.AADJoinRequest); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// Untagged, protected header exactly A1 01 26, signature r ‖ s.
	if !bytes.HasPrefix(b, []byte{0x84, 0x43, 0xa1, 0x01, 0x26}) {
		t.Errorf("Sign1 = %x, want an untagged array starting 84 43 a1 01 26", b)
	}
	if !bytes.HasSuffix(b[:len(b)-64], []byte{0x58, 0x40}) {
		t.Errorf("Sign1 does not end with a 64-byte signature: %x", b)
	}
}

func TestSign1VerifyFails(t *testing.T) {
	key, other := privKey(t, scalarA), privKey(t, scalarB)
	payload := testutil.MustMarshal(t, map[int]string{1: "cluster-1"})
	good, err := wire.Sign1(key, []byte("sensor-01"), wire.AADJoinRequest, payload)
	if err != nil {
		t.Fatal(err)
	}
	sig := good[len(good)-64:]
	// rebuild makes [protected, {4: kid}, payload, sig] around changed parts.
	rebuild := func(payload, sig []byte) []byte {
		return testutil.MustMarshal(t, []any{[]byte{0xa1, 0x01, 0x26}, map[int][]byte{4: []byte("sensor-01")}, payload, sig})
	}
	if !bytes.Equal(rebuild(payload, sig), good) {
		t.Fatal("rebuild does not reproduce Sign1's layout")
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x80
		return c
	}
	tamperedPayload := bytes.Clone(payload)
	tamperedPayload[len(tamperedPayload)-1] ^= 0x01

	tests := []struct {
		name string
		msg  []byte
		aad  []byte
		key  bool // verify under other
	}{
		{"other key", good, wire.AADJoinRequest, true},
		{"AAD of another message type", good, wire.AADJoinResponse, false},
		{"empty AAD", good, nil, false},
		{"payload tampered", rebuild(tamperedPayload, sig), wire.AADJoinRequest, false},
		{"r tampered", rebuild(payload, flip(sig, 0)), wire.AADJoinRequest, false},
		{"s tampered", rebuild(payload, flip(sig, 63)), wire.AADJoinRequest, false},
		{"r and s swapped", rebuild(payload, cat(sig[32:], sig[:32])), wire.AADJoinRequest, false},
		{"signature of 63 bytes", rebuild(payload, sig[1:]), wire.AADJoinRequest, false},
		{"signature of 65 bytes", rebuild(payload, cat([]byte{0}, sig)), wire.AADJoinRequest, false},
		{"empty signature", rebuild(payload, []byte{}), wire.AADJoinRequest, false},
		{"zero signature", rebuild(payload, make([]byte, 64)), wire.AADJoinRequest, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := wire.ParseSign1(tc.msg)
			if err != nil {
				if errors.Is(err, wire.ErrMalformed) {
					return // rejected even earlier: fine
				}
				t.Fatalf("ParseSign1: %v", err)
			}
			pub := &key.PublicKey
			if tc.key {
				pub = &other.PublicKey
			}
			if err := s.Verify(pub, tc.aad); !errors.Is(err, wire.ErrBadSignature) {
				t.Errorf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestParseSign1Malformed(t *testing.T) {
	sig := make([]byte, 64)
	payload := []byte{0xa0}
	kid := map[int][]byte{4: []byte("sensor-01")}
	es256 := []byte{0xa1, 0x01, 0x26}
	good := testutil.MustMarshal(t, []any{es256, kid, payload, sig})
	if _, err := wire.ParseSign1(good); err != nil {
		t.Fatalf("ParseSign1(well-formed) = %v", err)
	}
	tests := []struct {
		name string
		msg  []byte
	}{
		{"tagged COSE_Sign1 (18)", cat([]byte{0xd2}, good)},
		{"alg ES384", testutil.MustMarshal(t, []any{[]byte{0xa1, 0x01, 0x38, 0x22}, kid, payload, sig})},
		{"alg EdDSA", testutil.MustMarshal(t, []any{[]byte{0xa1, 0x01, 0x27}, kid, payload, sig})},
		{"empty protected header", testutil.MustMarshal(t, []any{[]byte{}, kid, payload, sig})},
		{"protected header with kid too", testutil.MustMarshal(t, []any{testutil.MustMarshal(t, map[int]any{1: -7, 4: []byte("x")}),
			kid, payload, sig})},
		{"protected header not a bstr", testutil.MustMarshal(t, []any{map[int]int{1: -7}, kid, payload, sig})},
		{"protected header a text string", testutil.MustMarshal(t, []any{"\xa1\x01\x26", kid, payload, sig})},
		{"alg as text", testutil.MustMarshal(t, []any{testutil.MustMarshal(t, map[int]string{1: "ES256"}), kid, payload, sig})},
		{"alg twice", testutil.MustMarshal(t, []any{[]byte{0xa2, 0x01, 0x26, 0x01, 0x26}, kid, payload, sig})},
		{"empty signature", testutil.MustMarshal(t, []any{es256, kid, payload, []byte{}})},
		{"detached payload", testutil.MustMarshal(t, []any{es256, kid, nil, sig})},
		{"payload a text string", testutil.MustMarshal(t, []any{es256, kid, "text", sig})},
		{"unprotected header an array", testutil.MustMarshal(t, []any{es256, []any{}, payload, sig})},
		{"signature an array", testutil.MustMarshal(t, []any{es256, kid, payload, []any{}})},
		{"three items", testutil.MustMarshal(t, []any{es256, kid, payload})},
		{"five items", testutil.MustMarshal(t, []any{es256, kid, payload, sig, sig})},
		{"a map", testutil.MustMarshal(t, map[int]any{1: es256})},
		{"trailing byte", cat(good, []byte{0x00})},
		{"truncated", good[:len(good)-1]},
		{"indefinite-length array", cat([]byte{0x9f}, good[1:], []byte{0xff})},
		{"empty", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := wire.ParseSign1(tc.msg); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParseSign1(%x) = %v, want ErrMalformed", tc.msg, err)
			}
		})
	}
}
