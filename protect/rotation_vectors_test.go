package protect_test

import (
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// newCHScalar is the CH key after the vectors' rotation: a fixed P-256
// scalar (the RFC 9052 C.7.2 "peregrin.took@tuckborough.example" key).
const newCHScalar = "02d1f7e6f26c43d4868d87ceb2353161740aacf1f7163647984b522a848df1c3"

const vecRotationTime = 1767225600 - 3600

type rotationVector struct {
	Description   string   `json:"description"`
	Expect        string   `json:"expect"`
	Cluster       string   `json:"cluster"`
	OldPriv       hexBytes `json:"old_priv"`
	OldCOSEKey    hexBytes `json:"old_cose_key"`
	OldThumbprint hexBytes `json:"old_thumbprint"`
	NewPriv       hexBytes `json:"new_priv"`
	NewCOSEKey    hexBytes `json:"new_cose_key"`
	NewThumbprint hexBytes `json:"new_thumbprint"`
	Time          uint64   `json:"time"`
	Protected     hexBytes `json:"protected"`
	ExternalAAD   hexBytes `json:"external_aad"`
	Payload       hexBytes `json:"payload"`
	ToBeSigned    hexBytes `json:"to_be_signed"`
	Signature     hexBytes `json:"signature"`
	Sign1         hexBytes `json:"sign1"`
}

// genRotations returns the rotation from the vectors' CH key to the new one
// (signed by the old key: ok) and the same signed by the new key (a
// rotation the old key never made: bad signature).
func genRotations(t *testing.T) []rotationVector {
	old, nu := privKey(t, testutil.MustHex(t, chScalar)), privKey(t, testutil.MustHex(t, newCHScalar))
	oldTh, newTh := wire.Thumbprint(&old.PublicKey), wire.Thumbprint(&nu.PublicKey)
	payload := testutil.MustMarshal(t, &wire.Rotation{Cluster: vecCluster, Old: coseKey(t, &old.PublicKey), New: coseKey(t, &nu.PublicKey), Time: vecRotationTime})
	protected := []byte{0xa1, 0x01, 0x26}
	var out []rotationVector
	for i, signer := range []rfc6979{{old}, {nu}} {
		b, err := wire.Sign1(signer, oldTh[:], wire.AADRotation, payload)
		if err != nil {
			t.Fatal(err)
		}
		v := rotationVector{
			Description: "CH key rotation (section 6.1): untagged COSE_Sign1 by the OLD CH key (kid = its thumbprint, " +
				"external_aad \"iotguard rotate\") over rotation = {1: cluster, 2: old COSE_Key, 3: new COSE_Key, 4: time}. " +
				"A device that pinned old_thumbprint accepts new_cose_key because this verifies under the old key. " +
				"RFC 6979 deterministic signature.",
			Expect: expOK, Cluster: vecCluster,
			OldPriv: testutil.MustHex(t, chScalar), OldCOSEKey: coseKey(t, &old.PublicKey), OldThumbprint: oldTh[:],
			NewPriv: testutil.MustHex(t, newCHScalar), NewCOSEKey: coseKey(t, &nu.PublicKey), NewThumbprint: newTh[:],
			Time: vecRotationTime, Protected: protected, ExternalAAD: wire.AADRotation, Payload: payload,
			ToBeSigned: sigStructure(t, protected, wire.AADRotation, payload), Signature: b[len(b)-64:], Sign1: b,
		}
		if i == 1 {
			v.Description = "The rotation of rotation.json signed by the NEW key instead of the old one (kid still the " +
				"old thumbprint): whoever holds a key cannot rotate a device's pin to it. Receivers must refuse it."
			v.Expect = expBadSignature
		}
		out = append(out, v)
	}
	return out
}

func checkRotation(t *testing.T, raw []byte) {
	var v rotationVector
	decodeVector(t, raw, &v)
	old, nu := privKey(t, v.OldPriv), privKey(t, v.NewPriv)
	eqHex(t, "old_cose_key", coseKey(t, &old.PublicKey), v.OldCOSEKey)
	eqHex(t, "new_cose_key", coseKey(t, &nu.PublicKey), v.NewCOSEKey)
	oldTh, newTh := wire.Thumbprint(&old.PublicKey), wire.Thumbprint(&nu.PublicKey)
	eqHex(t, "old_thumbprint", oldTh[:], v.OldThumbprint)
	eqHex(t, "new_thumbprint", newTh[:], v.NewThumbprint)
	eqHex(t, "payload", testutil.MustMarshal(t, &wire.Rotation{Cluster: v.Cluster, Old: []byte(v.OldCOSEKey), New: []byte(v.NewCOSEKey), Time: v.Time}), v.Payload)
	eqHex(t, "to_be_signed", sigStructure(t, v.Protected, v.ExternalAAD, v.Payload), v.ToBeSigned)
	eqHex(t, "sign1 layout", testutil.MustMarshal(t, []any{[]byte(v.Protected), map[int][]byte{4: v.OldThumbprint},
		[]byte(v.Payload), []byte(v.Signature)}), v.Sign1)
	if ok := verifyES256(&old.PublicKey, v.ToBeSigned, v.Signature); ok != (v.Expect == expOK) {
		t.Errorf("ES256 under the old key with crypto/ecdsa: %v, expect %s", ok, v.Expect)
	}
	_, gotOld, gotNew, err := wire.VerifyRotation(v.Sign1, v.Cluster)
	if got := outcome(err); got != v.Expect {
		t.Fatalf("VerifyRotation: %s, want %s", got, v.Expect)
	}
	from, err := wire.FollowRotations(v.OldThumbprint, [][]byte{v.Sign1}, v.Cluster, &nu.PublicKey)
	if got := outcome(err); got != v.Expect {
		t.Errorf("FollowRotations from the old pin: %s, want %s", got, v.Expect)
	}
	if v.Expect != expOK {
		return
	}
	if !from.Equal(&old.PublicKey) {
		t.Error("FollowRotations returned another key than the old pin's")
	}
	if !gotOld.Equal(&old.PublicKey) || !gotNew.Equal(&nu.PublicKey) {
		t.Error("VerifyRotation returned other keys")
	}
	if _, _, _, err := wire.VerifyRotation(v.Sign1, "cluster-2"); err == nil {
		t.Error("rotation accepted for another cluster")
	}
	if _, err := wire.FollowRotations(v.NewThumbprint, [][]byte{v.Sign1}, v.Cluster, &old.PublicKey); err == nil {
		t.Error("a rotation followed backwards")
	}
}

// genRekeyKDF is kdf.json after the rotation: the same device, nonces and
// cluster, the new CH key (section 6.2).
func genRekeyKDF(t *testing.T) kdfVector {
	return genKDFWith(t, newCHScalar, "Re-key after a CH key rotation (section 6.2): the member key schedule of kdf.json "+
		"(same device, cluster, device_nonce and ch_nonce) with the NEW CH key of rotation.json: z = ECDH(device_priv, "+
		"new CH public), km_info names the new thumbprint. No new join: the nonces stay those of the member's join.")
}
