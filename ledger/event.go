package ledger

import (
	"crypto/sha256"
	"fmt"
	"unicode/utf8"
)

// MaxIDLen is the longest device ID, in bytes, the ledger accepts. IDs are
// bbolt keys and appear in every event; the bound keeps one bad event from
// failing the transaction of a whole batch.
const MaxIDLen = 255

// EventType says what happened to a device. The values are part of the stored
// format and never change meaning.
type EventType uint8

const (
	EventJoin          EventType = 1  // a device joined or rejoined with its key
	EventLeave         EventType = 2  // a member left
	EventRevoke        EventType = 3  // an operator revoked a device
	EventSession       EventType = 4  // a session was granted: IDs and times only, NEVER a key
	EventVerifyWarning EventType = 5  // a /verify answered with a warning
	EventRotate        EventType = 6  // the CH key was rotated: Device is the cluster ID, Request the rotation signed by the old key
	EventEnroll        EventType = 7  // an operator enrolled a device ID with a key (ledger/enroll.go)
	EventUnenroll      EventType = 8  // an operator removed a device's enrollment
	EventSessionBatch  EventType = 9  // a batch of audit records (session grants, warnings) committed by hash: Device is the cluster ID (grants.go)
	EventGrantsPruned  EventType = 10 // the CH may delete the records of its batches below Batch committed before this event: Device is the cluster ID (grantprune.go)
)

// String returns the lower-case name of t: "join", "leave", "revoke",
// "session", "verify-warning", "rotate", "enroll", "unenroll",
// "session-batch", "grants-pruned", or "EventType(n)" for an unknown value.
func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventRevoke:
		return "revoke"
	case EventSession:
		return "session"
	case EventVerifyWarning:
		return "verify-warning"
	case EventRotate:
		return "rotate"
	case EventEnroll:
		return "enroll"
	case EventUnenroll:
		return "unenroll"
	case EventSessionBatch:
		return "session-batch"
	case EventGrantsPruned:
		return "grants-pruned"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event is one membership event. It is stored as CBOR with integer keys; zero
// optional fields are omitted, so the encoding of an event is deterministic.
//
// IMPORTANT: only a join carries key material (Key, the nonces, the signed
// request), and an enroll the device's public key (Key) it admits. A session
// event records that a session was granted, never its key; the ledger
// rejects any other event that carries Key, DeviceNonce, CHNonce or Request.
type Event struct {
	Type        EventType `cbor:"1,keyasint"`
	Device      string    `cbor:"2,keyasint"`            // subject: join/leave/revoke the device; session the requester M2; verify-warning the asking member
	Time        int64     `cbor:"3,keyasint"`            // unix milliseconds, set by the caller
	Key         []byte    `cbor:"4,keyasint,omitempty"`  // join, enroll: device public key as COSE_Key bytes
	DeviceNonce []byte    `cbor:"5,keyasint,omitempty"`  // join
	CHNonce     []byte    `cbor:"6,keyasint,omitempty"`  // join
	Lat         int64     `cbor:"7,keyasint,omitempty"`  // join: microdegrees; enroll: the enrolled position (with Tolerance)
	Lon         int64     `cbor:"8,keyasint,omitempty"`  // join: microdegrees; enroll: the enrolled position
	Expires     int64     `cbor:"9,keyasint,omitempty"`  // join: membership expiry; session: session expiry; enroll: end of admission (unix seconds)
	Peer        string    `cbor:"10,keyasint,omitempty"` // session: M1; verify-warning: the subject that got the warning
	SessionID   []byte    `cbor:"11,keyasint,omitempty"` // session
	Reason      string    `cbor:"12,keyasint,omitempty"` // revoke, enroll, unenroll reason / warning reason
	Request     []byte    `cbor:"13,keyasint,omitempty"` // join: the device's signed join request (COSE_Sign1) as evidence; rotate: the rotation signed by the old key
	// FreshAt (join) is the ledger height at which the CH made the echo the
	// device signed (docs/PROTOCOL.md §3.1): the device signed this join
	// after every block up to FreshAt was committed. 0: an echo made at
	// genesis, or a join from before this field existed.
	FreshAt uint64 `cbor:"14,keyasint,omitempty"`
	// Keys from 20 on belong to enrollment (ledger/enroll.go).
	Tolerance uint64 `cbor:"20,keyasint,omitempty"` // enroll: metres around Lat, Lon; 0: no enrolled position
	Replace   bool   `cbor:"21,keyasint,omitempty"` // enroll: give the ID to Key, ending the membership of another key
	// Keys from 30 on belong to session batches (grants.go).
	Batch uint64 `cbor:"30,keyasint,omitempty"` // session-batch: the batch's number in the CH's grant log, from 1; grants-pruned: the first batch not pruned
	Count uint64 `cbor:"31,keyasint,omitempty"` // session-batch: grants in the batch, 1..MaxGrantBatch
	Root  []byte `cbor:"32,keyasint,omitempty"` // session-batch: RFC 9162 Merkle root (SHA-256) over the batch's grant records
}

