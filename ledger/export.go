package ledger

import "errors"

// This file exports the state machine for ledgers kept outside this package
// (the CometBFT backend in bftledger), so that every backend applies exactly
// the same rules.

// Index is the device and enrollment index as the state machine sees it:
// the stored records plus the effect of the events applied before, in the
// same block.
type Index interface {
	// Get returns the record of id and whether there is one.
	Get(id string) (Device, bool, error)
	// Put replaces the record of d.ID.
	Put(d Device)
	// GetEnrollment returns the enrollment of id and whether there is one.
	GetEnrollment(id string) (Enrollment, bool, error)
	// PutEnrollment replaces the enrollment of e.ID.
	PutEnrollment(e Enrollment)
}

// Apply checks ev against the ledger's state machine and, if it is allowed,
// records its effect in idx as of block ref: the rules [Bolt] commits with
// and Verify replays with (see the package documentation of the errors). On
// error idx is unchanged. ev is validated first (ErrInvalidEvent).
//
// A record Apply puts for a join, and an enrollment it puts for an enroll,
// has an empty Cluster; a multi-cluster backend sets it in its Index.Put
// and Index.PutEnrollment.
func Apply(idx Index, ev Event, ref BlockRef) error {
	return apply(exportedIndex{idx}, ev, ref)
}

// exportedIndex adapts an Index to the package's own index interface.
type exportedIndex struct{ x Index }

func (e exportedIndex) get(id string) (Device, bool, error) { return e.x.Get(id) }
func (e exportedIndex) put(d Device)                        { e.x.Put(d) }
func (e exportedIndex) enrollment(id string) (Enrollment, bool, error) {
	return e.x.GetEnrollment(id)
}
func (e exportedIndex) enroll(en Enrollment) { e.x.PutEnrollment(en) }

// Lookuper is what Check reads: a ledger's index (every Ledger is one).
type Lookuper interface {
	Lookup(id string) (Device, error)
	Enrollment(id string) (Enrollment, error)
}

// Check reports whether ev would apply to the index as l has it now, without
// writing anything: the same rules as Append, for a caller that acts before
// the event is appended (the cluster core grants a session and records it
// behind its answer). Another event may change the answer before ev is
// appended; Append decides again.
func Check(l Lookuper, ev Event) error {
	return apply(&lookupIndex{l: l, puts: map[string]Device{}, enrolls: map[string]Enrollment{}}, ev, BlockRef{})
}

// lookupIndex is a read-only view of a Lookuper with a scratch layer for the
// records one apply changes.
type lookupIndex struct {
	l       Lookuper
	puts    map[string]Device
	enrolls map[string]Enrollment
}

func (x *lookupIndex) enrollment(id string) (Enrollment, bool, error) {
	if e, ok := x.enrolls[id]; ok {
		return e, true, nil
	}
	e, err := x.l.Enrollment(id)
	switch {
	case errors.Is(err, ErrNotEnrolled):
		return Enrollment{}, false, nil
	case err != nil:
		return Enrollment{}, false, err
	}
	return e, true, nil
}

func (x *lookupIndex) enroll(e Enrollment) { x.enrolls[e.ID] = e }

func (x *lookupIndex) get(id string) (Device, bool, error) {
	if d, ok := x.puts[id]; ok {
		return d, true, nil
	}
	d, err := x.l.Lookup(id)
	switch {
	case errors.Is(err, ErrUnknownDevice):
		return Device{}, false, nil
	case err != nil:
		return Device{}, false, err
	}
	return d, true, nil
}

func (x *lookupIndex) put(d Device) { x.puts[d.ID] = d }
