package transparency_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/internal/rfc9162ref"
	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// signer is a CH key as transparency.Signer sees it.
type signer struct{ priv *ecdsa.PrivateKey }

func (s signer) Sign1(aad, payload []byte) ([]byte, error) {
	th := wire.Thumbprint(&s.priv.PublicKey)
	return wire.Sign1(s.priv, th[:], aad, payload)
}

func newSigner(t testing.TB) signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{k}
}

// blocks returns n made-up block hashes: the leaf inputs of a tree.
func blocks(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		h := sha256.Sum256(fmt.Appendf(nil, "block %d", i))
		out[i] = h[:]
	}
	return out
}

// checkpoint signs and opens the checkpoint of the first size of leaves.
func checkpoint(t testing.TB, s signer, leaves [][]byte, size int) *transparency.Checkpoint {
	t.Helper()
	return checkpointAt(t, s, leaves, size, int64(1000+size))
}

// checkpointAt is checkpoint dated timeMS.
func checkpointAt(t testing.TB, s signer, leaves [][]byte, size int, timeMS int64) *transparency.Checkpoint {
	t.Helper()
	root := [32]byte(rfc9162ref.MTH(leaves[:size]))
	b, err := transparency.SignCheckpoint(s, "cluster-1", uint64(size), root, timeMS)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := transparency.OpenCheckpoint(b, &s.priv.PublicKey, "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func clone(p [][]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = append([]byte(nil), p[i]...)
	}
	return out
}

// mutations returns ways to spoil a proof path, each named.
func mutations(path [][]byte) map[string][][]byte {
	m := map[string][][]byte{"padded": append(clone(path), make([]byte, 32))}
	if len(path) > 0 {
		m["truncated"] = clone(path)[:len(path)-1]
		m["first hash dropped"] = clone(path)[1:]
		for i := range path {
			p := clone(path)
			p[i][i%32] ^= 0x40
			m[fmt.Sprintf("hash %d changed", i)] = p
		}
		if len(path) > 1 {
			p := clone(path)
			p[0], p[1] = p[1], p[0]
			m["hashes swapped"] = p
		}
	}
	return m
}

// TestInclusionAgainstReference: for every leaf of every tree up to 40
// blocks, the RFC's audit path (made by the reference) verifies, and every
// spoiled path, wrong index and wrong size fails with ErrBadProof — exactly
// when the independent RFC 9162 verifier says so too.
func TestInclusionAgainstReference(t *testing.T) {
	s := newSigner(t)
	leaves := blocks(40)
	for size := 1; size <= len(leaves); size++ {
		cp := checkpoint(t, s, leaves, size)
		for i := 0; i < size; i++ {
			path := rfc9162ref.Path(i, leaves[:size])
			if err := transparency.VerifyInclusion(cp, uint64(i), [32]byte(leaves[i]), path); err != nil {
				t.Fatalf("leaf %d of %d: %v", i, size, err)
			}
			bad := mutations(path)
			for name, p := range bad {
				err := transparency.VerifyInclusion(cp, uint64(i), [32]byte(leaves[i]), p)
				ref := rfc9162ref.VerifyInclusion(uint64(i), uint64(size), rfc9162ref.LeafHash(leaves[i]), p, cp.Root[:])
				if err == nil || ref {
					t.Fatalf("leaf %d of %d, %s path: ours %v, reference accepts %v", i, size, name, err, ref)
				}
				if !errors.Is(err, transparency.ErrBadProof) {
					t.Fatalf("leaf %d of %d, %s path: %v is not ErrBadProof", i, size, name, err)
				}
			}
			if size > 1 {
				other := (i + 1) % size
				if err := transparency.VerifyInclusion(cp, uint64(other), [32]byte(leaves[i]), path); !errors.Is(err, transparency.ErrBadProof) {
					t.Fatalf("leaf %d proven at index %d: %v", i, other, err)
				}
			}
		}
	}
}

