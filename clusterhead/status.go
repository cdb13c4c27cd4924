package clusterhead

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/admin"
)

var _ admin.Operator = (*CH)(nil)

// Status reports the running CH's state for 'iotguard status': ledger head
// and its time, members by status, admission mode, key thumbprint, listen
// addresses and start time. It holds no secret.
func (c *CH) Status(context.Context) (admin.Status, error) {
	head, ms, err := c.Ledger.Head()
	if err != nil {
		return admin.Status{}, fmt.Errorf("failed to read ledger head: %w", err)
	}
	byStatus, err := c.members()
	if err != nil {
		return admin.Status{}, fmt.Errorf("failed to count members: %w", err)
	}
	members := map[string]int{}
	for s, n := range byStatus {
		members[s.String()] = n
	}
	thumb := c.Keys.Thumbprint()
	return admin.Status{
		Cluster:    c.Core.Config().ID,
		Height:     head.Height,
		HeadHash:   hex.EncodeToString(head.Hash[:]),
		LastBlock:  time.UnixMilli(ms).UTC(),
		Members:    members,
		Admission:  c.Core.Admission(),
		Thumbprint: hex.EncodeToString(thumb[:]),
		CoAP:       c.Addr(),
		Metrics:    c.MetricsAddr(),
		Started:    c.started.UTC(),
		Now:        time.Now().UTC(),
	}, nil
}
