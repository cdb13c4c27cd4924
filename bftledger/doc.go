// Package bftledger is IoT-Guard's replicated ledger: several cluster heads,
// one per cluster, share one membership ledger kept by CometBFT validators, so
// that no single cluster head can rewrite it and a device of one cluster can
// be verified through the cluster head of another.
//
// It is a Go module of its own (bftledger/go.mod), so that the main module,
// its dependency graph and the default iotguard binary hold no CometBFT code;
// bin/iotguard-cometbft is built from cmd/iotguard-cometbft here.
//
// # Transactions
//
// A cluster head submits each [ledger.Event] as a transaction (see [Tx]): the
// event, the submitting cluster's ID and a random nonce, signed (ES256) by the
// cluster head's key over the chain ID and those fields. The genesis file's
// app_state holds the registry of clusters and their CH public keys (see
// [AppState]); a transaction whose signature does not verify under the
// registered key of the cluster it names is never part of a valid block.
//
// # State machine
//
// FinalizeBlock applies the transactions of a decided block, in order, with
// [ledger.Apply] — the same rules as the bbolt ledger — after two checks of
// its own: a signed transaction is applied at most once (replays are refused
// by the digest of its signed bytes, forever), and a cluster head writes only
// for its own cluster (it may join a device that is not a current member of
// another cluster, and may leave, revoke, grant sessions and record warnings
// only for devices of its cluster). The block time is its proposer's clock
// (the block's first transaction), which the other validators refuse if it
// runs ahead of theirs, bounded below by CometBFT's consensus time and the
// previous ledger block — not CometBFT's time alone, which after a quiet
// spell is the time of the block before it (see blocktime.go). Events are
// judged against it: an event whose time (the CH's clock) is farther from it
// than the genesis max_event_skew_ms is refused (ErrStale).
//
// Accepted events of one CometBFT block form one ledger block (the same
// [ledger.Block] and header hash as the bbolt ledger; Header.Cluster holds
// the chain ID and Sig is empty: validators' commit signatures and each
// transaction's CH signature take its place). Blocks with no accepted event
// make no ledger block, so ledger heights are dense and differ from CometBFT
// heights.
//
// # State hash
//
// The state hash commits to the whole state: SHA-256 over the ledger head
// hash (which chains every accepted event) and a lattice hash (LtHash16) of
// every device record, every seen transaction digest and the cluster
// registry. Every transaction result of a block carries the state hash after
// it, and CometBFT puts the hash of a block's results (codes and data) in the
// next block's header. A validator whose state differs in any record computes
// different results: its proposals are refused by the others, and when the
// others commit the next block it halts rather than follow a state it cannot
// reproduce.
//
// The app hash CometBFT sees is the genesis state's, for the life of the
// chain. A changing app hash makes CometBFT 0.38 follow every block that
// changed it with an empty block that carries the new hash
// (consensus.needProofBlock, not configurable): two consensus heights per
// commit, and a validator that is down costs a round at every height whose
// proposer it would be. With the state hash in the results instead, a commit
// takes one height. What that gives up: light-client proofs against the app
// hash, which IoT-Guard does not offer; and the state after the newest block
// is signed by the validators only in the next block's header, whenever that
// comes (until then each validator's Verify replays it).
package bftledger
