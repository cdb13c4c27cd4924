package transparency

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
)

// VerifyInclusion checks that path proves block index, whose hash is
// blockHash, to be leaf index of the tree cp states (RFC 9162 §2.1.3.2). A
// failure wraps ErrBadProof and says why: the block is outside the tree, the
// path has the wrong length for this leaf and tree size (truncated or
// padded), or it leads to another root (a changed hash, a wrong index).
func VerifyInclusion(cp *Checkpoint, index uint64, blockHash [32]byte, path [][]byte) error {
	if index >= cp.Size {
		return fmt.Errorf("%w: block %d is not in a tree of %d blocks", ErrBadProof, index, cp.Size)
	}
	leaf := LeafHash(blockHash)
	return verifyLeaf(leaf[:], index, cp.Size, path, cp.Root[:])
}

// VerifyLeaf checks that path proves the leaf hash leaf to be leaf index of
// the tree of size leaves with root: the same check as VerifyInclusion, for
// trees other than the block tree (the ledger's session batches). A failure
// wraps ErrBadProof.
func VerifyLeaf(leaf [32]byte, index, size uint64, path [][]byte, root [32]byte) error {
	if index >= size {
		return fmt.Errorf("%w: leaf %d is not in a tree of %d leaves", ErrBadProof, index, size)
	}
	return verifyLeaf(leaf[:], index, size, path, root[:])
}

// verifyLeaf checks the inclusion of the leaf hash leaf at index in the tree
// of size with root.
func verifyLeaf(leaf []byte, index, size uint64, path [][]byte, root []byte) error {
	got, err := proof.RootFromInclusionProof(hasher, index, size, leaf, path)
	if err != nil {
		return fmt.Errorf("%w: inclusion of block %d in tree size %d: %v", ErrBadProof, index, size, err)
	}
	if string(got) != string(root) {
		return fmt.Errorf("%w: inclusion path of block %d leads to root %x, the checkpoint of tree size %d says %x",
			ErrBadProof, index, got, size, root)
	}
	return nil
}

// VerifyConsistency checks that path proves the tree of oldSize blocks with
// root oldRoot to be a prefix of the tree cp states (RFC 9162 §2.1.4.2). It
// needs 1 ≤ oldSize ≤ cp.Size; equal sizes need an empty path and equal
// roots. A failure wraps ErrBadProof.
func VerifyConsistency(oldSize uint64, oldRoot [32]byte, cp *Checkpoint, path [][]byte) error {
	if oldSize == 0 || oldSize > cp.Size {
		return fmt.Errorf("%w: no consistency from tree size %d to %d", ErrBadProof, oldSize, cp.Size)
	}
	err := proof.VerifyConsistency(hasher, oldSize, cp.Size, path, oldRoot[:], cp.Root[:])
	var mismatch proof.RootMismatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mismatch):
		return fmt.Errorf("%w: consistency path from tree size %d to %d leads to root %x, want %x",
			ErrBadProof, oldSize, cp.Size, mismatch.CalculatedRoot, mismatch.ExpectedRoot)
	default:
		return fmt.Errorf("%w: consistency from tree size %d to %d: %v", ErrBadProof, oldSize, cp.Size, err)
	}
}
