package ledger

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/transparency"
)

// The Merkle tree over the blocks (RFC 9162 §2.1): leaf i is block i, its
// leaf hash transparency.LeafHash of the block hash. The "tree" bucket holds
// the hash of every perfect subtree inside [0, size) — the leaves and every
// complete interior node, about 2 per block — so that the root of any size,
// an inclusion proof and a consistency proof each read O(log n) nodes.
//
// A node's key is the 8-byte big-endian index of the last leaf it covers,
// then its 1-byte level. Appending leaf n completes exactly the nodes whose
// last leaf is n, so every commit appends keys at the end of the bucket (it
// is filled like the blocks bucket), and the last key names the last leaf:
// the tree's size is that leaf's index + 1, with no counter to keep in step.
var bucketTree = []byte("tree")

// treeRanges makes the compact ranges the ledger appends leaves to.
var treeRanges = transparency.Ranges

// treeBatch is how many blocks one transaction adds to the tree of a ledger
// written before the tree existed (see buildTree).
const treeBatch = 1 << 14

// TreeHead is the tree over the whole ledger at one moment: what a
// checkpoint states.
type TreeHead struct {
	Size   uint64   // number of blocks (head height + 1)
	Root   [32]byte // RFC 9162 root hash over the block hashes
	TimeMS int64    // time of the newest block (unix milliseconds)
}

// nodeKey is the bbolt key of node id.
func nodeKey(id compact.NodeID) []byte {
	last := (id.Index+1)<<id.Level - 1
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 9), last), byte(id.Level))
}

// treeSize returns the number of leaves stored in tx: the last key's leaf
// index + 1, or 0 when there is no tree (a ledger written before it).
func treeSize(tx *bolt.Tx) (uint64, error) {
	b := tx.Bucket(bucketTree)
	if b == nil {
		return 0, nil
	}
	k, _ := b.Cursor().Last()
	switch {
	case k == nil:
		return 0, nil
	case len(k) != 9:
		return 0, fmt.Errorf("failed to read tree: malformed key %x", k)
	}
	return binary.BigEndian.Uint64(k) + 1, nil
}

// readNodes returns the stored hashes of ids.
func readNodes(tx *bolt.Tx, ids []compact.NodeID) ([][]byte, error) {
	b := tx.Bucket(bucketTree)
	if b == nil && len(ids) > 0 {
		return nil, fmt.Errorf("failed to read tree: %w", ErrNoTree)
	}
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		v := b.Get(nodeKey(id))
		if len(v) != transparency.HashSize {
			return nil, fmt.Errorf("failed to read tree node (level %d, index %d): %d bytes stored", id.Level, id.Index, len(v))
		}
		hashes[i] = slices.Clone(v) // bbolt's bytes live only as long as tx
	}
	return hashes, nil
}

// loadRange returns the compact range [0, size) of the stored tree.
func loadRange(tx *bolt.Tx, size uint64) (*compact.Range, error) {
	hashes, err := readNodes(tx, compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, err
	}
	return treeRanges.NewRange(0, size, hashes)
}

// cloneRange returns a copy of r that can be appended to without changing r.
func cloneRange(r *compact.Range) *compact.Range {
	c, err := treeRanges.NewRange(r.Begin(), r.End(), slices.Clone(r.Hashes()))
	if err != nil {
		panic(err) // r is a valid range, so its copy is
	}
	return c
}

// appendLeaf adds the block with hash blockHash as the next leaf of rng and
// stores every node that completes, in tx.
func appendLeaf(tx *bolt.Tx, rng *compact.Range, blockHash [32]byte) error {
	b, err := tx.CreateBucketIfNotExists(bucketTree)
	if err != nil {
		return fmt.Errorf("failed to create tree bucket: %w", err)
	}
	b.FillPercent = 1 // keys only ever grow
	leaf := transparency.LeafHash(blockHash)
	var putErr error
	err = rng.Append(leaf[:], func(id compact.NodeID, hash []byte) {
		if putErr == nil {
			putErr = b.Put(nodeKey(id), hash)
		}
	})
	if err == nil {
		err = putErr
	}
	if err != nil {
		return fmt.Errorf("failed to add block %d to the tree: %w", rng.End()-1, err)
	}
	return nil
}

