package ledger

import (
	"errors"
	"fmt"

	"github.com/iotguard/iotguard/membership"
)

// Errors of the state machine. Append wraps them with the event type and the
// device ID; callers branch with errors.Is.
var (
	// ErrInvalidEvent is returned when an event is malformed regardless of the
	// ledger's state: unknown type, empty or over-long device ID, a join without
	// key or nonces, key material on an event that is not a join, a string that
	// is not valid UTF-8.
	ErrInvalidEvent = errors.New("invalid event")

	// ErrBadGrant is returned by CheckGrants and VerifyGrantInclusion when a
	// session grant record, a batch of them or an inclusion path does not
	// match the session-batch events on the ledger (grants.go).
	ErrBadGrant = errors.New("audit records do not match the ledger")

	// ErrNoRecord is returned by ProveGrant and ProveAuditRecord when the
	// grant log holds no such record in a batch committed to the ledger:
	// never granted, in a batch not yet committed, or pruned. Unlike
	// ErrBadGrant it says nothing is wrong with the records there are.
	ErrNoRecord = errors.New("not recorded in the grant log")

	// ErrUnknownDevice is returned when an event or a lookup names a device ID
	// that no join has ever bound.
	ErrUnknownDevice = errors.New("unknown device")

	// ErrConflict is returned for a join of a device ID that is bound to a
	// different key. A device ID stays bound to its first key forever.
	ErrConflict = errors.New("device ID is bound to another key")

	// ErrRevoked is returned for a join or a revoke of a revoked device.
	// Revocation is final.
	ErrRevoked = errors.New("device is revoked")

	// ErrDuplicate is returned for a join that repeats the key and device nonce
	// of the latest join of a device that is still a member at the join's
	// time (Device.StatusAt; not once that membership expired): a replayed
	// join changes nothing.
	ErrDuplicate = errors.New("duplicate join")

	// ErrStale is returned for a join whose freshness is older than the
	// device's record: the echo it signed was made at a ledger height
	// (Event.FreshAt) below the block of the device's latest join, leave or
	// revoke (Device.Updated). Such a join was signed before that event —
	// a copy of a superseded join, replayed — and must not undo it.
	ErrStale = errors.New("stale join")

	// ErrNotMember is returned when an event needs a current member (leave,
	// either side of a session) and the device has left, been revoked or
	// expired (always inside a *StatusError).
	ErrNotMember = errors.New("device is not a member")

	// ErrEnrolled is returned for an enroll without Replace of a device ID
	// that has an enrollment already (in force, expired or removed).
	ErrEnrolled = errors.New("device is enrolled already")

	// ErrNotEnrolled is returned for an unenroll, and by
	// Ledger.Enrollment, for a device ID that was never enrolled.
	ErrNotEnrolled = errors.New("device is not enrolled")

	// ErrEnrollmentRemoved is returned for a join or an unenroll of a device
	// whose enrollment the operator removed, and by Enrollment.ActiveAt.
	ErrEnrollmentRemoved = errors.New("enrollment removed")

	// ErrEnrollmentExpired is returned by Enrollment.ActiveAt from the
	// enrollment's expiry on. The state machine never returns it: the
	// expiry bounds admission, which is the cluster core's policy.
	ErrEnrollmentExpired = errors.New("enrollment expired")

	// ErrOtherCluster is returned by a ledger shared by several clusters
	// (bftledger) when a cluster writes about a device of another cluster.
	// For a join (the device is a current member of another cluster) it also
	// matches ErrConflict; otherwise ErrNotMember.
	ErrOtherCluster = errors.New("device belongs to another cluster")
)

// ErrBusy is returned by a shared ledger's Append when its node would not
// take the event now — its cluster's share of the mempool, or the mempool,
// is full (bftledger) — before anything was submitted: nothing is written,
// and the same event may be tried again later.
var ErrBusy = errors.New("ledger busy")

// ErrUncertain is returned by Append when it stopped waiting for an event it
// had already handed on (a replicated ledger's transaction in flight, when
// the caller's context or the ledger's commit timeout ended first): the event
// may still be committed, or not. The bbolt ledger never returns it (its
// Append waits for the outcome once the committer took the event). A caller
// must not assume either outcome; the state machine keeps a retry of the
// same join (same key and device nonce) from being recorded twice.
var ErrUncertain = errors.New("outcome not known yet")

// Errors of the store.
var (
	// ErrClosed is returned by every method of a ledger after Close.
	ErrClosed = errors.New("ledger is closed")

	// ErrLocked is returned by Open when another process (or another Open in
	// this process) holds the ledger file.
	ErrLocked = errors.New("ledger is in use")

	// ErrClusterMismatch is returned by Open when the file belongs to another
	// cluster than Options.Cluster.
	ErrClusterMismatch = errors.New("ledger belongs to another cluster")

	// ErrReadOnly is returned by Append, and by Open for a file that is not
	// yet a ledger, when the ledger was opened without a Signer.
	ErrReadOnly = errors.New("ledger has no signer")

	// ErrWrongKey is returned by a writable Open when the signature of the
	// ledger's head block does not verify under Options.Verifier: the CH key
	// is not the key that signed the ledger.
	ErrWrongKey = errors.New("ledger was signed by another key")

	// ErrNoVerifier is returned by Verify when the ledger was opened without a
	// Verifier.
	ErrNoVerifier = errors.New("ledger has no verifier")

	// ErrIndexMismatch is returned by Verify when the chain is intact but the
	// device index or the head recorded in the meta bucket differs from what
	// replaying the chain produces, and by a writable Open when the head in
	// meta is not the last stored block.
	ErrIndexMismatch = errors.New("index does not match the chain")

	// ErrNoTree is returned by the tree's methods (TreeHead, proofs) on a
	// ledger opened read-only whose Merkle tree does not cover every block:
	// it was written before the tree existed, and the next writable Open
	// builds the tree.
	ErrNoTree = errors.New("ledger has no Merkle tree yet")

	// ErrTreeSize is returned for a proof or root asked of a tree size the
	// ledger does not have (0, or more blocks than it holds), or of a leaf
	// outside the tree, or for a consistency proof from a larger size to a
	// smaller one.
	ErrTreeSize = errors.New("no such tree size or leaf")
)

// StatusError is returned when an event names a device that is not what the
// event needs: an ID no join has bound (it wraps ErrUnknownDevice) or a
// device that is not a current member (it wraps ErrNotMember). Status says
// which: membership.Unknown, Left, Revoked or Expired.
type StatusError struct {
	ID     string
	Status membership.Status
}

func (e *StatusError) Error() string {
	if e.Status == membership.Unknown {
		return fmt.Sprintf("device %q: %v", e.ID, ErrUnknownDevice)
	}
	return fmt.Sprintf("device %q is %s: %v", e.ID, e.Status, ErrNotMember)
}

// Unwrap returns ErrUnknownDevice or ErrNotMember.
func (e *StatusError) Unwrap() error {
	if e.Status == membership.Unknown {
		return ErrUnknownDevice
	}
	return ErrNotMember
}

// BadBlockError is returned by Verify for the first block, in height order,
// that fails a check: missing, malformed, wrong height, cluster or previous
// hash, events hash or signature wrong, or an event the state machine rejects.
type BadBlockError struct {
	Height uint64 // the height of the bad block (the bbolt key, not the header's claim)
	Reason string
}

func (e *BadBlockError) Error() string {
	return fmt.Sprintf("block %d: %s", e.Height, e.Reason)
}