// TestConsistencyAgainstReference: likewise for every pair of tree sizes up
// to 40 blocks.
func TestConsistencyAgainstReference(t *testing.T) {
	s := newSigner(t)
	leaves := blocks(40)
	for size := 1; size <= len(leaves); size++ {
		cp := checkpoint(t, s, leaves, size)
		for m := 1; m <= size; m++ {
			oldRoot := [32]byte(rfc9162ref.MTH(leaves[:m]))
			path := rfc9162ref.Proof(m, leaves[:size])
			if err := transparency.VerifyConsistency(uint64(m), oldRoot, cp, path); err != nil {
				t.Fatalf("%d → %d: %v", m, size, err)
			}
			for name, p := range mutations(path) {
				err := transparency.VerifyConsistency(uint64(m), oldRoot, cp, p)
				ref := rfc9162ref.VerifyConsistency(uint64(m), uint64(size), oldRoot[:], cp.Root[:], p)
				if err == nil || ref {
					t.Fatalf("%d → %d, %s path: ours %v, reference accepts %v", m, size, name, err, ref)
				}
				if !errors.Is(err, transparency.ErrBadProof) {
					t.Fatalf("%d → %d, %s path: %v is not ErrBadProof", m, size, name, err)
				}
			}
			otherRoot := oldRoot
			otherRoot[0] ^= 1
			if err := transparency.VerifyConsistency(uint64(m), otherRoot, cp, path); !errors.Is(err, transparency.ErrBadProof) {
				t.Fatalf("%d → %d from another old root: %v", m, size, err)
			}
		}
		if err := transparency.VerifyConsistency(uint64(size+1), [32]byte{}, cp, nil); !errors.Is(err, transparency.ErrBadProof) {
			t.Fatalf("consistency from a larger size: %v", err)
		}
	}
}

// rfcVectors is testdata/rfc9162/merkle.json.
type rfcVectors struct {
	Leaves    []string `json:"leaves"`
	Roots     []string `json:"roots"`
	EmptyRoot string   `json:"empty_root"`
	Inclusion []struct {
		LeafIndex uint64   `json:"leaf_index"`
		TreeSize  uint64   `json:"tree_size"`
		Path      []string `json:"path"`
	} `json:"inclusion"`
	Consistency []struct {
		Size1, Size2 uint64
		Path         []string `json:"path"`
	} `json:"consistency"`
}