// validate checks the shape of e, independent of the ledger's state. Strings
// must be valid UTF-8 because the decoder rejects anything else: an event
// that could be written but not read back would make the chain unreadable.
func (e Event) validate() error {
	if err := validID("device", e.Device); err != nil {
		return err
	}
	if !utf8.ValidString(e.Reason) {
		return fmt.Errorf("%w: reason is not valid UTF-8", ErrInvalidEvent)
	}
	if e.Peer != "" {
		if err := validID("peer", e.Peer); err != nil {
			return err
		}
	}
	batchNumbered := e.Type == EventSessionBatch || e.Type == EventGrantsPruned
	if !batchNumbered && e.Batch != 0 || e.Type != EventSessionBatch && (e.Count != 0 || len(e.Root) != 0) {
		return fmt.Errorf("%w: %s event of device %q carries a session batch's fields", ErrInvalidEvent, e.Type, e.Device)
	}
	switch e.Type {
	case EventJoin:
		if len(e.Key) == 0 {
			return fmt.Errorf("%w: join of device %q without key", ErrInvalidEvent, e.Device)
		}
		if len(e.DeviceNonce) == 0 || len(e.CHNonce) == 0 {
			return fmt.Errorf("%w: join of device %q without nonces", ErrInvalidEvent, e.Device)
		}
		if _, err := joinEvidence(e, false); err != nil {
			return err
		}
		return noEnrollFields(e)
	case EventEnroll:
		return validateEnroll(e)
	case EventLeave, EventRevoke, EventVerifyWarning, EventUnenroll:
	case EventRotate:
		if _, err := rotationOf(e); err != nil {
			return err
		}
		if len(e.Key) != 0 || len(e.DeviceNonce) != 0 || len(e.CHNonce) != 0 || e.Peer != "" || e.FreshAt != 0 {
			return fmt.Errorf("%w: rotate event carries other fields", ErrInvalidEvent)
		}
		return noEnrollFields(e)
	case EventSession:
		if e.Peer == "" {
			return fmt.Errorf("%w: session of device %q without peer", ErrInvalidEvent, e.Device)
		}
	case EventSessionBatch:
		switch {
		case e.Batch == 0:
			return fmt.Errorf("%w: session batch of %q without a batch number", ErrInvalidEvent, e.Device)
		case e.Count == 0 || e.Count > MaxGrantBatch:
			return fmt.Errorf("%w: session batch %d of %q with %d grants (1..%d)", ErrInvalidEvent, e.Batch, e.Device, e.Count, MaxGrantBatch)
		case len(e.Root) != sha256.Size:
			return fmt.Errorf("%w: session batch %d of %q with a %d-byte root", ErrInvalidEvent, e.Batch, e.Device, len(e.Root))
		case e.Peer != "" || len(e.SessionID) != 0 || e.Expires != 0 || e.Lat != 0 || e.Lon != 0 || e.Reason != "":
			return fmt.Errorf("%w: session batch %d of %q carries other fields", ErrInvalidEvent, e.Batch, e.Device)
		}
	case EventGrantsPruned:
		switch {
		case e.Batch < 2:
			return fmt.Errorf("%w: grants-pruned of %q prunes no batch (first batch kept %d)", ErrInvalidEvent, e.Device, e.Batch)
		case e.Peer != "" || len(e.SessionID) != 0 || e.Expires != 0 || e.Lat != 0 || e.Lon != 0 || e.Reason != "":
			return fmt.Errorf("%w: grants-pruned of %q carries other fields", ErrInvalidEvent, e.Device)
		}
	default:
		return fmt.Errorf("%w: unknown type %d", ErrInvalidEvent, uint8(e.Type))
	}
	if len(e.Key) != 0 || len(e.DeviceNonce) != 0 || len(e.CHNonce) != 0 || len(e.Request) != 0 {
		return fmt.Errorf("%w: %s event of device %q carries key material", ErrInvalidEvent, e.Type, e.Device)
	}
	if e.FreshAt != 0 {
		return fmt.Errorf("%w: %s event of device %q carries a join's freshness", ErrInvalidEvent, e.Type, e.Device)
	}
	return noEnrollFields(e)
}

func validID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty %s ID", ErrInvalidEvent, what)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %s ID longer than %d bytes", ErrInvalidEvent, what, MaxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: %s ID is not valid UTF-8", ErrInvalidEvent, what)
	}
	return nil
}
