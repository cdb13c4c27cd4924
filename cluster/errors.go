package cluster

import (
	"errors"
	"fmt"
)

// Rejection sentinels: what a request was refused for. coapsrv maps each to
// its CoAP code (docs/PROTOCOL.md §2.1). A rejected request changes nothing
// on the ledger. Errors that match none of them are internal failures.
var (
	// ErrMalformed is returned when a request does not decode or validate.
	ErrMalformed = errors.New("malformed")
	// ErrBadSignature is returned when a join's signature does not verify
	// under the key it carries, or its kid is not its device ID.
	ErrBadSignature = errors.New("bad signature")
	// ErrUnauthorized is returned when a protected request names no known
	// member or does not decrypt under its keys.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrReplay is returned when a protected request's sequence number was
	// seen already or fell out of the replay window.
	ErrReplay = errors.New("replay")
	// ErrOutsideRadius is returned when a join position is farther from the
	// CH than the cluster radius.
	ErrOutsideRadius = errors.New("outside radius")
	// ErrNotMember is returned when the requester is not a current member.
	ErrNotMember = errors.New("not a member")
	// ErrPeerNotMember is returned when /session names a peer that is not a
	// current member.
	ErrPeerNotMember = errors.New("peer not a member")
	// ErrUnknownCluster is returned when a join names another cluster.
	ErrUnknownCluster = errors.New("unknown cluster")
	// ErrConflict is returned when a join's ID is bound to another key.
	ErrConflict = errors.New("id bound to another key")
	// ErrRevoked is returned when a join's ID was revoked.
	ErrRevoked = errors.New("id revoked")
	// ErrUnknownDevice is returned by Revoke for an ID never seen.
	ErrUnknownDevice = errors.New("unknown device")
)

// EchoRequired is the error that asks the client to retry with Echo, a fresh
// echo value (RFC 9175): the join had none or a stale one, or a protected
// request is the member's first since the CH started.
type EchoRequired struct{ Echo []byte }

func (e *EchoRequired) Error() string { return "echo required" }

// reject wraps a sentinel with a short detail meant for the client.
func reject(sentinel error, detail string) error {
	if detail == "" {
		return sentinel
	}
	return fmt.Errorf("%w: %s", sentinel, detail)
}
