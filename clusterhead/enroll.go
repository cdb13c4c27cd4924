package clusterhead

import (
	"context"
	"time"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/ledger"
)

var _ admin.Enroller = (*CH)(nil)

// enrollTimeout bounds an operator's enrollment request, its ledger commit
// included.
const enrollTimeout = 10 * time.Second

// Enroll records the operator's enrollment r and returns the height of its
// block (the control socket's enroll).
func (c *CH) Enroll(ctx context.Context, r cluster.Enrollment) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, enrollTimeout)
	defer cancel()
	ref, err := c.Core.Enroll(ctx, r)
	return ref.Height, err
}

// Unenroll records the removal of id's enrollment and returns the height of
// its block (the control socket's unenroll).
func (c *CH) Unenroll(ctx context.Context, id, reason string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, enrollTimeout)
	defer cancel()
	ref, err := c.Core.Unenroll(ctx, id, reason)
	return ref.Height, err
}

// Enrollments calls fn for this cluster's enrollments, in ID order (a shared
// ledger holds other clusters' too).
func (c *CH) Enrollments(fn func(ledger.Enrollment) error) error {
	id := c.Core.Config().ID
	return c.Ledger.Enrollments(func(e ledger.Enrollment) error {
		if e.Cluster != "" && e.Cluster != id {
			return nil
		}
		return fn(e)
	})
}
