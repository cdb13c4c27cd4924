package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// credentialFor is a valid credential of id for the device key of scalarA.
func credentialFor(tb testing.TB, id string) wire.Credential {
	tb.Helper()
	th := wire.Thumbprint(&privKey(tb, scalarA).PublicKey)
	return wire.Credential{ID: id, Key: th[:], NotBefore: 1_767_225_600, NotAfter: 1_924_992_000}
}

// TestCredentialRoundTrip: a credential issued by a fleet key parses back to
// its fields, names the fleet key by its kid, verifies under that key only,
// and fits the size a join can carry (the size is what the credential adds
// to every join of a device: keep it small).
func TestCredentialRoundTrip(t *testing.T) {
	fleet, other := privKey(t, scalarB), privKey(t, scalarA)
	c := credentialFor(t, "sensor-01")
	b, err := wire.IssueCredential(fleet, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("credential for a 9-byte ID: %d bytes", len(b))
	if len(b) > 160 {
		t.Errorf("credential is %d bytes, want at most 160", len(b))
	}
	s, err := wire.ParseCredential(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != c.ID || !bytes.Equal(s.Key, c.Key) || s.NotBefore != c.NotBefore || s.NotAfter != c.NotAfter {
		t.Errorf("parsed %+v, issued %+v", s.Credential, c)
	}
	if !bytes.Equal(s.KID, wire.FleetKID(&fleet.PublicKey)) || len(s.KID) != wire.FleetKIDLen {
		t.Errorf("kid %x, want %x", s.KID, wire.FleetKID(&fleet.PublicKey))
	}
	if err := s.Verify(&fleet.PublicKey); err != nil {
		t.Errorf("Verify under the fleet key: %v", err)
	}
	if err := s.Verify(&other.PublicKey); !errors.Is(err, wire.ErrBadSignature) {
		t.Errorf("Verify under another key = %v, want ErrBadSignature", err)
	}
}

// TestCredentialRejections: every malformed credential is ErrMalformed
// before any signature check; a credential altered after signing, or one
// signed as another message type, fails Verify.
func TestCredentialRejections(t *testing.T) {
	fleet := privKey(t, scalarB)
	kid := wire.FleetKID(&fleet.PublicKey)
	sign := func(kid, aad []byte, payload any) []byte {
		b, err := wire.Sign1(fleet, kid, aad, testutil.MustMarshal(t, payload))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := credentialFor(t, "sensor-01")
	mod := func(f func(*wire.Credential)) wire.Credential { c := good; f(&c); return c }
	malformed := map[string][]byte{
		"empty":               {},
		"not CBOR":            []byte("credential"),
		"no kid":              sign(nil, wire.AADCredential, good),
		"short kid":           sign(kid[:4], wire.AADCredential, good),
		"full thumbprint kid": sign(bytes.Repeat(kid, 4), wire.AADCredential, good),
		"bad ID":              sign(kid, wire.AADCredential, mod(func(c *wire.Credential) { c.ID = "a/b" })),
		"short thumbprint":    sign(kid, wire.AADCredential, mod(func(c *wire.Credential) { c.Key = c.Key[:16] })),
		"empty validity":      sign(kid, wire.AADCredential, mod(func(c *wire.Credential) { c.NotAfter = c.NotBefore })),
		"unknown payload key": sign(kid, wire.AADCredential, map[int]any{1: good.ID, 2: good.Key, 3: good.NotBefore, 4: good.NotAfter, 5: 0}),
		"missing payload key": sign(kid, wire.AADCredential, map[int]any{1: good.ID, 2: good.Key, 4: good.NotAfter}),
		"payload not a map":   sign(kid, wire.AADCredential, []any{good.ID}),
		"trailing bytes":      append(sign(kid, wire.AADCredential, good), 0),
		"over 256 bytes":      append(sign(kid, wire.AADCredential, good), make([]byte, wire.MaxCredentialLen)...),
	}
	for name, b := range malformed {
		if _, err := wire.ParseCredential(b); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: ParseCredential = %v, want ErrMalformed", name, err)
		}
	}
	badSig := map[string][]byte{
		"signed as a join request": sign(kid, wire.AADJoinRequest, good),
		"last signature byte":      flipLastByte(sign(kid, wire.AADCredential, good)),
	}
	// The payload changed after signing: the ID of another device.
	honest := sign(kid, wire.AADCredential, good)
	forged := bytes.Replace(honest, []byte("sensor-01"), []byte("sensor-02"), 1)
	badSig["ID changed after signing"] = forged
	for name, b := range badSig {
		s, err := wire.ParseCredential(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := s.Verify(&fleet.PublicKey); !errors.Is(err, wire.ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
}

// TestIssueCredentialRefusesInvalid: the issuer checks what it signs.
func TestIssueCredentialRefusesInvalid(t *testing.T) {
	c := credentialFor(t, "sensor-01")
	c.NotAfter = c.NotBefore - 1
	if _, err := wire.IssueCredential(privKey(t, scalarB), c); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("IssueCredential of an empty period = %v, want ErrMalformed", err)
	}
}

// TestJoinRequestCredentialField: key 8 of join-req carries 1-256 bytes.
func TestJoinRequestCredentialField(t *testing.T) {
	key := testutil.MustHex(t, "a5010203262001215820"+rfcX+"225820"+rfcY)
	base := wire.JoinRequest{Cluster: "c", ID: "d", Key: key, Nonce: make([]byte, 16)}
	for _, tc := range []struct {
		cred []byte
		ok   bool
	}{{nil, true}, {[]byte{1}, true}, {make([]byte, 256), true}, {[]byte{}, false}, {make([]byte, 257), false}} {
		r := base
		r.Credential = tc.cred
		b := testutil.MustMarshal(t, map[int]any{1: r.Cluster, 2: r.ID, 3: cbor.RawMessage(key), 4: 0, 5: 0, 6: r.Nonce, 8: tc.cred})
		if tc.cred == nil {
			b = testutil.MustMarshal(t, &r)
		}
		var got wire.JoinRequest
		err := wire.Decode(b, &got)
		if (err == nil) != tc.ok {
			t.Errorf("credential of %d bytes: %v, want ok=%v", len(tc.cred), err, tc.ok)
		}
		if err == nil && !bytes.Equal(got.Credential, tc.cred) {
			t.Errorf("credential decoded as %x", got.Credential)
		}
	}
}

func flipLastByte(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] ^= 1
	return c
}
