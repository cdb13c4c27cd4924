package ledger

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/wire"
)

// readEnrollment reads the enrollment of id from b; a nil bucket (a ledger
// written before enrollments existed, opened read-only) holds none.
func readEnrollment(b *bolt.Bucket, id string) (Enrollment, bool, error) {
	if b == nil {
		return Enrollment{}, false, nil
	}
	v := b.Get([]byte(id))
	if v == nil {
		return Enrollment{}, false, nil
	}
	var e Enrollment
	if err := wire.Unmarshal(v, &e); err != nil {
		return Enrollment{}, false, fmt.Errorf("failed to read enrollment of %q: %w", id, err)
	}
	return e, true, nil
}

// Enrollment returns the enrollment record of id, or an error wrapping
// ErrNotEnrolled when id was never enrolled.
func (l *Bolt) Enrollment(id string) (Enrollment, error) {
	var e Enrollment
	err := l.view(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		if e, ok, err = readEnrollment(tx.Bucket(bucketEnrollments), id); err == nil && !ok {
			err = ErrNotEnrolled
		}
		return err
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("failed to look up enrollment of %q: %w", id, err)
	}
	return e, nil
}

// Enrollments calls fn for every enrollment record in ID order, outside any
// transaction (as Devices does).
func (l *Bolt) Enrollments(fn func(Enrollment) error) error {
	return ReadEnrollments(l.view, fn)
}

// ReadEnrollments calls fn for every record of the "enrollments" bucket of
// a bbolt store laid out like Bolt's, in ID order, readChunk records per
// read transaction, fn outside any transaction. A store without the bucket
// has none.
func ReadEnrollments(view View, fn func(Enrollment) error) error {
	return readRecords(view, bucketEnrollments, "enrollment", fn)
}
