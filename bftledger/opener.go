package bftledger

import (
	"log/slog"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
)

// CHOpener returns the ledger opener (a clusterhead.LedgerOpener) of the
// cluster head of cluster on the node in home: the node runs in the CH's
// process, submits the CH's events signed with its key, and logs to log.
func CHOpener(home, cluster string, log *slog.Logger) func(keys *keysvc.Service, onCommit func(uint64, int)) (ledger.Ledger, error) {
	return func(keys *keysvc.Service, onCommit func(uint64, int)) (ledger.Ledger, error) {
		return Open(Options{Home: home, Cluster: cluster, Signer: keys,
			Logger: SlogLogger(log.With("component", "cometbft")), OnCommit: onCommit})
	}
}
