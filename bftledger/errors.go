package bftledger

import "errors"

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
	// (the device is not a member of the writing cluster).
	ErrOtherCluster = errors.New("device belongs to another cluster")

	// ErrUncertain is returned by Append when its context ends after the
	// transaction entered the mempool and before its block was seen: it may
	// still be committed. The caller must not assume either outcome.
	ErrUncertain = errors.New("transaction outcome unknown")

	// ErrNodeStopped is returned by Append when the CometBFT node stopped or
	// the ledger was closed while it waited.
	ErrNodeStopped = errors.New("node stopped")
)
