package ledger_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/internal/rfc9162ref"
	"github.com/iotguard/iotguard/ledger"
)

// blockHashes returns the hash of every block of l, genesis first: the
// leaf inputs of the ledger's Merkle tree.
func blockHashes(t *testing.T, l ledger.Ledger) [][]byte {
	t.Helper()
	var hashes [][]byte
	for _, b := range allBlocks(t, l) {
		h, err := b.Header.Hash()
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h[:])
	}
	return hashes
}

func slices32(p [][32]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// checkTree holds every root, inclusion proof and consistency proof of l's
// tree against the RFC 9162 definitions computed from the blocks by the
// independent reference (rfc9162ref), and against its verifiers.
func checkTree(t *testing.T, l *ledger.Bolt) {
	t.Helper()
	leaves := blockHashes(t, l)
	n := uint64(len(leaves))
	th, err := l.TreeHead()
	if err != nil {
		t.Fatalf("TreeHead: %v", err)
	}
	if th.Size != n || !bytes.Equal(th.Root[:], rfc9162ref.MTH(leaves)) {
		t.Fatalf("TreeHead = size %d root %x, want %d %x", th.Size, th.Root, n, rfc9162ref.MTH(leaves))
	}
	_, headTime, _ := l.Head()
	if th.TimeMS != headTime {
		t.Errorf("TreeHead time %d, head time %d", th.TimeMS, headTime)
	}
	for size := uint64(1); size <= n; size++ {
		root, err := l.TreeRoot(size)
		want := rfc9162ref.MTH(leaves[:size])
		if err != nil || !bytes.Equal(root[:], want) {
			t.Fatalf("TreeRoot(%d) = %x, %v; want %x", size, root, err, want)
		}
		for i := uint64(0); i < size; i++ {
			p, err := l.InclusionProof(i, size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, size, err)
			}
			got, want := slices32(p), rfc9162ref.Path(int(i), leaves[:size])
			if fmt.Sprintf("%x", got) != fmt.Sprintf("%x", want) {
				t.Fatalf("InclusionProof(%d, %d) = %x, RFC 9162 PATH gives %x", i, size, got, want)
			}
			if !rfc9162ref.VerifyInclusion(i, size, rfc9162ref.LeafHash(leaves[i]), got, root[:]) {
				t.Fatalf("InclusionProof(%d, %d) does not verify by RFC 9162 §2.1.3.2", i, size)
			}
		}
		for m := uint64(1); m <= size; m++ {
			p, err := l.ConsistencyProof(m, size)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", m, size, err)
			}
			got, want := slices32(p), rfc9162ref.Proof(int(m), leaves[:size])
			if fmt.Sprintf("%x", got) != fmt.Sprintf("%x", want) {
				t.Fatalf("ConsistencyProof(%d, %d) = %x, RFC 9162 PROOF gives %x", m, size, got, want)
			}
			if !rfc9162ref.VerifyConsistency(m, size, rfc9162ref.MTH(leaves[:m]), root[:], got) {
				t.Fatalf("ConsistencyProof(%d, %d) does not verify by RFC 9162 §2.1.4.2", m, size)
			}
		}
	}
}

// TestTreeMatchesRFC9162: the tree the ledger keeps with every commit —
// single appends, a group commit, an import of several blocks, across a
// restart and a failed commit — gives the RFC's roots and proofs for every
// size, leaf and pair of sizes.
func TestTreeMatchesRFC9162(t *testing.T) {
	e := newEnv(t)
	fs := &failSigner{Signer: e.key}
	l := e.open(t, func(o *ledger.Options) { o.Signer, o.MaxBatch = fs, 2 })
	checkTree(t, l) // genesis alone
	for i := range 6 {
		mustAppend(t, l, join(fmt.Sprintf("a%d", i), "k"))
	}
	var imp []ledger.Event
	for i := range 9 { // 5 blocks of at most 2 events, in one transaction
		imp = append(imp, join(fmt.Sprintf("i%d", i), "k"))
	}
	if _, err := l.Import(t.Context(), imp); err != nil {
		t.Fatal(err)
	}
	before, _ := l.TreeHead()
	fs.fail.Store(true)
	if _, err := l.Append(t.Context(), join("x", "k")); !errors.Is(err, errSignerDown) {
		t.Fatalf("Append = %v, want errSignerDown", err)
	}
	if after, _ := l.TreeHead(); after != before {
		t.Fatalf("a failed commit changed the tree: %+v → %+v", before, after)
	}
	fs.fail.Store(false)
	checkTree(t, l)
	l.Close()

	l = e.open(t)
	checkTree(t, l)
	for i := range 4 {
		mustAppend(t, l, join(fmt.Sprintf("b%d", i), "k"))
	}
	checkTree(t, l)
	mustVerify(t, l)
}