func unhex(t *testing.T, ss ...string) [][]byte {
	t.Helper()
	out := make([][]byte, len(ss))
	for i, s := range ss {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// TestRFC9162Vectors replays the published Certificate Transparency Merkle
// test data through the verifiers: the library behind VerifyInclusion and
// VerifyConsistency (through their exported leaf-hash forms) and the
// independent reference, which must also reproduce every root and proof.
func TestRFC9162Vectors(t *testing.T) {
	raw, err := os.ReadFile("../testdata/rfc9162/merkle.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rfcVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	leaves, roots := unhex(t, v.Leaves...), unhex(t, v.Roots...)
	if got := hex.EncodeToString(rfc9162ref.MTH(nil)); got != v.EmptyRoot {
		t.Errorf("reference MTH({}) = %s, want %s", got, v.EmptyRoot)
	}
	for i := range roots {
		if got := rfc9162ref.MTH(leaves[:i+1]); string(got) != string(roots[i]) {
			t.Errorf("reference MTH of %d leaves = %x, want %x", i+1, got, roots[i])
		}
	}
	for _, c := range v.Inclusion {
		path, root := unhex(t, c.Path...), roots[c.TreeSize-1]
		if got := rfc9162ref.Path(int(c.LeafIndex), leaves[:c.TreeSize]); fmt.Sprintf("%x", got) != fmt.Sprintf("%x", path) {
			t.Errorf("reference PATH(%d, %d) = %x, want %x", c.LeafIndex, c.TreeSize, got, path)
		}
		leaf := rfc9162ref.LeafHash(leaves[c.LeafIndex])
		if err := transparency.VerifyLeafInclusion(leaf, c.LeafIndex, c.TreeSize, path, root); err != nil {
			t.Errorf("inclusion %d in %d: %v", c.LeafIndex, c.TreeSize, err)
		}
		if !rfc9162ref.VerifyInclusion(c.LeafIndex, c.TreeSize, leaf, path, root) {
			t.Errorf("reference rejects inclusion %d in %d", c.LeafIndex, c.TreeSize)
		}
		for name, p := range mutations(path) {
			if transparency.VerifyLeafInclusion(leaf, c.LeafIndex, c.TreeSize, p, root) == nil ||
				rfc9162ref.VerifyInclusion(c.LeafIndex, c.TreeSize, leaf, p, root) {
				t.Errorf("inclusion %d in %d accepted a %s path", c.LeafIndex, c.TreeSize, name)
			}
		}
	}
	for _, c := range v.Consistency {
		path, r1, r2 := unhex(t, c.Path...), roots[c.Size1-1], roots[c.Size2-1]
		if got := rfc9162ref.Proof(int(c.Size1), leaves[:c.Size2]); fmt.Sprintf("%x", got) != fmt.Sprintf("%x", path) {
			t.Errorf("reference PROOF(%d, %d) = %x, want %x", c.Size1, c.Size2, got, path)
		}
		cp := &transparency.Checkpoint{Size: c.Size2, Root: [32]byte(r2)}
		if err := transparency.VerifyConsistency(c.Size1, [32]byte(r1), cp, path); err != nil {
			t.Errorf("consistency %d → %d: %v", c.Size1, c.Size2, err)
		}
		if !rfc9162ref.VerifyConsistency(c.Size1, c.Size2, r1, r2, path) {
			t.Errorf("reference rejects consistency %d → %d", c.Size1, c.Size2)
		}
		for name, p := range mutations(path) {
			if transparency.VerifyConsistency(c.Size1, [32]byte(r1), cp, p) == nil ||
				rfc9162ref.VerifyConsistency(c.Size1, c.Size2, r1, r2, p) {
				t.Errorf("consistency %d → %d accepted a %s path", c.Size1, c.Size2, name)
			}
		}
	}
}

// TestOpenCheckpoint: a checkpoint opens under the key that signed it and
// names it; under another key, with a changed payload, of another cluster or
// as bytes that are no checkpoint it fails, each with its own error.
func TestOpenCheckpoint(t *testing.T) {
	ch, other := newSigner(t), newSigner(t)
	root := [32]byte(rfc9162ref.MTH(blocks(3)))
	good, err := transparency.SignCheckpoint(ch, "cluster-1", 3, root, 1234)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := transparency.OpenCheckpoint(good, &ch.priv.PublicKey, "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 3 || cp.Root != root || cp.TimeMS != 1234 || cp.KID != wire.Thumbprint(&ch.priv.PublicKey) || cp.Cluster != "cluster-1" {
		t.Errorf("opened %+v", cp)
	}
	if want := "cluster-1\n3\n" + base64Root(root) + "\ntime_ms 1234\n"; cp.Text() != want {
		t.Errorf("Text = %q, want %q", cp.Text(), want)
	}

	byOther, _ := transparency.SignCheckpoint(other, "cluster-1", 3, root, 1234)
	forged, _ := wire.Sign1(other.priv, cp.KID[:], wire.AADCheckpoint, mustPayload(t, good)) // names the CH key, signed by another
	headAAD, _ := ch.Sign1(wire.AADHead, mustPayload(t, good))                               // the CH's signature for another purpose
	changed := append([]byte(nil), good...)
	i := strings.Index(string(changed), string(root[:4]))
	changed[i] ^= 1
	for _, c := range []struct {
		name    string
		b       []byte
		cluster string
		want    error
		text    string
	}{
		{"signed by another key", byOther, "cluster-1", transparency.ErrWrongKey, "names key"},
		{"kid of the CH, signature of another key", forged, "cluster-1", transparency.ErrBadCheckpoint, "does not verify under the CH key"},
		{"signed for /ledger/head", headAAD, "cluster-1", transparency.ErrBadCheckpoint, "does not verify"},
		{"root changed", changed, "cluster-1", transparency.ErrBadCheckpoint, "does not verify"},
		{"another cluster", good, "cluster-2", transparency.ErrBadCheckpoint, `of cluster "cluster-1", not "cluster-2"`},
		{"not a Sign1", []byte{0x80}, "", wire.ErrMalformed, "failed to read checkpoint"},
		{"truncated", good[:len(good)-1], "", wire.ErrMalformed, "failed to read checkpoint"},
	} {
		_, err := transparency.OpenCheckpoint(c.b, &ch.priv.PublicKey, c.cluster)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.want, c.text)
		}
	}
}

func base64Root(r [32]byte) string {
	cp := &transparency.Checkpoint{Root: r}
	return strings.Split(cp.Text(), "\n")[2]
}

func mustPayload(t *testing.T, signed []byte) []byte {
	s, err := wire.ParseSign1(signed)
	if err != nil {
		t.Fatal(err)
	}
	return s.Payload
}

// TestWitness: a witness advances along consistent checkpoints and reports
// every kind of fork with both checkpoints, keeping the last good one. A
// grown tree dated as the last checkpoint is consistent: blocks may share a
// millisecond.
func TestWitness(t *testing.T) {
	s := newSigner(t)
	leaves := blocks(12)
	var w transparency.Witness
	c4, c9 := checkpoint(t, s, leaves, 4), checkpoint(t, s, leaves, 9)
	if err := w.Advance(c4, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Advance(c9, rfc9162ref.Proof(4, leaves[:9])); err != nil {
		t.Fatal(err)
	}
	if err := w.Advance(c9, nil); err != nil {
		t.Fatalf("the same checkpoint again: %v", err)
	}
	if err := (&transparency.Witness{Last: c9}).Advance(checkpointAt(t, s, leaves, 12, 1009), rfc9162ref.Proof(9, leaves)); err != nil {
		t.Fatalf("a grown tree dated as the last checkpoint: %v", err)
	}

	rewritten := append(clone(leaves[:5]), blocks(20)[14:]...) // same first 5 blocks, then another history (11)
	fork := checkpoint(t, s, rewritten, 11)
	rewrittenSame := append(clone(leaves[:8]), blocks(20)[19]) // the same size 9, block 8 replaced
	same := checkpoint(t, s, rewrittenSame, 9)
	other := checkpoint(t, newSigner(t), leaves, 12)
	for _, c := range []struct {
		name   string
		next   *transparency.Checkpoint
		path   [][]byte
		reason string
	}{
		{"smaller tree", c4, nil, "smaller"},
		{"same size, another root", same, nil, "the same tree size has another root"},
		{"rewritten history", fork, rfc9162ref.Proof(9, rewritten[:11]), "consistency path"},
		{"no proof", fork, nil, "consistency"},
		{"another key", other, rfc9162ref.Proof(9, leaves), "signed by key"},
		{"grown, dated earlier", checkpointAt(t, s, leaves, 12, 1008), rfc9162ref.Proof(9, leaves), "dated 1008 ms, before the earlier checkpoint's 1009 ms"},
		{"the same tree, another time", checkpointAt(t, s, leaves, 9, 1010), nil, "the same tree is dated 1010 ms, earlier 1009 ms"},
	} {
		err := w.Advance(c.next, c.path)
		var fe *transparency.ForkError
		if !errors.As(err, &fe) || !errors.Is(err, transparency.ErrFork) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%s: %v, want a fork: %s", c.name, err, c.reason)
			continue
		}
		if fe.Old != c9 || fe.New != c.next {
			t.Errorf("%s: evidence is %d → %d, want 9 → %d", c.name, fe.Old.Size, fe.New.Size, c.next.Size)
		}
	}
	if w.Last != c9 {
		t.Errorf("a fork moved the witness to size %d", w.Last.Size)
	}
}

// TestWitnessFollowsRotation: told that the CH key rotated to another key,
// a witness accepts that key's checkpoint as the continuation of the last
// one's, still checking consistency; from then on only the new key; and a
// third key stays a fork.
func TestWitnessFollowsRotation(t *testing.T) {
	oldKey, newKey, third := newSigner(t), newSigner(t), newSigner(t)
	leaves := blocks(12)
	c4 := checkpoint(t, oldKey, leaves, 4)
	c9, c12 := checkpoint(t, newKey, leaves, 9), checkpoint(t, newKey, leaves, 12)
	rewritten := append(clone(leaves[:3]), blocks(20)[14:]...)

	w := transparency.Witness{Last: c4}
	w.FollowRotation(c9.KID)
	forked := checkpoint(t, newKey, rewritten, 9)
	if err := w.Advance(forked, rfc9162ref.Proof(4, rewritten[:9])); !errors.Is(err, transparency.ErrFork) {
		t.Fatalf("a rewritten log under the new key: %v, want a fork", err)
	}
	if err := w.Advance(checkpoint(t, third, leaves, 9), rfc9162ref.Proof(4, leaves[:9])); !errors.Is(err, transparency.ErrFork) {
		t.Fatalf("a key the witness was not told of: %v, want a fork", err)
	}
	if err := w.Advance(c9, rfc9162ref.Proof(4, leaves[:9])); err != nil {
		t.Fatalf("the new key's checkpoint: %v", err)
	}
	if err := w.Advance(c12, rfc9162ref.Proof(9, leaves[:12])); err != nil {
		t.Fatal(err)
	}
	back := checkpoint(t, oldKey, leaves, 12)
	if err := w.Advance(back, nil); !errors.Is(err, transparency.ErrFork) || w.Last != c12 {
		t.Fatalf("the old key after the rotation: %v, want a fork", err)
	}
}
