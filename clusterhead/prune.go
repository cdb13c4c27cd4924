package clusterhead

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/iotguard/iotguard/ledger"
)

// PruneGrants deletes, while the CH serves, the records of the grant log's
// committed batches written more than olderThan ago (ledger.GrantLog.Prune:
// their counts and roots stay on the ledger, and the prune is recorded
// there first); the control socket's prune-grants.
func (c *CH) PruneGrants(ctx context.Context, olderThan time.Duration, progress func(done, total uint64)) (ledger.Pruned, error) {
	record := func(ctx context.Context, horizon uint64) (ledger.BlockRef, error) {
		return c.Ledger.Append(ctx, ledger.GrantsPrunedEvent(c.Core.Config().ID, horizon, time.Now()))
	}
	return c.Grants.Prune(ctx, time.Now().Add(-olderThan), record, progress)
}

// PruneGrantsStopped is PruneGrants on the data directory dir of a stopped
// CH, its prune recorded on the ledger in dir. While a CH runs on dir it
// fails with ledger.ErrLocked: prune through the running server instead, as
// for a CH of a shared ledger, which is written only through its server.
func PruneGrantsStopped(ctx context.Context, dir string, olderThan time.Duration, progress func(done, total uint64)) (ledger.Pruned, error) {
	path := filepath.Join(dir, ledger.GrantLogFile)
	if _, err := os.Stat(path); err != nil { // a prune creates no grant log
		return ledger.Pruned{}, fmt.Errorf("no grant log to prune: %w", err)
	}
	g, err := ledger.OpenGrantLog(path, false)
	if err != nil {
		return ledger.Pruned{}, err
	}
	defer g.Close()
	record := func(ctx context.Context, horizon uint64) (ledger.BlockRef, error) {
		return appendOffline(ctx, dir, func(cluster string) ledger.Event {
			return ledger.GrantsPrunedEvent(cluster, horizon, time.Now())
		})
	}
	return g.Prune(ctx, time.Now().Add(-olderThan), record, progress)
}
