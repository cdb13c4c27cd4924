package clusterhead

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
)

// OpenLedger opens the ledger in the data directory dir of a stopped cluster
// head read-only, with the CH key to check its signatures ('iotguard ledger
// verify|list', tests). While the CH runs the file is locked: the error then
// wraps ledger.ErrLocked and says to stop it.
func OpenLedger(dir string) (*ledger.Bolt, error) {
	path := filepath.Join(dir, LedgerFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no ledger at %s: %w", path, err)
	}
	keys, err := keysvc.Load(dir)
	if err != nil {
		return nil, err
	}
	l, err := ledger.Open(path, ledger.Options{Verifier: keys})
	if errors.Is(err, ledger.ErrLocked) {
		return nil, fmt.Errorf("%w: stop the server using %s first", err, dir)
	}
	return l, err
}
