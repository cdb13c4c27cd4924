// Package ledger is IoT-Guard's tamper-evident record of cluster membership:
// a hash-chained, signed sequence of blocks of membership events, plus an
// index of the current state of every device the chain has seen.
//
// A block is deterministic CBOR (see [EncodeBlock]). Its header names the
// block's height, the hash of the previous header, the time, the cluster ID and
// the SHA-256 of the encoded events; the block hash is the SHA-256 of the
// encoded header, and the cluster head's key signs the encoded header bytes.
// Changing any byte of a stored block therefore breaks its signature, its
// events hash or the link from the next block, and [Bolt.Verify] names the
// first block where that happens.
//
// The package enforces the integrity rules of the ledger (a device ID is
// bound to one key — its enrolled key once enrolled; a revoked device stays
// revoked; a removed enrollment blocks its ID; a replayed join changes
// nothing; sessions are only granted between members). It does not decide
// admission policy — radius, freshness, expiry and who may ask what belong to
// the caller.
//
// # Storage
//
// [Bolt] keeps everything in one bbolt file with five buckets:
//
//	blocks       8-byte big-endian height → encoded block
//	devices      device ID → CBOR [Device]
//	enrollments  device ID → CBOR [Enrollment]
//	meta         "version" → 1, "cluster" → cluster ID, "head" → CBOR {ref, time}
//	tree         9-byte node key → 32-byte hash: the Merkle tree over the blocks
//	             (RFC 9162; see tree.go and package transparency)
//
// A block, the index records it changes, its Merkle tree nodes and the new
// head are written in one bbolt transaction, so an acknowledged event is on disk together with its
// index. Concurrent appends share blocks (group commit): one goroutine commits,
// taking whatever is queued, up to [Options.MaxBatch] events per block.
package ledger