// TestTreeSizeErrors: proofs and roots of sizes or leaves the tree does not
// have fail with ErrTreeSize.
func TestTreeSizeErrors(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, join("a", "k"))
	mustAppend(t, l, join("b", "k")) // 3 blocks
	for _, c := range []struct {
		name string
		err  error
	}{
		{"root of size 0", func() error { _, err := l.TreeRoot(0); return err }()},
		{"root of size 4", func() error { _, err := l.TreeRoot(4); return err }()},
		{"leaf 3 of size 3", func() error { _, err := l.InclusionProof(3, 3); return err }()},
		{"leaf 0 of size 4", func() error { _, err := l.InclusionProof(0, 4); return err }()},
		{"consistency 0 to 3", func() error { _, err := l.ConsistencyProof(0, 3); return err }()},
		{"consistency 3 to 2", func() error { _, err := l.ConsistencyProof(3, 2); return err }()},
		{"consistency 2 to 4", func() error { _, err := l.ConsistencyProof(2, 4); return err }()},
	} {
		if !errors.Is(c.err, ledger.ErrTreeSize) {
			t.Errorf("%s: %v, want ErrTreeSize", c.name, c.err)
		}
	}
}

// deleteTree removes the tree nodes of leaves ≥ from, as in a ledger that
// was written (from that block on) by a version without the tree.
func deleteTree(t *testing.T, path string, from uint64) {
	tamper(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("tree"))
		if from == 0 {
			return tx.DeleteBucket([]byte("tree"))
		}
		c := b.Cursor()
		for k, _ := c.Seek(binary.BigEndian.AppendUint64(nil, from)); k != nil; k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, from)) {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestTreeBuiltForOlderLedger: a ledger written before the tree existed (no
// tree bucket), or whose tree stops short of its head (blocks appended by an
// older binary), opens read-only and verifies, has no tree head (ErrNoTree),
// and gets its tree built — with progress — by the next writable Open.
func TestTreeBuiltForOlderLedger(t *testing.T) {
	for _, from := range []uint64{0, 3} {
		t.Run(fmt.Sprintf("tree up to block %d", from), func(t *testing.T) {
			e := newEnv(t)
			l := e.open(t)
			for i := range 6 {
				mustAppend(t, l, join(fmt.Sprintf("d%d", i), "k"))
			}
			want, _ := l.TreeHead()
			l.Close()
			deleteTree(t, e.path, from)

			ro := e.openReadOnly(t)
			if _, err := ro.TreeHead(); !errors.Is(err, ledger.ErrNoTree) {
				t.Fatalf("TreeHead of an older ledger = %v, want ErrNoTree", err)
			}
			mustVerify(t, ro)
			ro.Close()

			var calls [][2]uint64
			l = e.open(t, func(o *ledger.Options) {
				o.TreeProgress = func(done, total uint64) { calls = append(calls, [2]uint64{done, total}) }
			})
			if len(calls) == 0 || calls[len(calls)-1] != [2]uint64{7, 7} {
				t.Errorf("progress calls %v, want them to end with [7 7]", calls)
			}
			if got, err := l.TreeHead(); err != nil || got != want {
				t.Fatalf("TreeHead after the build = %+v, %v; want %+v", got, err, want)
			}
			checkTree(t, l)
			mustVerify(t, l)
			l.Close()

			calls = nil // built once: the next Open has nothing to do
			e.open(t, func(o *ledger.Options) {
				o.TreeProgress = func(done, total uint64) { calls = append(calls, [2]uint64{done, total}) }
			})
			if calls != nil {
				t.Errorf("second Open built the tree again: %v", calls)
			}
		})
	}
}

// TestVerifyTamperedTree: Verify checks the stored tree against the blocks:
// a changed node names the block that completes it; a node the chain does
// not produce, or a missing one, is an index mismatch.
func TestVerifyTamperedTree(t *testing.T) {
	node := func(last uint64, level byte) []byte {
		return append(binary.BigEndian.AppendUint64(nil, last), level)
	}
	for _, c := range []struct {
		name   string
		change func(b *bolt.Bucket) error
		want   string // a BadBlockError reason, or "" for ErrIndexMismatch
		height uint64
	}{
		{"leaf changed", func(b *bolt.Bucket) error { return b.Put(node(2, 0), bytes.Repeat([]byte{1}, 32)) },
			"node (level 0, index 2) of the Merkle tree does not match the blocks", 2},
		{"interior node changed", func(b *bolt.Bucket) error { return b.Put(node(3, 2), bytes.Repeat([]byte{2}, 32)) },
			"node (level 2, index 0) of the Merkle tree does not match the blocks", 3},
		{"node missing", func(b *bolt.Bucket) error { return b.Delete(node(1, 1)) },
			"node (level 1, index 0) of the Merkle tree does not match the blocks", 1},
		{"extra node", func(b *bolt.Bucket) error { return b.Put(node(4, 7), bytes.Repeat([]byte{3}, 32)) }, "", 0},
		{"leaf beyond the head", func(b *bolt.Bucket) error { return b.Put(node(9, 0), bytes.Repeat([]byte{3}, 32)) }, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(t)
			for i := range 5 {
				mustAppend(t, l, join(fmt.Sprintf("d%d", i), "k"))
			}
			l.Close()
			tamper(t, e.path, func(tx *bolt.Tx) error { return c.change(tx.Bucket([]byte("tree"))) })
			err := e.openReadOnly(t).Verify(t.Context(), nil)
			var bad *ledger.BadBlockError
			switch {
			case c.want == "" && !errors.Is(err, ledger.ErrIndexMismatch):
				t.Fatalf("Verify = %v, want ErrIndexMismatch", err)
			case c.want != "" && (!errors.As(err, &bad) || bad.Height != c.height || !strings.Contains(bad.Reason, c.want)):
				t.Fatalf("Verify = %v, want block %d: %s", err, c.height, c.want)
			}
		})
	}
}
