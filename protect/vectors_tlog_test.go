package protect_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/iotguard/iotguard/internal/rfc9162ref"
	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// The transparency log's vectors (PROTOCOL.md §9): a checkpoint of a tree of
// 11 blocks, the /ledger/proof answer proving block 7 (join-response.json's
// block) with a consistency proof from tree size 5, and the rejections a
// device must make. Block i's hash is SHA-256("block i"), except block 7's,
// which is vecBlockHash.

const (
	vecTreeSize = 11
	vecOldSize  = 5
	vecTreeTime = 1767225600000
)

const expWrongKey, expBadProof = "checkpoint signed by another key", "proof does not verify"

func tlogSpecs() []vectorSpec {
	return []vectorSpec{
		{"checkpoint.json", func(t *testing.T) any { return genCheckpoints(t)[0] }, checkCheckpoint},
		{"checkpoint-other-key.json", func(t *testing.T) any { return genCheckpoints(t)[1] }, checkCheckpoint},
		{"inclusion-proof-tampered.json", func(t *testing.T) any { return genCheckpoints(t)[2] }, checkCheckpoint},
	}
}

type checkpointVector struct {
	Description     string     `json:"description"`
	Expect          string     `json:"expect"`
	CHCOSEKey       hexBytes   `json:"ch_cose_key"`
	Thumbprint      hexBytes   `json:"thumbprint"`
	Cluster         string     `json:"cluster"`
	BlockHashes     []hexBytes `json:"block_hashes"`
	TreeSize        uint64     `json:"tree_size"`
	Root            hexBytes   `json:"root"`
	TimeMS          uint64     `json:"time_ms"`
	Payload         hexBytes   `json:"payload"`
	ToBeSigned      hexBytes   `json:"to_be_signed"`
	Checkpoint      hexBytes   `json:"checkpoint"`
	Text            string     `json:"text"`
	LeafIndex       uint64     `json:"leaf_index"`
	LeafHash        hexBytes   `json:"leaf_hash"`
	Path            []hexBytes `json:"path"`
	OldSize         uint64     `json:"old_size"`
	OldRoot         hexBytes   `json:"old_root"`
	ConsistencyPath []hexBytes `json:"consistency_path"`
	ProofResponse   hexBytes   `json:"proof_response"`
}

func vecLeaves() [][]byte {
	out := make([][]byte, vecTreeSize)
	for i := range out {
		h := sha256.Sum256(fmt.Appendf(nil, "block %d", i))
		out[i] = h[:]
	}
	out[vecHeight] = vecBlockHash
	return out
}

func toHex(p [][]byte) []hexBytes {
	out := make([]hexBytes, len(p))
	for i := range p {
		out[i] = p[i]
	}
	return out
}

