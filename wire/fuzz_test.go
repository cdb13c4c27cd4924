package wire_test

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"os"
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
	"SessionRequest/proof", "SessionResponse/warning", "Rotation",
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

// Three fixed P-256 keys for rotations: A → B is a rotation signed by A;
// B → C is the rotation of testdata/vectors/rotation.json.
const (
	rotCluster = "cluster-1" // the cluster of rotation.json
	scalarC    = "02d1f7e6f26c43d4868d87ceb2353161740aacf1f7163647984b522a848df1c3"
)

// signRotation returns the rotation from old to new for cluster, signed by
// old as a CH signs it (keysvc.PrepareRotation).
func signRotation(tb testing.TB, cluster string, old, new *ecdsa.PrivateKey) []byte {
	tb.Helper()
	oldKey, err := wire.EncodePublicKey(&old.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	newKey, err := wire.EncodePublicKey(&new.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	thumb := wire.Thumbprint(&old.PublicKey)
	b, err := wire.Sign1(old, thumb[:], wire.AADRotation,
		testutil.MustMarshal(tb, &wire.Rotation{Cluster: cluster, Old: oldKey, New: newKey, Time: 1767222000}))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzVerifyRotation: a device verifies every rotation a /cluster answer
// carries, and the ledger every rotate event. Seeds: the vectors (among
// them rotation.json's, valid) and rotations A → B, B → A signed here.
// Properties: no panic; every error is ErrMalformed or ErrBadSignature; what
// verifies is a valid rotation for the cluster asked, between two different
// keys, whose kid is the old key's thumbprint and whose signature verifies
// under the old key with the rotation's AAD only.
func FuzzVerifyRotation(f *testing.F) {
	for _, s := range testutil.VectorSeeds(f, "../testdata/vectors") {
		f.Add(s)
	}
	a, b := privKey(f, scalarA), privKey(f, scalarB)
	f.Add(signRotation(f, rotCluster, a, b))
	f.Add(signRotation(f, rotCluster, b, a))
	f.Fuzz(func(t *testing.T, signed []byte) {
		r, old, new, err := wire.VerifyRotation(signed, rotCluster)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrBadSignature) {
				t.Fatalf("VerifyRotation error %v is neither ErrMalformed nor ErrBadSignature", err)
			}
			return
		}
		if err := r.Validate(); err != nil || r.Cluster != rotCluster {
			t.Fatalf("verified an invalid rotation %+v (%v) for %q", r, err, rotCluster)
		}
		if old.Equal(new) {
			t.Fatal("verified a rotation to the same key")
		}
		if o, err := wire.ParsePublicKey(r.Old); err != nil || !o.Equal(old) {
			t.Fatalf("old key is not the rotation's: %v", err)
		}
		if n, err := wire.ParsePublicKey(r.New); err != nil || !n.Equal(new) {
			t.Fatalf("new key is not the rotation's: %v", err)
		}
		s, err := wire.ParseSign1(signed)
		if err != nil {
			t.Fatalf("verified bytes do not parse: %v", err)
		}
		if thumb := wire.Thumbprint(old); !bytes.Equal(s.KID, thumb[:]) {
			t.Fatal("verified a rotation whose kid is not the old key's thumbprint")
		}
		if err := s.Verify(old, wire.AADJoinResponse); err == nil {
			t.Fatal("a rotation's signature verifies with another AAD")
		}
		if _, _, _, err := wire.VerifyRotation(signed, "cluster-2"); err == nil {
			t.Fatal("a rotation verifies for another cluster")
		}
	})
}

// FuzzFollowRotations: what a device runs on a /cluster answer offering a
// key it does not trust (device.acceptKey): the answer's rotations and key,
// from the key it trusts. The input is a ClusterInfo payload, decoded as
// the device decodes it, and a byte choosing the trusted key (A, B, C or a
// key of no rotation). Seeds: answers carrying A → B, A → B → C, and
// rotation.json's B → C. Properties: no panic; every error is ErrMalformed
// or ErrBadSignature; a success means every rotation verifies, one of them
// is from the trusted key, and the last one is to the key offered.
func FuzzFollowRotations(f *testing.F) {
	a, b, c := privKey(f, scalarA), privKey(f, scalarB), privKey(f, scalarC)
	thumb := func(k *ecdsa.PrivateKey) []byte { t := wire.Thumbprint(&k.PublicKey); return t[:] }
	trusted := [][]byte{thumb(a), thumb(b), thumb(c), bytes.Repeat([]byte{7}, 32)}
	vector := vectorRotation(f)
	info := func(to *ecdsa.PrivateKey, rotations ...[]byte) []byte {
		key, err := wire.EncodePublicKey(&to.PublicKey)
		if err != nil {
			f.Fatal(err)
		}
		return testutil.MustMarshal(f, &wire.ClusterInfo{Cluster: rotCluster, Key: key,
			Thumbprint: thumb(to), Lat: 1, Lon: -1, Radius: 500, Rotations: rotations})
	}
	ab, bc := signRotation(f, rotCluster, a, b), signRotation(f, rotCluster, b, c)
	for _, chain := range []struct {
		from, to *ecdsa.PrivateKey
		rs       [][]byte
	}{{a, b, [][]byte{ab}}, {a, c, [][]byte{ab, bc}}, {b, c, [][]byte{vector}}, {a, c, [][]byte{ab, vector}}} {
		if got, err := wire.FollowRotations(thumb(chain.from), chain.rs, rotCluster, &chain.to.PublicKey); err != nil || !got.Equal(&chain.from.PublicKey) {
			f.Fatalf("seed chain does not verify: %v", err)
		}
	}
	for sel := range trusted {
		f.Add(byte(sel), info(b, ab))
		f.Add(byte(sel), info(c, ab, bc))
		f.Add(byte(sel), info(c, vector))
		f.Add(byte(sel), info(c, ab, vector))
	}
	f.Fuzz(func(t *testing.T, sel byte, payload []byte) {
		var ci wire.ClusterInfo
		if err := wire.Decode(payload, &ci); err != nil {
			return // FuzzDecode's
		}
		want, err := wire.ParsePublicKey(ci.Key)
		if err != nil {
			return
		}
		from := trusted[int(sel)%len(trusted)]
		got, err := wire.FollowRotations(from, ci.Rotations, ci.Cluster, want)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrBadSignature) {
				t.Fatalf("FollowRotations error %v is neither ErrMalformed nor ErrBadSignature", err)
			}
			return
		}
		fromTrusted := false
		var last *ecdsa.PublicKey
		for i, r := range ci.Rotations {
			_, old, new, err := wire.VerifyRotation(r, ci.Cluster)
			if err != nil {
				t.Fatalf("followed rotation %d does not verify: %v", i, err)
			}
			th := wire.Thumbprint(old)
			fromTrusted = fromTrusted || bytes.Equal(th[:], from)
			last = new
		}
		if !fromTrusted || last == nil || !last.Equal(want) {
			t.Fatalf("followed rotations that do not lead from %x to the key offered", from)
		}
		if th := wire.Thumbprint(got); !bytes.Equal(th[:], from) {
			t.Fatalf("FollowRotations returned key %x, not the trusted %x", th, from)
		}
	})
}

// vectorRotation returns the signed rotation of testdata/vectors/rotation.json.
func vectorRotation(tb testing.TB) []byte {
	tb.Helper()
	raw, err := os.ReadFile("../testdata/vectors/rotation.json")
	if err != nil {
		tb.Fatal(err)
	}
	var v struct {
		Sign1 string `json:"sign1"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		tb.Fatal(err)
	}
	return testutil.MustHex(tb, v.Sign1)
}
