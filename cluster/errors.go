package cluster

import (
	"errors"
	"fmt"

	"github.com/iotguard/iotguard/ledger"
)

// Rejection sentinels: what a request was refused for. coapsrv maps each to
// its CoAP code and diagnostic in one table (docs/PROTOCOL.md §2.1). A
// rejected request changes nothing on the ledger. Errors that match none of
// them are internal failures.
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
	// ErrPeerNotMember is returned when /session names a peer that is not a
	// current member, or the requester itself.
	ErrPeerNotMember = errors.New("peer not a member")
	// ErrUnknownCluster is returned when a join names another cluster.
	ErrUnknownCluster = errors.New("unknown cluster")
	// ErrBadTalkProof is returned when the talk proof a /session forwards
	// does not authenticate its initiator: the initiator is unknown here,
	// the tag does not verify under its talk key for this responder, or the
	// proof is stale or already spent (in a *Refusal: "stale", "replay").
	// Nothing is recorded for it.
	ErrBadTalkProof = errors.New("bad talk proof")
	// ErrBusy is returned when the CH already remembers as many unexpired
	// talk proofs (Config.TalkProofs) or active replay windows
	// (Config.ReplayStates) as it may: it accepts no new one until some
	// expire, rather than forget one that could then be replayed.
	ErrBusy = errors.New("busy")
	// ErrJoinRate (an ErrBusy) is returned for a join beyond
	// Config.JoinRate. Its signature was not checked and nothing was
	// written; the device may send the same join again.
	ErrJoinRate = fmt.Errorf("%w: join rate", ErrBusy)
	// ErrNoLog is returned by the transparency resources when the ledger
	// keeps no Merkle tree (a backend without one).
	ErrNoLog = errors.New("no transparency log")
	// ErrNotInLog is returned when a proof names a block height or a tree
	// size the log does not have (in a *Refusal saying which).
	ErrNotInLog = errors.New("not in the log")
)

// Admission rejections (cluster/admission.go): a join refused by the
// cluster's admission policy. Credential errors depend on the credential
// alone; the others are about the ID's enrollment in this cluster.
var (
	// ErrNotEnrolled is returned when admission is enrolled and the join's
	// ID is not enrolled in this cluster and it carries no credential.
	ErrNotEnrolled = errors.New("not enrolled")
	// ErrEnrolledOtherKey is returned when the join's ID is enrolled with
	// another key. IMPORTANT: it is answered exactly as ErrNotEnrolled, so
	// that a join signed by any key does not tell whether an ID is
	// enrolled; only the metric reason tells them apart.
	ErrEnrolledOtherKey = errors.New("enrolled with another key")
	// ErrOutsideEnrolledPosition is returned when the ID's enrollment fixes
	// a position and the join claims one farther away than its tolerance.
	ErrOutsideEnrolledPosition = errors.New("outside enrolled position")
	// ErrCredentialMalformed is returned for a credential that does not
	// parse (wire.ParseCredential).
	ErrCredentialMalformed = errors.New("malformed credential")
	// ErrCredentialUntrusted is returned for a credential whose kid names
	// no fleet key this CH trusts.
	ErrCredentialUntrusted = errors.New("untrusted fleet key")
	// ErrCredentialNotYetValid is returned before a credential's not-before.
	ErrCredentialNotYetValid = errors.New("credential not yet valid")
	// ErrCredentialExpired is returned from a credential's not-after on.
	ErrCredentialExpired = errors.New("credential expired")
	// ErrCredentialOtherID is returned for a credential of another device ID.
	ErrCredentialOtherID = errors.New("credential for another id")
	// ErrCredentialOtherKey is returned for a credential of another device key.
	ErrCredentialOtherKey = errors.New("credential for another key")
	// ErrCredentialSignature is returned for a credential whose signature
	// does not verify under the fleet key its kid names.
	ErrCredentialSignature = errors.New("bad credential signature")
)

