package transparency_test

import (
	"errors"
	"testing"

	"github.com/iotguard/iotguard/internal/rfc9162ref"
	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// FuzzOpenCheckpoint: arbitrary bytes as a signed checkpoint never panic and
// fail only with the documented errors; what opens is a valid checkpoint.
func FuzzOpenCheckpoint(f *testing.F) {
	s := newSigner(f)
	good, err := transparency.SignCheckpoint(s, "cluster-1", 3, [32]byte(rfc9162ref.MTH(blocks(3))), 9)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, v := range testutil.VectorSeeds(f, "../testdata/vectors") {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := transparency.OpenCheckpoint(b, &s.priv.PublicKey, "")
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, transparency.ErrWrongKey) && !errors.Is(err, transparency.ErrBadCheckpoint) {
				t.Fatalf("OpenCheckpoint error %v is none of the documented ones", err)
			}
			return
		}
		if cp.Size == 0 || cp.KID != wire.Thumbprint(&s.priv.PublicKey) {
			t.Fatalf("opened an invalid checkpoint %+v", cp)
		}
	})
}

// FuzzVerifyProofs: an arbitrary proof response (decoded strictly) checked
// against a real checkpoint never panics and fails only with ErrBadProof
// unless it is a true proof.
func FuzzVerifyProofs(f *testing.F) {
	leaves := blocks(11)
	s := newSigner(f)
	cp := checkpoint(f, s, leaves, 11)
	f.Add(testutil.MustMarshal(f, &wire.InclusionProof{Checkpoint: cp.Signed, Index: 7, BlockHash: leaves[7],
		Path: rfc9162ref.Path(7, leaves), OldSize: 5, Consistency: rfc9162ref.Proof(5, leaves)}))
	f.Add(testutil.MustMarshal(f, &wire.InclusionProof{Checkpoint: cp.Signed, Index: 10, BlockHash: leaves[10],
		Path: rfc9162ref.Path(10, leaves)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p wire.InclusionProof
		if err := wire.Decode(b, &p); err != nil {
			return
		}
		err := transparency.VerifyInclusion(cp, p.Index, [32]byte(p.BlockHash), p.Path)
		if err != nil && !errors.Is(err, transparency.ErrBadProof) {
			t.Fatalf("VerifyInclusion error %v is not ErrBadProof", err)
		}
		if err == nil && (p.Index >= 11 || string(p.BlockHash) != string(leaves[p.Index])) {
			t.Fatalf("proved block %d with hash %x, which is not in the tree", p.Index, p.BlockHash)
		}
		if p.OldSize == 0 {
			return
		}
		oldRoot := [32]byte{}
		if p.OldSize <= 11 {
			oldRoot = [32]byte(rfc9162ref.MTH(leaves[:p.OldSize]))
		}
		err = transparency.VerifyConsistency(p.OldSize, oldRoot, cp, p.Consistency)
		if err != nil && !errors.Is(err, transparency.ErrBadProof) {
			t.Fatalf("VerifyConsistency error %v is not ErrBadProof", err)
		}
		if err == nil && !rfc9162ref.VerifyConsistency(p.OldSize, 11, oldRoot[:], cp.Root[:], p.Consistency) {
			t.Fatalf("accepted a consistency proof from %d the reference rejects", p.OldSize)
		}
	})
}
