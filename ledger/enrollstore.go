package ledger

import (
	"bytes"
	"fmt"
	"slices"

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

// writeEnrollments writes the changed enrollment records, in ID order.
func writeEnrollments(b *bolt.Bucket, changed map[string]Enrollment) error {
	ids := make([]string, 0, len(changed))
	for id := range changed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		v, err := wire.Marshal(changed[id])
		if err != nil {
			return fmt.Errorf("failed to encode enrollment of %q: %w", id, err)
		}
		if err := b.Put([]byte(id), v); err != nil {
			return fmt.Errorf("failed to write enrollment of %q: %w", id, err)
		}
	}
	return nil
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
	var after []byte
	for {
		var chunk []Enrollment
		err := view(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketEnrollments)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(chunk) < readChunk; k, v = c.Next() {
				var e Enrollment
				if err := wire.Unmarshal(v, &e); err != nil {
					return fmt.Errorf("failed to read enrollment of %q: %w", k, err)
				}
				chunk = append(chunk, e)
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range chunk {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(chunk) < readChunk {
			return nil
		}
	}
}

// compareEnrollments reports the first enrollment, in ID order, whose stored
// record is not exactly the replayed one, or that exists on one side only.
func compareEnrollments(b *bolt.Bucket, replayed map[string]Enrollment) error {
	ids := make([]string, 0, len(replayed))
	for id := range replayed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	mismatch := func(id, what string) error {
		return fmt.Errorf("failed to verify enrollment of %q: %s: %w", id, what, ErrIndexMismatch)
	}
	i := 0
	if b != nil {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			id := string(k)
			if i < len(ids) && ids[i] < id {
				return mismatch(ids[i], "missing from the index")
			}
			if i == len(ids) || ids[i] != id {
				return mismatch(id, "not produced by the chain")
			}
			want, err := wire.Marshal(replayed[id])
			if err != nil {
				return err
			}
			if !bytes.Equal(v, want) {
				return mismatch(id, "differs from the replayed record")
			}
			i++
		}
	}
	if i < len(ids) {
		return mismatch(ids[i], "missing from the index")
	}
	return nil
}