// Rejections the ledger's state machine decides: the core passes them on as
// the ledger returns them (the ledger's own sentinels, not copies).
var (
	// ErrNotMember is returned when the requester is not a current member
	// (in a *Refusal whose detail is its status).
	ErrNotMember = ledger.ErrNotMember
	// ErrConflict is returned when a join's ID is bound to another key.
	ErrConflict = ledger.ErrConflict
	// ErrRevoked is returned when a join or a revoke names a revoked ID.
	ErrRevoked = ledger.ErrRevoked
	// ErrStale is returned, as the Reason of an *EchoRequired, when a join
	// was signed over an echo made before the device's latest ledger event:
	// a superseded join replayed, or an honest device that reused an old
	// echo (it signs the new one and is in).
	ErrStale = ledger.ErrStale
	// ErrUnknownDevice is returned by Revoke, and by Proof, for an ID never
	// seen.
	ErrUnknownDevice = ledger.ErrUnknownDevice
	// ErrEnrollmentRemoved is returned when a join names an ID whose
	// enrollment the operator removed, and by Unenroll when it is removed
	// already.
	ErrEnrollmentRemoved = ledger.ErrEnrollmentRemoved
	// ErrEnrollmentExpired is returned when a join names an ID whose
	// enrollment expired (the ledger's Enrollment.ActiveAt decides).
	ErrEnrollmentExpired = ledger.ErrEnrollmentExpired
	// ErrEnrolled is returned by Enroll without Replace for an ID that is
	// enrolled already.
	ErrEnrolled = ledger.ErrEnrolled
	// ErrUnenrolled is returned by Unenroll for an ID never enrolled.
	ErrUnenrolled = ledger.ErrNotEnrolled
	// ErrOtherCluster is returned when a join's device is a current member
	// of another cluster of a shared ledger (in a *Refusal whose detail
	// names that cluster).
	ErrOtherCluster = ledger.ErrOtherCluster
)

// ErrUncertain is returned when the ledger did not decide a join (or a
// leave, a revoke) before the request's context ended: the event may still
// be committed. It is not a rejection. The ledger's state machine answers a
// retry of the same join (same device key and nonce) with the join it
// recorded, if any: a retry is never recorded twice.
var ErrUncertain = ledger.ErrUncertain

// Refusal is a rejection with a short detail for the client, e.g. the status
// of a peer that is not a member. The detail never holds a secret.
type Refusal struct {
	Reason error // one of the rejection sentinels
	Detail string
}

func (r *Refusal) Error() string { return r.Reason.Error() + ": " + r.Detail }

// Unwrap returns the rejection sentinel.
func (r *Refusal) Unwrap() error { return r.Reason }

// EchoRequired is the error that asks the client to retry with Echo, a fresh
// echo value (RFC 9175): the join had none or an expired one, or a protected
// request is the member's first since the CH started. Reason, if not nil, is
// the rejection that made the CH ask (ErrStale): the answer is that
// rejection's, with the echo.
type EchoRequired struct {
	Echo   []byte
	Reason error
}

func (e *EchoRequired) Error() string {
	if e.Reason != nil {
		return e.Reason.Error()
	}
	return "echo required"
}

// Unwrap returns Reason.
func (e *EchoRequired) Unwrap() error { return e.Reason }

// refuse returns sentinel with a detail for the client.
func refuse(sentinel error, detail string) error {
	return &Refusal{Reason: sentinel, Detail: detail}
}

// Sealed is the error of a protected request that opened: its requester is
// authenticated, so the refusal is sealed for it (docs/PROTOCOL.md §4.1,
// "Sealed refusals"), and a device can tell the CH's refusal from one forged
// on the path. coapsrv answers Err as any refusal, with Seal of its
// diagnostic as the payload.
type Sealed struct {
	Err  error
	Seal func(diag string) ([]byte, error)
}

func (s *Sealed) Error() string { return s.Err.Error() }

// Unwrap returns Err.
func (s *Sealed) Unwrap() error { return s.Err }
