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
// only for devices of its cluster). The block time is the consensus time of
// the CometBFT block, never a local clock.
//
// Accepted events of one CometBFT block form one ledger block (the same
// [ledger.Block] and header hash as the bbolt ledger; Header.Cluster holds
// the chain ID and Sig is empty: validators' commit signatures and each
// transaction's CH signature take its place). Blocks with no accepted event
// make no ledger block, so ledger heights are dense and differ from CometBFT
// heights.
//
// # App hash
//
// The app hash returned to CometBFT commits to the whole state: SHA-256 over
// the ledger head hash (which chains every accepted event) and a lattice hash
// (LtHash16) of every device record, every seen transaction digest and the
// cluster registry. A validator whose state differs in any record computes a
// different app hash: its proposals are refused by the others, and when the
// others commit a block it then halts rather than follow a state it cannot
// reproduce.
package bftledger