func genCheckpoints(t *testing.T) []checkpointVector {
	ch := privKey(t, testutil.MustHex(t, chScalar))
	dev := privKey(t, testutil.MustHex(t, deviceScalar))
	th := wire.Thumbprint(&ch.PublicKey)
	leaves := vecLeaves()
	root := rfc9162ref.MTH(leaves)
	payload := testutil.MustMarshal(t, &wire.Checkpoint{Cluster: vecCluster, Size: vecTreeSize, Root: root, TimeMS: vecTreeTime})
	protected := []byte{0xa1, 0x01, 0x26}
	cp, err := wire.Sign1(rfc6979{ch}, th[:], wire.AADCheckpoint, payload)
	if err != nil {
		t.Fatal(err)
	}
	path := rfc9162ref.Path(vecHeight, leaves)
	cons := rfc9162ref.Proof(vecOldSize, leaves)
	resp := testutil.MustMarshal(t, &wire.InclusionProof{Checkpoint: cp, Index: vecHeight, BlockHash: vecBlockHash, Path: path, OldSize: vecOldSize, Consistency: cons})
	ok := checkpointVector{
		Description: "A checkpoint (section 9.1) of the tree over 11 blocks (block i's hash is SHA-256(\"block i\"), block 7's " +
			"that of join-response.json): untagged COSE_Sign1 by the CH key, kid = its thumbprint, external_aad " +
			"\"iotguard checkpoint\". proof_response is the GET /ledger/proof?id=sensor-01&from=5 answer (section 9.2): " +
			"the checkpoint, leaf 7's audit path and the consistency proof from tree size 5 (whose root is old_root). " +
			"leaf_hash = SHA-256(0x00 || block hash); nodes SHA-256(0x01 || left || right) (RFC 9162).",
		Expect: expOK, CHCOSEKey: coseKey(t, &ch.PublicKey), Thumbprint: th[:], Cluster: vecCluster, BlockHashes: toHex(leaves),
		TreeSize: vecTreeSize, Root: root, TimeMS: vecTreeTime, Payload: payload,
		ToBeSigned: sigStructure(t, protected, wire.AADCheckpoint, payload), Checkpoint: cp,
		Text: transparency.Text(vecCluster, vecTreeSize, [32]byte(root), vecTreeTime), LeafIndex: vecHeight,
		LeafHash: rfc9162ref.LeafHash(vecBlockHash), Path: toHex(path), OldSize: vecOldSize, OldRoot: rfc9162ref.MTH(leaves[:vecOldSize]),
		ConsistencyPath: toHex(cons), ProofResponse: resp,
	}
	other := ok
	dth := wire.Thumbprint(&dev.PublicKey)
	if other.Checkpoint, err = wire.Sign1(rfc6979{dev}, dth[:], wire.AADCheckpoint, payload); err != nil {
		t.Fatal(err)
	}
	other.ProofResponse = testutil.MustMarshal(t, &wire.InclusionProof{Checkpoint: other.Checkpoint, Index: vecHeight, BlockHash: vecBlockHash, Path: path, OldSize: vecOldSize, Consistency: cons})
	other.Expect = expWrongKey
	other.Description = "The checkpoint of checkpoint.json signed by another key (the device key, kid = its thumbprint): a " +
		"device that pins the CH key refuses it before checking any proof."
	bad := ok
	tampered := make([][]byte, len(path))
	for i := range path {
		tampered[i] = append([]byte(nil), path[i]...)
	}
	tampered[1][0] ^= 0x01
	bad.Path = toHex(tampered)
	bad.ProofResponse = testutil.MustMarshal(t, &wire.InclusionProof{Checkpoint: cp, Index: vecHeight, BlockHash: vecBlockHash, Path: tampered, OldSize: vecOldSize, Consistency: cons})
	bad.Expect = expBadProof
	bad.Description = "The answer of checkpoint.json with the first byte of the second path hash flipped: the path no " +
		"longer leads to the checkpoint's root."
	return []checkpointVector{ok, other, bad}
}

func checkCheckpoint(t *testing.T, raw []byte) {
	var v checkpointVector
	decodeVector(t, raw, &v)
	ch := privKey(t, testutil.MustHex(t, chScalar))
	leaves := make([][]byte, len(v.BlockHashes))
	for i := range leaves {
		leaves[i] = v.BlockHashes[i]
	}
	eqHex(t, "root (reference MTH)", rfc9162ref.MTH(leaves), v.Root)
	var p wire.InclusionProof
	if err := wire.Decode(v.ProofResponse, &p); err != nil {
		t.Fatal(err)
	}
	eqHex(t, "checkpoint in the answer", p.Checkpoint, v.Checkpoint)
	got := func() error {
		cp, err := transparency.OpenCheckpoint(p.Checkpoint, &ch.PublicKey, v.Cluster)
		if err != nil {
			return err
		}
		if cp.Text() != v.Text {
			t.Errorf("text %q, want %q", cp.Text(), v.Text)
		}
		if err := transparency.VerifyInclusion(cp, p.Index, [32]byte(p.BlockHash), p.Path); err != nil {
			return err
		}
		return transparency.VerifyConsistency(p.OldSize, [32]byte(v.OldRoot), cp, p.Consistency)
	}()
	var outcome string
	switch {
	case got == nil:
		outcome = expOK
	case errors.Is(got, transparency.ErrWrongKey):
		outcome = expWrongKey
	case errors.Is(got, transparency.ErrBadProof):
		outcome = expBadProof
	default:
		outcome = got.Error()
	}
	if outcome != v.Expect {
		t.Errorf("outcome %q, want %q", outcome, v.Expect)
	}
	path := make([][]byte, len(v.Path))
	for i := range path {
		path[i] = v.Path[i]
	}
	if ref := rfc9162ref.VerifyInclusion(v.LeafIndex, v.TreeSize, v.LeafHash, path, v.Root); ref != (v.Expect != expBadProof) {
		t.Errorf("reference verifier says %v", ref)
	}
}
