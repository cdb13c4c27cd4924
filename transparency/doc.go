// Package transparency makes the ledger checkable from outside the cluster
// head, as Certificate Transparency (RFC 9162) and the Go checksum database
// do: a Merkle tree over the ledger's blocks, checkpoints (tree size, root,
// time, cluster) signed by the CH key, inclusion proofs (a block is in the
// tree) and consistency proofs (a tree is an extension of an earlier one).
//
// It owns the rules a verifier applies — the leaf hash of a block, what makes
// a checkpoint valid, how a proof is checked — and the auditor's rule that
// detects a rewritten history (a [Witness] keeps the last checkpoint it
// verified and accepts the next only with a consistency proof from it). The
// ledger keeps the tree (ledger.Bolt), the cluster core signs checkpoints,
// devices and the CLI verify them here; the tree hashing and proof checks
// are those of github.com/transparency-dev/merkle.
package transparency