// rootOf returns the root hash of rng, which starts at leaf 0.
func rootOf(rng *compact.Range) ([32]byte, error) {
	root, err := rng.GetRootHash(nil)
	if err != nil || len(root) != transparency.HashSize {
		return [32]byte{}, fmt.Errorf("failed to compute tree root of size %d: %v", rng.End(), err)
	}
	return [32]byte(root), nil
}

// buildTree adds the blocks the tree lacks — all of them in a ledger written
// before the tree existed — treeBatch blocks per transaction, calling
// progress after each. A crash between transactions loses nothing: the next
// Open continues from the stored size. Called by Open, before the committer
// runs.
func (l *Bolt) buildTree(progress func(done, total uint64)) error {
	total := l.head.Height + 1
	for l.tree.End() < total {
		rng := cloneRange(l.tree)
		end := min(rng.End()+treeBatch, total)
		err := l.db.Update(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketBlocks).Cursor()
			for k, v := c.Seek(heightKey(rng.End())); rng.End() < end; k, v = c.Next() {
				want := rng.End()
				if k == nil || binary.BigEndian.Uint64(k) != want {
					return fmt.Errorf("block %d is missing; run Verify: %w", want, ErrIndexMismatch)
				}
				blk, err := DecodeBlock(v)
				if err != nil {
					return fmt.Errorf("block %d: %w", want, err)
				}
				hash, err := blk.Header.Hash()
				if err != nil {
					return err
				}
				if err := appendLeaf(tx, rng, hash); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("failed to build the Merkle tree: %w", err)
		}
		l.tree = rng
		if progress != nil {
			progress(rng.End(), total)
		}
	}
	return nil
}

// TreeHead returns the size and root of the tree over every committed block
// and the newest block's time. It fails with ErrNoTree on a read-only ledger
// written before the tree existed (a writable Open builds it).
func (l *Bolt) TreeHead() (TreeHead, error) {
	if l.isClosed() {
		return TreeHead{}, ErrClosed
	}
	l.mu.RLock()
	rng, size, t := l.tree, l.head.Height+1, l.headTime
	l.mu.RUnlock()
	if rng.End() != size {
		return TreeHead{}, fmt.Errorf("failed to read tree head: tree has %d of %d blocks: %w", rng.End(), size, ErrNoTree)
	}
	root, err := rootOf(rng)
	if err != nil {
		return TreeHead{}, err
	}
	return TreeHead{Size: size, Root: root, TimeMS: t}, nil
}

// TreeRoot returns the root hash of the tree of the first size blocks
// (1 ≤ size ≤ the tree's size; ErrTreeSize otherwise).
func (l *Bolt) TreeRoot(size uint64) ([32]byte, error) {
	var root [32]byte
	err := l.treeView(size, func(tx *bolt.Tx) error {
		rng, err := loadRange(tx, size)
		if err != nil {
			return err
		}
		root, err = rootOf(rng)
		return err
	})
	if err != nil {
		return [32]byte{}, fmt.Errorf("failed to compute root of tree size %d: %w", size, err)
	}
	return root, nil
}

// InclusionProof returns the audit path of leaf index (block index) in the
// tree of the first size blocks (RFC 9162 §2.1.3), leaf to root. It needs
// index < size ≤ the tree's size (ErrTreeSize otherwise).
func (l *Bolt) InclusionProof(index, size uint64) ([][32]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("failed to prove block %d in tree size %d: %w", index, size, ErrTreeSize)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("failed to prove block %d in tree size %d: %w", index, size, err)
	}
	path, err := l.prove(size, nodes)
	if err != nil {
		return nil, fmt.Errorf("failed to prove block %d in tree size %d: %w", index, size, err)
	}
	return path, nil
}

