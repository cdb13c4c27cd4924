package bftledger

import (
	"errors"
	"fmt"

	"github.com/iotguard/iotguard/ledger"
)

// Errors of the replicated state machine, in addition to the ledger's own
// (ledger.ErrConflict, ledger.ErrNotMember, …), which pass through wrapped.
var (
	// ErrMalformedTx is returned for a transaction that does not decode, is
	// not in deterministic encoding, or is larger than MaxTxBytes.
	ErrMalformedTx = errors.New("malformed transaction")

	// ErrUnregistered is returned for a transaction that names a cluster the
	// genesis registry does not hold, and by Open for a cluster head whose
	// cluster is not registered with its key.
	ErrUnregistered = errors.New("cluster is not registered")

	// ErrBadSignature is returned for a transaction whose signature does not
	// verify under its cluster's registered key.
	ErrBadSignature = errors.New("bad transaction signature")

	// ErrReplay is returned for a signed transaction that a block has already
	// carried: it is never applied twice.
	ErrReplay = errors.New("transaction already in a block")

	// ErrStale is returned for an event whose time is farther from the block
	// time than the genesis max_event_skew_ms allows.
	ErrStale = errors.New("event time too far from block time")

	// ErrOtherCluster is returned when a cluster head writes about a device
	// of another cluster. For a join it also matches ledger.ErrConflict (the
	// device is a current member elsewhere); otherwise ledger.ErrNotMember
	// (the device is not a member of the writing cluster). It is
	// ledger.ErrOtherCluster, so that the CH (which has no CometBFT in its
	// module) can say so.
	ErrOtherCluster = ledger.ErrOtherCluster

	// ErrTooManyPending (a ledger.ErrBusy) is returned by CheckTx for a
	// transaction of a cluster that already has MaxPendingTxs waiting in
	// this node's mempool: one registered CH cannot fill it and keep the
	// others' transactions out. Nothing was submitted; it may be tried
	// again once blocks took some.
	ErrTooManyPending = fmt.Errorf("%w: too many transactions of the cluster waiting", ledger.ErrBusy)

	// ErrUncertain (ledger.ErrUncertain) is returned by Append when it stops
	// waiting after its transaction entered the mempool and before its block
	// was seen — its context or the commit timeout ended, or the node
	// stopped: it may still be committed. The caller must not assume either
	// outcome.
	ErrUncertain = ledger.ErrUncertain

	// ErrNodeStopped is returned by Append, with ErrUncertain, when the
	// CometBFT node stopped or the ledger was closed while it waited.
	ErrNodeStopped = errors.New("node stopped")
)
