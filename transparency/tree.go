package transparency

import (
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// hasher is RFC 9162's tree hash (§2.1.1) with SHA-256: a leaf is
// SHA-256(0x00 ‖ data), an interior node SHA-256(0x01 ‖ left ‖ right).
var hasher = rfc6962.DefaultHasher

// HashSize is the size of every hash in the tree, a checkpoint and a proof.
const HashSize = 32

// LeafHash returns the tree's leaf hash of the block whose hash (the SHA-256
// of its encoded header) is blockHash: SHA-256(0x00 ‖ blockHash). Leaf i of
// the tree is block i; it is the one rule that ties the tree to the ledger.
func LeafHash(blockHash [32]byte) [32]byte {
	return [32]byte(hasher.HashLeaf(blockHash[:]))
}

// HashLeaf returns the leaf hash of any record: SHA-256(0x00 ‖ data). The
// ledger's session batches (ledger/grants.go) hash their grant records with
// it, the same tree hash as the block tree's.
func HashLeaf(data []byte) [32]byte { return [32]byte(hasher.HashLeaf(data)) }

// HashChildren returns the interior node over left and right:
// SHA-256(0x01 ‖ left ‖ right).
func HashChildren(left, right []byte) []byte { return hasher.HashChildren(left, right) }

// Ranges makes compact ranges of the tree (the right border: at most one
// perfect subtree per bit of the size), to append leaves to and take roots
// of: the ledger keeps one, an auditor replaying an export builds one.
var Ranges = &compact.RangeFactory{Hash: HashChildren}