// ConsistencyProof returns the proof that the tree of the first size1 blocks
// is a prefix of the tree of the first size2 (RFC 9162 §2.1.4). It needs
// 1 ≤ size1 ≤ size2 ≤ the tree's size (ErrTreeSize otherwise); equal sizes
// give an empty proof.
func (l *Bolt) ConsistencyProof(size1, size2 uint64) ([][32]byte, error) {
	if size1 == 0 || size1 > size2 {
		return nil, fmt.Errorf("failed to prove tree size %d consistent with %d: %w", size1, size2, ErrTreeSize)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("failed to prove tree size %d consistent with %d: %w", size1, size2, err)
	}
	path, err := l.prove(size2, nodes)
	if err != nil {
		return nil, fmt.Errorf("failed to prove tree size %d consistent with %d: %w", size1, size2, err)
	}
	return path, nil
}

// prove reads the nodes of a proof in a tree of size leaves and builds it.
func (l *Bolt) prove(size uint64, nodes proof.Nodes) ([][32]byte, error) {
	var path [][32]byte
	err := l.treeView(size, func(tx *bolt.Tx) error {
		hashes, err := readNodes(tx, nodes.IDs)
		if err != nil {
			return err
		}
		hashes, err = nodes.Rehash(hashes, transparency.HashChildren)
		if err != nil {
			return err
		}
		path = make([][32]byte, len(hashes))
		for i, h := range hashes {
			path[i] = [32]byte(h)
		}
		return nil
	})
	return path, err
}

// treeView runs fn in a read transaction after checking that the tree holds
// at least size leaves (size ≥ 1).
func (l *Bolt) treeView(size uint64, fn func(*bolt.Tx) error) error {
	if l.isClosed() {
		return ErrClosed
	}
	l.mu.RLock()
	have := l.tree.End()
	l.mu.RUnlock()
	if size == 0 || size > have {
		return fmt.Errorf("tree size %d outside 1..%d: %w", size, have, ErrTreeSize)
	}
	return l.view(fn)
}

// treeCheck recomputes the tree while Verify walks the chain and compares
// every node it completes with the stored one. A ledger whose tree is not
// built yet (written before the tree existed, opened read-only since) has
// its stored part checked.
type treeCheck struct {
	b      *bolt.Bucket // nil: no tree stored
	stored uint64       // leaves stored
	rng    *compact.Range
	nodes  int // nodes compared
}

func newTreeCheck(tx *bolt.Tx) (*treeCheck, error) {
	size, err := treeSize(tx)
	if err != nil {
		return nil, err
	}
	return &treeCheck{b: tx.Bucket(bucketTree), stored: size, rng: treeRanges.NewEmptyRange(0)}, nil
}

// add appends the block with hash to the recomputed tree; the error text
// becomes the block's BadBlockError reason.
func (t *treeCheck) add(hash [32]byte) error {
	leaf := transparency.LeafHash(hash)
	var bad error
	err := t.rng.Append(leaf[:], func(id compact.NodeID, h []byte) {
		if bad != nil || (id.Index+1)<<id.Level > t.stored { // not stored yet
			return
		}
		t.nodes++
		if v := t.b.Get(nodeKey(id)); !slices.Equal(v, h) {
			bad = fmt.Errorf("node (level %d, index %d) of the Merkle tree does not match the blocks", id.Level, id.Index)
		}
	})
	if err != nil {
		return err
	}
	return bad
}

// finish checks, after the last of total blocks, that the tree stores
// nothing the chain did not produce.
func (t *treeCheck) finish(total uint64) error {
	if t.stored > total {
		return fmt.Errorf("failed to verify the Merkle tree: it has %d leaves, the chain %d blocks: %w", t.stored, total, ErrIndexMismatch)
	}
	if t.b != nil {
		if n := t.b.Stats().KeyN; n != t.nodes {
			return fmt.Errorf("failed to verify the Merkle tree: %d nodes stored, the chain gives %d: %w", n, t.nodes, ErrIndexMismatch)
		}
	}
	return nil
}
