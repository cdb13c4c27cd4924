package cluster

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// Enrollment is an operator's request to enroll a device: what `iotguard
// enroll add` sends, through the admin socket or on a stopped data
// directory.
type Enrollment struct {
	ID        string
	Key       []byte    // the device public key as a COSE_Key
	Position  *Position // fixed installations: the join must claim a position within Tolerance of it
	Tolerance uint64    // metres; required with Position, refused without
	Expires   time.Time // the enrollment admits joins until then; zero never expires
	Replace   bool      // give the ID to Key, ending the membership of the key it had
	Reason    string    // recorded on the ledger
}

// EnrollEvent checks r and returns its ledger event at now: a valid ID, a
// P-256 COSE_Key, a tolerance exactly when there is a position, an expiry in
// the future. Whether the event applies is the state machine's to decide.
// The CH's core and the offline path (a stopped data directory) both build
// their events here.
func EnrollEvent(r Enrollment, now time.Time) (ledger.Event, error) {
	fail := func(format string, a ...any) (ledger.Event, error) {
		return ledger.Event{}, fmt.Errorf("failed to enroll %s: %s", r.ID, fmt.Sprintf(format, a...))
	}
	if err := wire.CheckID(r.ID); err != nil {
		return fail("%v", err)
	}
	if _, err := wire.ParsePublicKey(r.Key); err != nil {
		return fail("device key: %v", err)
	}
	ev := ledger.Event{Type: ledger.EventEnroll, Device: r.ID, Key: r.Key, Time: now.UnixMilli(), Replace: r.Replace, Reason: r.Reason}
	if (r.Position != nil) != (r.Tolerance != 0) {
		return fail("a position needs a tolerance in metres, and a tolerance a position")
	}
	if r.Position != nil {
		ev.Lat, ev.Lon, ev.Tolerance = r.Position.Lat, r.Position.Lon, r.Tolerance
	}
	if !r.Expires.IsZero() {
		if !r.Expires.After(now) {
			return fail("expiry %s is not in the future", r.Expires.UTC().Format(time.RFC3339))
		}
		ev.Expires = int64(math.Ceil(float64(r.Expires.UnixNano()) / 1e9))
	}
	return ev, nil
}

// Enroll records the operator's enrollment of r.ID on the ledger. With
// r.Replace the ID's previous key (a replaced board, or a squatter's) loses
// its membership and member key in the same event. The state machine refuses
// an ID enrolled already (ErrEnrolled), bound to another key without Replace
// (ErrConflict) or a revoked key (ErrRevoked).
func (c *Core) Enroll(ctx context.Context, r Enrollment) (ledger.BlockRef, error) {
	ev, err := EnrollEvent(r, c.cfg.Now())
	if err != nil {
		return ledger.BlockRef{}, refuse(ErrMalformed, err.Error())
	}
	ref, err := c.append(ctx, ev)
	if err != nil {
		return ref, fmt.Errorf("failed to enroll %s: %w", r.ID, err)
	}
	c.forget(r.ID) // a replaced key's member key is dead
	return ref, nil
}

// Unenroll records the removal of id's enrollment: the device's membership
// ends, its peers' /verify warns and no join of id applies any more. The
// state machine refuses an ID never enrolled (ErrUnenrolled) or removed
// already (ErrEnrollmentRemoved).
func (c *Core) Unenroll(ctx context.Context, id, reason string) (ledger.BlockRef, error) {
	ref, err := c.append(ctx, ledger.Event{Type: ledger.EventUnenroll, Device: id, Time: c.cfg.Now().UnixMilli(), Reason: reason})
	if err != nil {
		return ref, fmt.Errorf("failed to remove the enrollment of %s: %w", id, err)
	}
	c.forget(id)
	return ref, nil
}
