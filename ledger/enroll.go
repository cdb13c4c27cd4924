package ledger

import (
	"bytes"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// Enrollment is the index record of an operator's enrollment of one device
// ID: the key the operator let in under that ID and the terms of its
// admission. It is the state that replaying the enroll and unenroll events of
// the chain produces, kept beside the device records (the "enrollments"
// bucket), not in them: a device may be enrolled before it ever joins.
//
// The state machine owns the history part: an enrolled ID is bound to the
// enrolled key (a join with another key is ErrConflict), a removed
// enrollment blocks every join of its ID (ErrEnrollmentRemoved), and an
// enroll with Replace gives the ID to a new key, ending the old key's
// membership. Whether a join must be enrolled at all, and whether it meets
// the terms (ActiveAt, the position tolerance), is admission policy: the
// cluster core's (cluster/admission.go), never the ledger's.
type Enrollment struct {
	ID        string   `cbor:"1,keyasint"`
	Key       []byte   `cbor:"2,keyasint"`           // COSE_Key of the enrolled device key
	Lat       int64    `cbor:"3,keyasint,omitempty"` // enrolled position, microdegrees (when Tolerance > 0)
	Lon       int64    `cbor:"4,keyasint,omitempty"`
	Tolerance uint64   `cbor:"5,keyasint,omitempty"` // metres around Lat, Lon; 0: no enrolled position
	Expires   int64    `cbor:"6,keyasint,omitempty"` // unix seconds: joins from then on are not admitted; 0 never
	Removed   bool     `cbor:"7,keyasint,omitempty"` // removed by the operator: no join of the ID applies
	Enrolled  BlockRef `cbor:"8,keyasint"`           // block of the latest enroll event
	Updated   BlockRef `cbor:"9,keyasint"`           // block of the latest event that changed the record
	// Cluster is the enrolling cluster on a ledger shared by several
	// clusters (bftledger); empty on a single-cluster ledger.
	Cluster string `cbor:"10,keyasint,omitempty"`
}

// HasPosition reports whether the enrollment fixes the device's position.
func (e Enrollment) HasPosition() bool { return e.Tolerance > 0 }

// ActiveAt returns nil if e admits joins at now, ErrEnrollmentRemoved after
// the operator removed it, or ErrEnrollmentExpired from its expiry on
// (Expires 0 never expires). It is the one rule for "the enrollment is in
// force"; the cluster core asks it before it admits a join.
func (e Enrollment) ActiveAt(now time.Time) error {
	switch {
	case e.Removed:
		return ErrEnrollmentRemoved
	case e.Expires != 0 && now.Unix() >= e.Expires:
		return ErrEnrollmentExpired
	}
	return nil
}

// validateEnroll checks the shape of an enroll event: a device key that is a
// P-256 COSE_Key, a position in range and only with a tolerance, no other
// key material.
func validateEnroll(e Event) error {
	if _, err := wire.ParsePublicKey(e.Key); err != nil {
		return fmt.Errorf("%w: enroll of device %q: key: %v", ErrInvalidEvent, e.Device, err)
	}
	switch {
	case len(e.DeviceNonce) != 0 || len(e.CHNonce) != 0 || len(e.Request) != 0 || e.FreshAt != 0:
		return fmt.Errorf("%w: enroll of device %q carries nonces, a request or a join's freshness", ErrInvalidEvent, e.Device)
	case e.Tolerance == 0 && (e.Lat != 0 || e.Lon != 0):
		return fmt.Errorf("%w: enroll of device %q: a position needs a tolerance", ErrInvalidEvent, e.Device)
	case e.Lat < -wire.MaxMicroLat || e.Lat > wire.MaxMicroLat || e.Lon < -wire.MaxMicroLon || e.Lon > wire.MaxMicroLon:
		return fmt.Errorf("%w: enroll of device %q: position out of range", ErrInvalidEvent, e.Device)
	case e.Expires < 0:
		return fmt.Errorf("%w: enroll of device %q: negative expiry", ErrInvalidEvent, e.Device)
	case e.Peer != "":
		return fmt.Errorf("%w: enroll of device %q names a peer", ErrInvalidEvent, e.Device)
	}
	return nil
}

// noEnrollFields refuses the enrollment-only fields on other event types.
func noEnrollFields(e Event) error {
	if e.Tolerance != 0 || e.Replace {
		return fmt.Errorf("%w: %s event of device %q carries enrollment fields", ErrInvalidEvent, e.Type, e.Device)
	}
	return nil
}

// applyEnroll records an operator's enrollment of ev.Device with ev.Key.
//
//   - Without Replace: an ID already enrolled (in force, expired or removed)
//     → ErrEnrolled; an ID bound by a join to another key → ErrConflict.
//   - With Replace: the enrollment is written whatever was there; a device
//     record bound to another key that is not revoked becomes revoked (the
//     old key's membership ends with this event), and the ID is the new
//     key's to join (applyJoin).
//   - Either way, an ID whose record is bound to ev.Key and revoked →
//     ErrRevoked: a revoked key never comes back under its ID; replace it
//     with a new one.
func applyEnroll(idx index, ev Event, ref BlockRef) error {
	_, enrolled, err := idx.enrollment(ev.Device)
	if err != nil {
		return err
	}
	d, bound, err := idx.get(ev.Device)
	if err != nil {
		return err
	}
	sameKey := bound && bytes.Equal(d.Key, ev.Key)
	switch {
	case !ev.Replace && enrolled:
		return fmt.Errorf("device %q: %w", ev.Device, ErrEnrolled)
	case !ev.Replace && bound && !sameKey:
		return fmt.Errorf("device %q: %w", ev.Device, ErrConflict)
	case sameKey && d.Status == membership.Revoked:
		return fmt.Errorf("device %q: %w", ev.Device, ErrRevoked)
	}
	if bound && !sameKey && d.Status != membership.Revoked {
		d.Status, d.Updated = membership.Revoked, ref
		idx.put(d)
	}
	idx.enroll(Enrollment{ID: ev.Device, Key: ev.Key, Lat: ev.Lat, Lon: ev.Lon, Tolerance: ev.Tolerance,
		Expires: ev.Expires, Enrolled: ref, Updated: ref})
	return nil
}

// applyUnenroll records the removal of ev.Device's enrollment: it must be
// enrolled and not removed yet (ErrNotEnrolled, ErrEnrollmentRemoved). The
// device's record, if it is not revoked, becomes revoked: its membership
// ends and its peers' /verify warns. Later joins of the ID are refused.
func applyUnenroll(idx index, ev Event, ref BlockRef) error {
	e, enrolled, err := idx.enrollment(ev.Device)
	if err != nil {
		return err
	}
	switch {
	case !enrolled:
		return fmt.Errorf("device %q: %w", ev.Device, ErrNotEnrolled)
	case e.Removed:
		return fmt.Errorf("device %q: %w", ev.Device, ErrEnrollmentRemoved)
	}
	d, bound, err := idx.get(ev.Device)
	if err != nil {
		return err
	}
	if bound && d.Status != membership.Revoked {
		d.Status, d.Updated = membership.Revoked, ref
		idx.put(d)
	}
	e.Removed, e.Updated = true, ref
	idx.enroll(e)
	return nil
}

// enrolledKey checks a join against the ID's enrollment, if it has one:
// the join's key must be the enrolled one (ErrConflict) and the enrollment
// not removed (ErrEnrollmentRemoved). fresh reports that the enrollment gave
// the ID to the join's key after another key had joined under it (enroll
// with Replace): the join then starts a new binding whatever that old
// record's status.
func enrolledKey(idx index, ev Event, d Device, bound bool) (fresh bool, err error) {
	e, enrolled, err := idx.enrollment(ev.Device)
	if err != nil || !enrolled {
		return false, err
	}
	switch {
	case !bytes.Equal(e.Key, ev.Key):
		return false, fmt.Errorf("device %q is enrolled with another key: %w", ev.Device, ErrConflict)
	case e.Removed:
		return false, fmt.Errorf("device %q: %w", ev.Device, ErrEnrollmentRemoved)
	}
	return bound && !bytes.Equal(d.Key, ev.Key), nil
}
